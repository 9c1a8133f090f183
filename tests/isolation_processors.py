"""Processors that misbehave on purpose, for tests/test_isolation.py.

They live in a module of their own because the child process imports them by name: it gets
the parent's sys.path, on which pytest has put the directory holding the tests package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydantic

from aecflow.processing import InvalidInput, ProcessingContext, ProcessingResult, Processor


class NoConfig(pydantic.BaseModel):
    pass


class PidFileConfig(pydantic.BaseModel):
    """Where to record pids and the working directory, for checks after the run."""

    pid_file: str


class SecretConfig(pydantic.BaseModel):
    token: pydantic.SecretStr


class WordCount(Processor):
    """Succeeds with facts derived from the file and the context."""

    def __init__(self, config: NoConfig) -> None:
        self.config = config

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        text = path.read_text(encoding="utf-8")
        return ProcessingResult(
            {
                "words": len(text.split()),
                "first": text.split()[0],
                "filename": context.filename,
                "metadata": dict(context.metadata),
            }
        )


class PickyButTells(Processor):
    """Refuses the file, but says what it could read of it; ``bad`` adds a value JSON refuses."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        first = path.read_text(encoding="utf-8").split()[0]
        result: dict = {"first": first, "warnings": ["read the first word only"]}
        if context.metadata.get("bad"):
            result["bad"] = float("nan")
        raise InvalidInput("unsupported variant", result=result)


class Picky(Processor):
    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        raise InvalidInput(f"{context.filename} does not start with ISO-10303-21")


class Sleeper(Processor):
    """Records its pid and a grandchild's pid, then sleeps far past any test's timeout."""

    def __init__(self, config: PidFileConfig) -> None:
        self.pid_file = Path(config.pid_file)

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        grandchild = subprocess.Popen(["sleep", "60"])
        _record(self.pid_file, grandchild)
        time.sleep(60)
        return ProcessingResult({})


class LeavesGrandchild(Processor):
    """Succeeds at once but leaves a process running, which the run must not leak."""

    def __init__(self, config: PidFileConfig) -> None:
        self.pid_file = Path(config.pid_file)

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        grandchild = subprocess.Popen(["sleep", "60"])
        _record(self.pid_file, grandchild)
        return ProcessingResult({"ok": True})


class Hog(Processor):
    """Touches memory 10 MiB at a time, up to 2 GiB: far past any cap the tests set."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        hoard = [bytearray(10 * 2**20) for _ in range(200)]
        return ProcessingResult({"allocated_mb": 10 * len(hoard)})


class Segfault(Processor):
    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        os.kill(os.getpid(), signal.SIGSEGV)
        return ProcessingResult({})


class NativeOutOfMemory(Processor):
    """Dies as a C++ library does when an allocation fails: a message, then abort()."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        print("terminate called after throwing an instance of 'std::bad_alloc'", file=sys.stderr)
        sys.stderr.flush()
        os.abort()


class Exits(Processor):
    """Leaves the way a library calling exit() does: no exception, no result."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        print("fatal: cannot continue", flush=True)
        os._exit(3)


class Spinner(Processor):
    """Burns CPU without sleeping, as a parser stuck in a loop does."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        n = 0
        while True:
            n += 1


class Buggy(Processor):
    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        return ProcessingResult({"ratio": 1 / 0})


class Upper(Processor):
    """No ``__init__`` at all: registered without ``config=``, it is built with no argument."""

    suffixes = (".up",)

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        return ProcessingResult({"upper": path.read_text(encoding="utf-8").upper()})


class QuotesItsInput(Processor):
    """Refuses with a message as long as a huge FILE_SCHEMA name in the input."""

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        raise InvalidInput("unsupported schema " + "X" * 900_000)


class Unserialisable(Processor):
    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        return ProcessingResult({"tags": {"a", "b"}})


class SecretEcho(Processor):
    """Returns the secret it received: proves the child gets the value, not a mask."""

    def __init__(self, config: SecretConfig) -> None:
        self.config = config

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        return ProcessingResult({"token": self.config.token.get_secret_value()})


def _record(path: Path, grandchild: subprocess.Popen[bytes]) -> None:
    """Write "pid grandchild-pid cwd" atomically, so a test never reads half of it."""
    partial = path.with_suffix(".partial")
    partial.write_text(f"{os.getpid()} {grandchild.pid} {os.getcwd()}")
    partial.replace(path)


class IfcCrash(Processor):
    """A pipeline step that dies on every IFC file (the others must go on)."""

    suffixes = (".ifc",)

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        os._exit(3)


class IfcStall(Processor):
    """A pipeline step that hangs on every IFC file, far past the step's time limit."""

    suffixes = (".ifc",)

    def __init__(self, config: NoConfig) -> None:
        pass

    def process(self, path: Path, context: ProcessingContext) -> ProcessingResult:
        time.sleep(60)
        return ProcessingResult({})
