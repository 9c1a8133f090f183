"""Exit codes scripts can rely on, one name for each (sysexits.h where one fits).

The errors of :mod:`aecflow.errors` carry the same numbers as ``exit_code``; the list in the
README's command-line section is this module, in words.
"""

from __future__ import annotations

OK = 0
#: An unexpected error; also a failed processing outcome (`upload --wait`, `status`) and a
#: broken audit chain (`audit verify`).
FAILURE = 1
#: Invalid input or usage.
USAGE = 2
NOT_FOUND = 3
CONFLICT = 4
#: A dependency is unavailable (EX_UNAVAILABLE), or `serve`'s address is in use.
UNAVAILABLE = 69
#: The storage backend is too full to write (EX_CANTCREAT).
CANT_CREATE = 73
#: Gave up waiting (EX_TEMPFAIL); for `ingest` the file is stored.
TEMPFAIL = 75
#: `ingest`: the file is stored, but some of its events were dead-lettered.
UNDELIVERED = 76
#: Not permitted: a missing, unknown or insufficient token (EX_NOPERM).
NOPERM = 77
#: A configuration or plugin error (EX_CONFIG).
CONFIG = 78
#: `audit verify`: there is no chain to verify ([audit] hash_chain is off).
CHAIN_OFF = CONFIG
#: Interrupted (Ctrl-C), as a shell reports SIGINT.
INTERRUPTED = 130
