"""Run a processor in a child process the core owns, under limits, and say how it ended.

Processors are plain synchronous code, often native (IfcOpenShell), fed files from strangers.
In a child process a segfault, a runaway allocation or an endless loop costs one run, never the
host. The child (:mod:`aecflow.isolation.child`) applies the limits before it imports the
processor and reports every outcome it can still report as a JSON file; the parent classifies
the rest from the exit status, its own timer and the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from aecflow.isolation.child import import_path
from aecflow.processing import Outcome, ProcessingContext
from aecflow.registry import Registration
from aecflow.validation import without_surrogates

#: How much of the end of the child's output a report keeps.
LOG_TAIL_BYTES = 4096

# What native code and Python print when an allocation fails. A heuristic: it only decides
# between "crashed" and "out_of_memory" for a child that died without writing a result.
_MEMORY_EVIDENCE = re.compile(
    r"MemoryError|std::bad_alloc|Cannot allocate memory|out of memory|memory allocation"
    r"|failed to map segment",
    re.IGNORECASE,
)
#: Numeric libraries (OpenBLAS under numpy, which IfcOpenShell imports) reserve address space
#: per thread; one thread each keeps RLIMIT_AS a cap on the work, not on thread pools.
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass(frozen=True)
class Limits:
    """Limits for one run. ``cpu_s`` defaults to ``timeout_s``; ``memory_mb=None`` is uncapped."""

    timeout_s: float
    memory_mb: int | None
    cpu_s: float | None = None

    def __post_init__(self) -> None:
        if self.cpu_s is None:
            object.__setattr__(self, "cpu_s", self.timeout_s)
        if self.timeout_s <= 0 or (self.memory_mb is not None and self.memory_mb <= 0):
            raise ValueError(f"limits must be positive: {self}")
        if self.cpu_s is not None and self.cpu_s <= 0:
            raise ValueError(f"limits must be positive: {self}")

    @property
    def cpu_rlimit(self) -> tuple[int, int]:
        """RLIMIT_CPU (soft, hard) in whole seconds: SIGXCPU at soft, SIGKILL at hard."""
        soft = max(1, math.ceil(self.cpu_s or self.timeout_s))
        return soft, soft + 5


@dataclass(frozen=True)
class ProcessorSpec:
    """A processor the child can rebuild: import paths (``"module:qualname"``) and a config."""

    factory: str
    config_model: str
    config: pydantic.BaseModel

    @classmethod
    def from_registration(cls, reg: Registration[Any], config: pydantic.BaseModel) -> ProcessorSpec:
        """Describe a registered processor; refuses factories a child cannot import by name."""
        if not isinstance(config, reg.config):
            raise TypeError(
                f"config for processor {reg.name!r} is a {type(config).__name__}, "
                f"not a {reg.config.__name__}"
            )
        return cls(
            factory=_import_path_of(reg.factory, f"processor {reg.name!r}: factory"),
            config_model=_import_path_of(reg.config, f"processor {reg.name!r}: config model"),
            config=config,
        )


#: Outcomes whose report may carry a result (for invalid_input: what could still be read).
_WITH_RESULT = (Outcome.SUCCEEDED, Outcome.INVALID_INPUT)


@dataclass(frozen=True)
class RunReport:
    """How one isolated run ended; ``error`` is written for a person and names the limit hit."""

    outcome: Outcome
    result: dict[str, Any] | None
    error: str | None
    duration_s: float
    peak_rss_mb: float | None
    log_tail: str
    #: The artifacts a succeeded run declared: ``{"name", "media_type"}`` each, unchecked.
    artifacts: tuple[dict[str, str], ...] = ()


def _import_path_of(obj: Any, what: str) -> str:
    """``"module:qualname"`` for ``obj``, checked by importing it back as the child will."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    path = f"{module}:{qualname}"
    try:
        # "__main__" would be the child's own __main__; "<lambda>" and "<locals>" never import.
        ok = module not in (None, "__main__") and "<" not in str(qualname)
        ok = ok and import_path(path) == obj
    except (ImportError, AttributeError):
        ok = False
    if not ok:
        raise ValueError(
            f"{what} {obj!r} cannot be imported by name ({path}) in the child process that "
            "runs it; define it at module level in an importable module"
        )
    return path


async def run_isolated(
    spec: ProcessorSpec, path: Path, context: ProcessingContext, limits: Limits
) -> RunReport:
    """Run ``spec``'s processor on ``path`` in a child process and classify the outcome.

    Cancelling this coroutine kills the child's whole process group before re-raising.
    """
    # A private directory (mode 0700) for the result and the log; also the child's working
    # directory, so scratch files a processor leaves behind go with it.
    workdir = Path(tempfile.mkdtemp(prefix="aecflow-run-"))
    try:
        return await _run_in(workdir, spec, path, context, limits)
    finally:
        # In a thread: a processor's scratch files may be large. The thread finishes even if
        # this task is cancelled again while waiting for it.
        await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)


async def _run_in(
    workdir: Path, spec: ProcessorSpec, path: Path, context: ProcessingContext, limits: Limits
) -> RunReport:
    result_path = workdir / "result.json"
    log_path = workdir / "child.log"
    job = _job(spec, path, context, limits, result_path)

    started = time.monotonic()
    # The log goes to a file, never a pipe: a chatty processor cannot fill the parent's memory
    # or block on a full pipe. The child holds its own copy of the descriptor.
    with log_path.open("wb") as log:
        # process_group=0 puts the child in a new process group (setpgid in the child, without
        # a preexec_fn, which is unsafe when the parent has threads), so one killpg reaches
        # everything it spawns, and a Ctrl-C on the host's terminal does not hit it directly.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "aecflow.isolation.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=workdir,
            process_group=0,
            env=CHILD_ENV | dict(os.environ),
        )
    timed_out = False
    try:
        await asyncio.wait_for(proc.communicate(job), limits.timeout_s)
    except TimeoutError:
        timed_out = True
    finally:
        # Always, also after a clean exit: grandchildren the processor started (and on
        # cancellation, the child itself) must not outlive the run. Then reap the child.
        _kill_group(proc.pid)
        await proc.wait()
    duration_s = time.monotonic() - started

    log_tail = _read_tail(log_path)
    report = _read_report(result_path)
    outcome, error = _classify(proc.returncode, timed_out, report, log_tail, limits, duration_s)
    return RunReport(
        outcome=outcome,
        # A refusal may carry what could still be read; other failures have no result.
        result=report.get("result") if report and outcome in _WITH_RESULT else None,
        error=cap_error(error),
        duration_s=duration_s,
        peak_rss_mb=report.get("peak_rss_mb") if report else None,
        log_tail=log_tail,
        artifacts=_declared(report) if report and outcome is Outcome.SUCCEEDED else (),
    )


def _declared(report: dict[str, Any]) -> tuple[dict[str, str], ...]:
    items = report.get("artifacts")
    if not isinstance(items, list):
        return ()
    return tuple(
        {"name": str(item.get("name")), "media_type": str(item.get("media_type"))}
        for item in items
        if isinstance(item, dict)
    )


MAX_ERROR_CHARS = 4096


def cap_error(error: str | None, limit: int = MAX_ERROR_CHARS) -> str | None:
    """``error`` cut to ``limit`` characters, marked as cut, with NULs and lone surrogates as
    U+FFFD.

    A processor's message can quote the input (a 900 KB ``FILE_SCHEMA`` name): uncapped it
    lands in the record, every list page and every event payload. The full text stays in the
    child's log. PostgreSQL refuses a NUL and asyncpg cannot encode a lone surrogate, so
    recording either left the file ``processing`` for ever.
    """
    if error is None:
        return None
    error = without_surrogates(error.replace("\0", "\ufffd"))
    if len(error) <= limit:
        return error
    marker = " [... cut: {:,} more characters]"
    keep = limit - len(marker.format(len(error)))
    return error[:keep] + marker.format(len(error) - keep)


def _job(
    spec: ProcessorSpec, path: Path, context: ProcessingContext, limits: Limits, result_path: Path
) -> bytes:
    """The pickle sent on the child's stdin.

    Only plain values in the outer pickle, so the child can unpickle it, and apply the limits,
    before importing anything. The config is a nested pickle that it loads afterwards.
    """
    fields = {f.name: getattr(context, f.name) for f in dataclasses.fields(context)}
    fields["metadata"] = dict(context.metadata)  # a mapping type that may not pickle
    fields["inputs"] = {name: dict(value) for name, value in context.inputs.items()}
    if context.output_dir is not None:
        fields["output_dir"] = str(context.output_dir)
    return pickle.dumps(
        {
            "parent_pid": os.getpid(),  # to check, once the child dies with its parent
            "memory_mb": limits.memory_mb,
            "cpu_rlimit": limits.cpu_rlimit,
            # Absolute, because the child runs in its own directory; "" means the current one.
            "sys_path": [os.path.abspath(p) for p in sys.path],
            "factory": spec.factory,
            "config_model": spec.config_model,
            "config": pickle.dumps(spec.config),
            "path": str(Path(path).absolute()),
            "context": fields,
            "result_path": str(result_path),
        }
    )


def _kill_group(pgid: int) -> None:
    # The group id is the child's pid, and the kernel does not hand that number to a new
    # process while any member of the group is alive. ProcessLookupError: nothing left.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _read_tail(log_path: Path) -> str:
    with log_path.open("rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
        return f.read().decode("utf-8", errors="replace")


def _read_report(result_path: Path) -> dict[str, Any] | None:
    try:
        report = json.loads(result_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:  # written atomically, so only a processor could garble it
        return {"outcome": "crashed", "error": f"the child wrote an unreadable result: {exc}"}
    return report if isinstance(report, dict) else None


def _classify(
    returncode: int | None,
    timed_out: bool,
    report: dict[str, Any] | None,
    log_tail: str,
    limits: Limits,
    duration_s: float,
) -> tuple[Outcome, str | None]:
    """Outcome and error message; the child's own report wins over anything inferred."""
    if report is not None:
        return _from_report(report, limits)
    if timed_out:
        return Outcome.TIMED_OUT, f"exceeded the wall-clock limit of {limits.timeout_s:g} s"

    cpu_limit = f"exceeded the CPU time limit of {limits.cpu_s:g} s"
    rc = returncode or 0
    if rc < 0:
        name = _signal_name(-rc)
        how = f"killed by signal {name}"
        if -rc == signal.SIGXCPU:
            return Outcome.TIMED_OUT, cpu_limit
        # SIGKILL at the CPU hard limit, for code that ignored SIGXCPU. Using wall time as a
        # lower bound of CPU time is exact for single-threaded code only.
        if -rc == signal.SIGKILL and duration_s >= limits.cpu_rlimit[1]:
            return Outcome.TIMED_OUT, f"{cpu_limit} ({how})"
        if _MEMORY_EVIDENCE.search(log_tail):
            return Outcome.OUT_OF_MEMORY, _out_of_memory(limits, how)
        if -rc == signal.SIGKILL:
            how += " (not by aecflow; often the system's out-of-memory killer)"
        return Outcome.CRASHED, how

    if _MEMORY_EVIDENCE.search(log_tail):
        return Outcome.OUT_OF_MEMORY, _out_of_memory(limits, f"exited with code {rc}")
    if rc == 0:
        return Outcome.CRASHED, f"exited without a result: {_last_line(log_tail)}"
    return Outcome.CRASHED, f"exited with code {rc}: {_last_line(log_tail)}"


def _from_report(report: dict[str, Any], limits: Limits) -> tuple[Outcome, str | None]:
    try:
        outcome = Outcome(str(report.get("outcome")))
    except ValueError:
        return Outcome.CRASHED, f"the child reported an unknown outcome {report.get('outcome')!r}"
    error = report.get("error")
    if outcome is Outcome.SUCCEEDED:
        return outcome, None
    if outcome is Outcome.OUT_OF_MEMORY:
        return outcome, _out_of_memory(limits, error or "MemoryError")
    if (
        outcome is Outcome.CRASHED
        and limits.memory_mb is not None
        and error
        and _MEMORY_EVIDENCE.search(error)
    ):
        # Native code under RLIMIT_AS fails in its own words (a library that cannot be
        # mapped, an allocator giving up); the cause is still the memory limit.
        return Outcome.OUT_OF_MEMORY, _out_of_memory(limits, error)
    return outcome, error or outcome.value


def _out_of_memory(limits: Limits, detail: str) -> str:
    if limits.memory_mb is None:
        return f"ran out of memory (no memory limit was set; {detail})"
    return f"exceeded the memory limit of {limits.memory_mb} MB ({detail})"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(log_tail: str) -> str:
    lines = [line for line in log_tail.splitlines() if line.strip()]
    return lines[-1].strip() if lines else "no output"
