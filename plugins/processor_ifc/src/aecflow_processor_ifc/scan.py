"""A cheap text scan of the whole file, to check what IfcOpenShell says it read.

IfcOpenShell can open a broken file "successfully": ``edge/errorfile.ifc`` has 6,184 entity
instances and an unterminated comment after the 7th, and IfcOpenShell returns those 7 without
logging anything. Counting instance starts in the text is the independent second opinion.

The scan counts instance starts per keyword (IfcOpenShell skips geometry types, so only the
rest is comparable), notices a missing ``ENDSEC; END-ISO-10303-21;`` ending, and looks for
runs of parentheses no real IFC has: such a file makes the parser allocate without bound.

An instance starts after ``;`` or a line break (CR alone counts: old exporters write CR-only
line endings, and whole models on one line exist), so line endings need no special case.
The scan is not comment-aware on purpose: an instance hidden by a runaway comment is exactly
what it has to count.

In Python the scan costs about half of what IfcOpenShell's lazy open does, and IfcOpenShell
holds the GIL while parsing, so a thread cannot overlap them. :class:`ScanJob` therefore runs
the scan in a forked helper process, in parallel with the parse, and falls back to running it
in-line where fork is unavailable or fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

CHUNK = 8 << 20
#: Most bytes carried from one chunk to the next (the text after the last delimiter).
CARRY = 4096
#: More distinct keywords than any schema has; past this, counts go to one bucket.
MAX_KEYWORDS = 5000
OTHER = "?"

_WS = rb"[ \t\r\n]*"
INSTANCE = re.compile(
    rb"[;\r\n]" + _WS + rb"#[0-9]+" + _WS + rb"=" + _WS + rb"([A-Za-z][A-Za-z0-9_]*)"
)
_ENDING = re.compile(rb"ENDSEC" + _WS + rb";" + _WS + rb"END-ISO-10303-21" + _WS + rb";\Z")
_DELIMITERS = (b";", b"\n", b"\r")


@dataclass
class ScanResult:
    """What the text says: instance starts (total and per upper-case keyword), and flags."""

    instances: int = 0
    keywords: dict[str, int] = field(default_factory=dict)
    #: Byte offset of the first run of ``max_nesting`` opening parentheses, if any.
    nesting_offset: int | None = None
    #: Whether the file ends with ``ENDSEC; END-ISO-10303-21;``.
    complete_ending: bool = False


def scan(path: Path, max_nesting: int) -> ScanResult:
    """Scan ``path`` through one reused buffer: memory stays at about one chunk.

    Under the core's address-space cap every copy counts, so chunks are read into a single
    bytearray and searched in place (``pos``/``endpos``), never sliced.
    """
    # Starting with a literal "((" lets the regex engine skip ahead fast; a run written as
    # "( ( ( (" escapes this check, and then the core's memory cap is the guard.
    nesting = re.compile(rb"\(\(" + (_WS + rb"\(") * (max_nesting - 2))
    keywords: Counter[bytes] = Counter()
    result = ScanResult()
    buffer = bytearray(CHUNK + CARRY)
    carry = 0  # bytes kept at the start of the buffer from the previous round
    offset = 0  # file offset of buffer[0]
    with path.open("rb") as f:
        while True:
            with memoryview(buffer)[carry : carry + CHUNK] as window:
                read = f.readinto(window)
            end = carry + read
            if read:
                # Keep the text after the last delimiter for the next round: a match starts
                # at a delimiter and never spans one, except through its own whitespace.
                cut = max(buffer.rfind(d, 0, end) for d in _DELIMITERS)
                if cut < 0 or cut < end - CARRY:  # no delimiter near the end: carry a little
                    cut = max(0, end - 256)
            else:
                cut = end
            keywords.update(INSTANCE.findall(buffer, 0, cut))
            if result.nesting_offset is None and (match := nesting.search(buffer, 0, cut)):
                result.nesting_offset = offset + match.start()
            if len(keywords) > MAX_KEYWORDS:
                keywords = _lump(keywords)
            if not read:
                break
            buffer[: end - cut] = buffer[cut:end]
            carry = end - cut
            offset += cut
        size = offset + end
        f.seek(max(0, size - 4096))
        tail = f.read().rstrip(b" \t\r\n\x00\x1a")
    result.complete_ending = _ENDING.search(tail) is not None
    merged: Counter[str] = Counter()
    for keyword, count in keywords.items():
        merged[keyword.decode("ascii").upper()] += count
    result.keywords = dict(merged)
    result.instances = sum(merged.values())
    return result


def _lump(keywords: Counter[bytes]) -> Counter[bytes]:
    """Keep the most frequent keywords; a hostile file cannot grow the table without bound."""
    kept = Counter(dict(keywords.most_common(MAX_KEYWORDS // 2)))
    kept[OTHER.encode()] += sum(keywords.values()) - sum(kept.values())
    return kept


class ScanJob:
    """A scan running beside the caller: ``result()`` waits for it, ``cancel()`` stops it."""

    def __init__(self, path: Path, max_nesting: int, *, parallel: bool = True) -> None:
        self.path = path
        self.max_nesting = max_nesting
        self._pid: int | None = None
        self._fd: int | None = None
        self._result: ScanResult | None = None
        if parallel and hasattr(os, "fork"):
            self._start()
        if self._pid is None:
            self._result = scan(path, max_nesting)

    def _start(self) -> None:
        try:
            read_fd, write_fd = os.pipe()
        except OSError:
            return
        try:
            pid = os.fork()
        except OSError:  # EAGAIN or ENOMEM under a tight cap: scan in-line instead
            os.close(read_fd)
            os.close(write_fd)
            return
        if pid == 0:  # the helper: scan, report, and leave without running any cleanup
            code = 1
            try:
                os.close(read_fd)
                payload = json.dumps(asdict(scan(self.path, self.max_nesting))).encode()
                with os.fdopen(write_fd, "wb") as out:
                    out.write(payload)
                code = 0
            finally:
                os._exit(code)
        os.close(write_fd)
        self._pid, self._fd = pid, read_fd

    def result(self) -> ScanResult:
        """The scan's result; if the helper died (say, killed), the scan runs in-line."""
        if self._result is not None:
            return self._result
        assert self._fd is not None and self._pid is not None
        chunks = []
        with os.fdopen(self._fd, "rb") as pipe:
            self._fd = None
            while chunk := pipe.read(1 << 16):
                chunks.append(chunk)
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        try:
            if os.waitstatus_to_exitcode(status) != 0:
                raise ValueError("scan helper failed")
            self._result = ScanResult(**json.loads(b"".join(chunks)))
        except (ValueError, TypeError):
            self._result = scan(self.path, self.max_nesting)
        return self._result

    def cancel(self) -> None:
        """Stop the helper if it still runs (the caller failed before needing the result)."""
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
