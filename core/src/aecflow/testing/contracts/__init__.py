"""Contract suites: base test classes every backend of a kind must pass (subclass one, give
it the fixtures it names, run pytest)."""

from aecflow.testing.contracts.notify import NotifierContract

__all__ = ["NotifierContract"]
