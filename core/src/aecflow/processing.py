"""The processor contract: plain synchronous code that the core runs in an isolated child.

A processor never has to think about timeouts, memory caps or crashes: the core runs
``process`` in a child process with limits and classifies what happened. All it does is read
the file at ``path`` and return a JSON-serialisable summary, or raise :class:`InvalidInput`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any


class Outcome(StrEnum):
    """How a processing run ended; these names are part of the public API."""

    SUCCEEDED = "succeeded"
    INVALID_INPUT = "invalid_input"
    TIMED_OUT = "timed_out"
    OUT_OF_MEMORY = "out_of_memory"
    CRASHED = "crashed"
    SKIPPED = "skipped"


class InvalidInput(Exception):
    """Raised by ``process`` when the file is not something it can read; the message is shown.

    ``result`` (JSON-serialisable) is what could still be read, recorded beside the error, so
    a refused file keeps the facts a person needs to understand why (its schema, its tool).
    """

    def __init__(self, message: str, *, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result


@dataclass(frozen=True, slots=True)
class ResourceNeeds:
    """What one run needs; the core caps the child at these (bounded by the global limits)."""

    memory_mb: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True, slots=True)
class ProcessingContext:
    """What a processor may know about the file besides its bytes."""

    file_id: str
    project: str
    filename: str
    size: int
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: An empty directory the step may write artifacts into (declared in the result); ``None``
    #: where the caller keeps no artifacts (a processor must then not write any).
    output_dir: Path | None = None
    #: The results of the steps this processor runs after (``Processor.after``), by name.
    inputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Artifact:
    """A derived file a step wrote as ``context.output_dir / name``; the core stores and serves it.

    ``name`` is the file's name in the output directory and in the API: 1-128 characters of
    ``A-Za-z0-9._-``, not starting with a dot.
    """

    name: str
    media_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class ProcessingResult:
    """The summary a processor returns; ``data`` must be JSON-serialisable."""

    data: dict[str, Any]
    #: Files written into ``context.output_dir`` to keep beside the file.
    artifacts: tuple[Artifact, ...] = ()


class Processor(ABC):
    """Turns a file into a summary.

    Class attributes declare what the processor accepts; override :meth:`sniff` to look at the
    first bytes and :meth:`resources` to size the child's limits from the file size.
    """

    #: The registered processor name, set by the registry.
    name: str = ""
    #: Lower-case filename suffixes, with the dot: ``(".ifc", ".ifczip")``.
    suffixes: tuple[str, ...] = ()
    #: Media types accepted regardless of suffix.
    media_types: tuple[str, ...] = ()
    #: Processors whose results this one reads (``context.inputs``): it runs after they
    #: succeed, and is skipped, naming them, when one of them does not.
    after: tuple[str, ...] = ()

    def sniff(self, head: bytes) -> bool:
        """Whether the first bytes (up to 4 KiB) look like something this processor reads."""
        return True

    def accepts(self, filename: str, content_type: str | None, head: bytes) -> bool:
        """Whether to run on this file: a matching suffix or media type, and a matching sniff."""
        by_name = Path(filename).suffix.lower() in self.suffixes
        by_type = content_type is not None and content_type.split(";")[0] in self.media_types
        return (by_name or by_type) and self.sniff(head)

    def resources(self, size: int) -> ResourceNeeds:
        """Limits needed for a file of ``size`` bytes; ``None`` fields take the global limits."""
        return ResourceNeeds()

    @abstractmethod
    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        """Read ``path`` and summarise it. Runs in a child process; may raise InvalidInput."""
