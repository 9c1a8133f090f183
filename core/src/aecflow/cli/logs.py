"""Logging for the command line: aecflow's own lines, readable, without other libraries' chatter.

``aecflow serve`` and ``aecflow worker`` log one INFO line per request and per processed file
unless ``--log-level`` says otherwise; every other command logs warnings only. Alembic's
per-start lines ("Context impl ...", "Will assume ... DDL") and httpx's line per request are
noise next to those, so they show at ``--log-level DEBUG`` only.
"""

from __future__ import annotations

import logging

import click
from click.core import ParameterSource

FORMAT = "%(levelname)s %(name)s: %(message)s"
#: Libraries whose INFO lines only repeat what aecflow says (or say nothing to a person).
QUIET = ("alembic", "httpx")


def configure(level: str) -> None:
    """The root logger at ``level``; the ``QUIET`` libraries at WARNING unless it is DEBUG."""
    logging.basicConfig(level=level.upper(), format=FORMAT)
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        for name in QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)


def serving(ctx: click.Context) -> None:
    """For long-running commands: aecflow's INFO lines when ``--log-level`` was not given."""
    root = ctx.find_root()
    if root.get_parameter_source("log_level") in (ParameterSource.DEFAULT, None):
        logging.getLogger("aecflow").setLevel(logging.INFO)
