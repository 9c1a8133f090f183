"""The child side of processor isolation, run as ``python -m aecflow.isolation.child``.

The parent (:mod:`aecflow.isolation`) sends one pickled job on stdin. The job holds only plain
Python values, so unpickling it imports nothing: the limits are in force before any processor
code, pydantic or native library is imported. Every outcome this process can still report is
written as JSON to the job's result path; anything it cannot report (a signal, an exit without
a result) the parent classifies from the exit status and the log.

Only the standard library is imported at module level, on purpose.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import resource
import sys
import traceback
from pathlib import Path
from typing import Any


def import_path(path: str) -> Any:
    """Resolve ``"package.module:Qual.name"`` to the object it names."""
    module_name, _, qualname = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _set_limit(which: int, soft: int, hard: int) -> None:
    """Lower a limit, never asking for more than the inherited hard limit (that would fail)."""
    _, inherited = resource.getrlimit(which)
    if inherited != resource.RLIM_INFINITY:
        hard = min(hard, inherited)
        soft = min(soft, hard)
    resource.setrlimit(which, (soft, hard))


def apply_limits(memory_mb: int | None, cpu_rlimit: tuple[int, int]) -> None:
    """Cap address space and CPU time, and never dump a core (a 4 GB core helps nobody)."""
    if memory_mb is not None:
        # soft == hard, so the processor cannot raise its own cap.
        cap = memory_mb * 1024 * 1024
        _set_limit(resource.RLIMIT_AS, cap, cap)
    # The kernel sends SIGXCPU at the soft limit (default action: terminate) and SIGKILL at the
    # hard limit, for code that catches or ignores SIGXCPU.
    _set_limit(resource.RLIMIT_CPU, *cpu_rlimit)
    _set_limit(resource.RLIMIT_CORE, 0, 0)


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent dies, even by SIGKILL (Linux; elsewhere nothing is done).

    The kernel signals when the thread that forked this process exits; the parent forks from
    its event loop's thread, which lives as long as the parent does. The parent may already
    have died before the prctl, so check that it is still the parent afterwards."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not fatal: the parent still kills the group on every normal path
    if os.getppid() != parent_pid:
        os._exit(1)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _describe(exc: BaseException) -> str:
    message = str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Build the processor and run it; return the report to write (without peak_rss_mb)."""
    # Imported here, after the limits, like everything else the processor needs. (Running with
    # -m has already imported the aecflow package itself, so its __init__ must stay light.)
    from aecflow.processing import InvalidInput, ProcessingContext, ProcessingResult
    from aecflow.registry import instantiate

    try:
        config_model = import_path(job["config_model"])
        # The config travels as a pickle of the model itself: a SecretStr keeps its value
        # (model_dump_json would mask it) and custom field types round-trip exactly.
        config = pickle.loads(job["config"])
        if not isinstance(config, config_model):
            raise TypeError(f"config is a {type(config).__name__}, not {job['config_model']}")
        processor = instantiate(import_path(job["factory"]), config)
        fields = dict(job["context"])
        if fields.get("output_dir") is not None:
            fields["output_dir"] = Path(fields["output_dir"])
        result = processor.process(Path(job["path"]), ProcessingContext(**fields))
    except InvalidInput as exc:
        report: dict[str, Any] = {"outcome": "invalid_input", "error": str(exc)}
        if isinstance(getattr(exc, "result", None), dict):
            report["result"] = exc.result
        return report
    except MemoryError as exc:
        return {"outcome": "out_of_memory", "error": _describe(exc)}
    except BaseException as exc:  # SystemExit and KeyboardInterrupt are crashes here too
        traceback.print_exc()  # the full story goes to the log; the report gets one line
        return {"outcome": "crashed", "error": _describe(exc)}

    if not isinstance(result, ProcessingResult):
        return {
            "outcome": "crashed",
            "error": f"process() returned {type(result).__name__}, not a ProcessingResult",
        }
    # The declared artifacts travel back as plain values; the parent checks and stores them.
    artifacts = [{"name": a.name, "media_type": a.media_type} for a in result.artifacts]
    return {"outcome": "succeeded", "result": result.data, "artifacts": artifacts}


def write_result(path: str, report: dict[str, Any]) -> None:
    """Write the report atomically: the parent sees the whole file or none of it."""
    report["peak_rss_mb"] = _peak_rss_mb()
    try:
        # allow_nan=False: NaN and Infinity are not JSON and would break the database later.
        text = json.dumps(report, allow_nan=False)
    except (TypeError, ValueError) as exc:
        if report.get("outcome") == "invalid_input" and "result" in report:
            # What could be read is a courtesy: without it the refusal still stands.
            del report["result"]
            write_result(path, report)
            return
        text = json.dumps(
            {
                "outcome": "crashed",
                "error": f"the processor's result is not JSON-serialisable: {_describe(exc)}",
                "peak_rss_mb": report["peak_rss_mb"],
            }
        )
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(partial, path)


def main() -> None:
    job = pickle.loads(sys.stdin.buffer.read())
    die_with_parent(job["parent_pid"])
    apply_limits(job["memory_mb"], job["cpu_rlimit"])
    # The parent's import path, so processors defined in tests or in an embedding application
    # import here exactly as they do there.
    sys.path[:] = job["sys_path"]
    report = run(job)  # returns after the except blocks, so a MemoryError's frames are freed
    write_result(job["result_path"], report)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit, not a normal exit: a non-daemon thread left behind by the processor must not
    # keep the child alive until the wall-clock limit.
    os._exit(0)


if __name__ == "__main__":
    main()
