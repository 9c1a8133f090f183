"""Time and peak memory of the IFC processor against a plain IfcOpenShell script.

Generates synthetic IFC4 models of about 10, 100 and 500 MB (walls, slabs, columns, doors,
material layer sets, quantities; ``aecflow_processor_ifc.testing.synthetic``), cached under
``--data-dir``. For each model, in the same run and in alternating order, it measures:

* **plain**: a plain script in its own process: ``ifcopenshell.open(lazy=True,
  bypass_types=...)`` and the same extraction (``aecflow_processor_ifc.extract.summarise``),
  nothing else: no header check, no text scan, no zip handling, no isolation;
* **in-process**: the plugin's ``IfcProcessor().process`` in its own process;
* **core**: the plugin through the core's isolation (``aecflow.isolation.run_isolated``: a
  child process under RLIMIT_AS set to the processor's own ``resources()`` estimate, so the
  run also proves the estimate is enough).

Wall time is measured from outside, process start to exit, so interpreter start and imports
count on every side. Peak RSS is the process's ``ru_maxrss`` (``wait4``); for the core it is
the ``peak_rss_mb`` the child reports. The forked scan helper's own peak is shown apart
("helper"): it is a separate, small process.

Goals (from the issue): core time <= 1.15 x plain time; core peak RSS <= 1.5 x file size +
150 MB. The machine's load average is printed: other work on it skews times, so each figure
is the fastest of ``--reps`` runs. Prints figures; asserts nothing.

    .venv/bin/python bench/ifc.py                     # 10, 100, 500 MB; 2 repetitions
    .venv/bin/python bench/ifc.py --sizes 10,100 --reps 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1_000_000
GOAL_TIME_RATIO = 1.15
GOAL_RSS_FACTOR = 1.5
GOAL_RSS_BASE_MB = 150


@dataclass
class Sample:
    seconds: float
    peak_rss_mb: float
    #: User + system CPU time of the process and the children it waited for (the scan helper).
    cpu_s: float = 0.0
    helper_rss_mb: float | None = None
    summary: dict[str, Any] | None = None


# -- the two sides that run in a process of their own --------------------------------------


def plain_side(path: Path) -> dict[str, Any]:
    """The plain IfcOpenShell script: open lazily without geometry, extract, nothing else."""
    import ifcopenshell

    from aecflow_processor_ifc.config import SKIPPED_TYPES, IfcProcessorConfig
    from aecflow_processor_ifc.extract import summarise

    model = ifcopenshell.open(str(path), lazy=True, bypass_types=list(SKIPPED_TYPES))
    return summarise(model, IfcProcessorConfig())


def plugin_side(path: Path) -> dict[str, Any]:
    """The plugin as the core's child would run it, minus the isolation."""
    from aecflow.processing import ProcessingContext
    from aecflow_processor_ifc import IfcProcessor

    context = ProcessingContext("bench", "bench", path.name, path.stat().st_size)
    return IfcProcessor().process(path, context).data


def fingerprint(summary: dict[str, Any]) -> dict[str, Any]:
    """What must agree between the sides for "the same extraction" to hold."""
    return {
        "element_counts": summary["element_counts"],
        "storeys": summary["storeys"],
        "elements_with_material": summary["elements_with_material"],
        "quantity_values": summary["quantity_value_count"],
    }


def run_side(side: str, path: Path) -> Sample:
    """Run ``side`` in a fresh process; wall time and ru_maxrss from outside."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, __file__, f"--{side}", str(path), out.name])
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{side} side failed with exit code {proc.returncode}")
        report = json.load(out)
    return Sample(
        seconds=seconds,
        peak_rss_mb=usage.ru_maxrss / 1024,
        cpu_s=usage.ru_utime + usage.ru_stime,
        helper_rss_mb=report.get("helper_rss_mb"),
        summary=report["summary"],
    )


# -- through the core ------------------------------------------------------------------------


def core_side(path: Path) -> Sample:
    """The plugin through ``aecflow.isolation.run_isolated``, capped at its own estimate.

    THROUGH-THE-CORE HOOK: this is where the core's isolated runner plugs in. It needs
    ``aecflow.isolation`` with ``run_isolated(spec, path, context, limits)`` returning a
    report with ``outcome``, ``result``, ``duration_s`` and ``peak_rss_mb``.
    """
    from aecflow.isolation import Limits, ProcessorSpec, run_isolated
    from aecflow.processing import ProcessingContext
    from aecflow_processor_ifc import IfcProcessor, IfcProcessorConfig

    size = path.stat().st_size
    needs = IfcProcessor().resources(size)
    spec = ProcessorSpec(
        factory="aecflow_processor_ifc.processor:IfcProcessor",
        config_model="aecflow_processor_ifc.config:IfcProcessorConfig",
        config=IfcProcessorConfig(),
    )
    context = ProcessingContext("bench", "bench", path.name, size)
    limits = Limits(timeout_s=3600, memory_mb=needs.memory_mb)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    report = asyncio.run(run_isolated(spec, path, context, limits))
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if report.outcome != "succeeded":
        raise RuntimeError(f"core run ended {report.outcome}: {report.error}")
    return Sample(
        seconds=seconds, peak_rss_mb=report.peak_rss_mb or 0.0, cpu_s=cpu_s, summary=report.result
    )


def core_available() -> str | None:
    """None if the core's isolated runner is there, else why not."""
    try:
        from aecflow.isolation import run_isolated  # noqa: F401
    except ImportError as exc:
        return f"aecflow.isolation.run_isolated is not available ({exc})"
    return None


# -- the driver -------------------------------------------------------------------------------


def model_for(size_mb: int, data_dir: Path) -> Path:
    """The cached synthetic model of about ``size_mb`` MB, generated on first use."""
    from aecflow_processor_ifc.testing.synthetic import Spec, write_model

    path = data_dir / f"synthetic-{size_mb}mb.ifc"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        spec = Spec(storeys=max(2, size_mb // 20), bays=None, target_bytes=size_mb * MB)
        expected = write_model(partial, spec)
        partial.rename(path)
        print(
            f"generated {path.name}: {expected.size / MB:,.1f} MB, "
            f"{expected.entity_count:,} entities in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
    return path


def best(samples: list[Sample]) -> Sample:
    fastest = min(samples, key=lambda s: s.seconds)
    return Sample(
        seconds=fastest.seconds,
        peak_rss_mb=max(s.peak_rss_mb for s in samples),
        cpu_s=min(s.cpu_s for s in samples),
        helper_rss_mb=max((s.helper_rss_mb or 0.0) for s in samples) or None,
        summary=fastest.summary,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,500", help="model sizes in MB")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "aecflow-bench-ifc"
    )
    parser.add_argument("--plain", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--plugin", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.plain or args.plugin:  # one side, in this process
        model, out = args.plain or args.plugin
        summary = (plain_side if args.plain else plugin_side)(Path(model))
        helper = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        Path(out).write_text(json.dumps({"summary": summary, "helper_rss_mb": helper or None}))
        return

    missing_core = core_available()
    if missing_core:
        print(f"core: skipped, {missing_core}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    rows = []
    for size_mb in (int(s) for s in args.sizes.split(",")):
        path = model_for(size_mb, args.data_dir)
        samples: dict[str, list[Sample]] = {"plain": [], "in-process": [], "core": []}
        for rep in range(args.reps):
            order = ["plain", "in-process", "core"]
            if rep % 2:
                order.reverse()
            for side in order:
                if side == "core" and missing_core:
                    continue
                if side == "core":
                    samples[side].append(core_side(path))
                else:
                    samples[side].append(run_side("plugin" if side == "in-process" else side, path))
        results = {side: best(found) for side, found in samples.items() if found}
        agree = len(
            {json.dumps(fingerprint(r.summary or {}), sort_keys=True) for r in results.values()}
        )
        rows.append((path, results, agree == 1))
        print(f"measured {path.name} (load {os.getloadavg()[0]:.1f})", flush=True)

    print()
    header = (
        f"{'model':>10} {'plain s':>8} {'in-proc s':>9} {'core s':>7} {'core/plain':>10} "
        f"{'plain RSS':>9} {'in-proc RSS':>11} {'core RSS':>8} {'helper':>6} {'RSS goal':>8} "
        f"{'time':>4} {'RSS':>4} same  {'CPU s plain/in-proc/core':>25}"
    )
    print(header)
    for path, results, same in rows:
        size = path.stat().st_size / MB
        plain, inproc = results["plain"], results["in-process"]
        core = results.get("core")
        goal_rss = GOAL_RSS_FACTOR * size + GOAL_RSS_BASE_MB
        measured = core or inproc
        ratio = measured.seconds / plain.seconds
        nan = float("nan")
        time_ok = "ok" if ratio <= GOAL_TIME_RATIO else "MISS"
        rss_ok = "ok" if measured.peak_rss_mb <= goal_rss else "MISS"
        print(
            f"{size:>8.0f}MB {plain.seconds:>8.2f} {inproc.seconds:>9.2f} "
            f"{core.seconds if core else nan:>7.2f} {ratio:>10.2f} "
            f"{plain.peak_rss_mb:>7.0f}MB {inproc.peak_rss_mb:>9.0f}MB "
            f"{core.peak_rss_mb if core else nan:>6.0f}MB "
            f"{inproc.helper_rss_mb or 0:>4.0f}MB {goal_rss:>6.0f}MB "
            f"{time_ok:>4} {rss_ok:>4} {'yes' if same else 'NO':>4}"
            f"  {plain.cpu_s:>7.2f} {inproc.cpu_s:>7.2f} {core.cpu_s if core else nan:>7.2f}"
        )
    print(
        f"\ngoals: core time <= {GOAL_TIME_RATIO} x plain; core peak RSS <= "
        f"{GOAL_RSS_FACTOR} x size + {GOAL_RSS_BASE_MB} MB ('in-proc' stands in without the core)"
    )
    print(
        "times are the fastest of the repetitions; CPU includes the forked scan helper, which "
        "runs beside the parse: it costs CPU, not wall time, when a core is free"
    )


if __name__ == "__main__":
    main()
