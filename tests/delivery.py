"""Driving the outbox in tests: the kit's helpers (:mod:`aecflow.testing.delivery`), kept under
this name for the tests that import them from here."""

from __future__ import annotations

from aecflow.testing.delivery import all_delivered, deliver_until, outbox_rows

__all__ = ["all_delivered", "deliver_until", "outbox_rows"]
