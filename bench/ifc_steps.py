"""Time and peak memory of the IFC steps against the same operation in a plain script.

For each step (``ifc-validate``, ``ifc-ids``, ``ifc-csv``) and a synthetic IFC4 model
(``aecflow_processor_ifc.testing.synthetic``, cached under ``--data-dir``), in alternating
order:

* **plain**: a script in its own process doing what a person would write with IfcOpenShell
  and ifctester alone:

  - validate: ``ifcopenshell.validate.validate(path, json_logger())`` and the statements
    dumped to a JSON file;
  - ids: ``ifcopenshell.open``, ``ifctester.ids.open``, ``ids.validate(model)``, then the Json
    and Bcf reporters written to files;
  - csv: ``ifcopenshell.open`` and the step's own row writer
    (``aecflow_processor_ifc.steps.csv_export.write_rows``) into a file: the same extraction,
    without the header check, the nesting scan, the zip handling or the isolation;

* **core**: the step through ``aecflow.isolation.run_isolated``: a child process capped at the
  step's own ``resources()`` estimate (so the run also proves the estimate is enough), with an
  output directory for its artifacts.

Wall time is measured from outside (process start to exit, imports included on both sides).
Peak RSS is ``ru_maxrss`` of the plain process, and the ``peak_rss_mb`` the core's child
reports. Each figure is the fastest (time) and largest (RSS) of ``--reps`` runs. The machine's
load average is printed before and after: other work on a shared machine skews times.
Prints figures; asserts nothing. Goal (issue 17): core time <= 1.15 x plain.

    .venv/bin/python bench/ifc_steps.py                      # a 50 MB model, 1 repetition
    .venv/bin/python bench/ifc_steps.py --mb 200 --reps 2 --steps csv,ids
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MB = 1_000_000
GOAL_TIME_RATIO = 1.15
STEPS = ("validate", "ids", "csv")

IDS = """<?xml version="1.0" encoding="UTF-8"?>
<ids xmlns="http://standards.buildingsmart.org/IDS" xmlns:xs="http://www.w3.org/2001/XMLSchema"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<info><title>Bench</title></info><specifications>
<specification name="Walls load bearing" ifcVersion="IFC4">
  <applicability minOccurs="1" maxOccurs="unbounded">
    <entity><name><simpleValue>IFCWALL</simpleValue></name></entity></applicability>
  <requirements><property dataType="IFCBOOLEAN">
    <propertySet><simpleValue>Pset_WallCommon</simpleValue></propertySet>
    <baseName><simpleValue>LoadBearing</simpleValue></baseName></property></requirements>
</specification>
<specification name="Doors have a fire rating" ifcVersion="IFC4">
  <applicability minOccurs="1" maxOccurs="unbounded">
    <entity><name><simpleValue>IFCDOOR</simpleValue></name></entity></applicability>
  <requirements><property dataType="IFCLABEL">
    <propertySet><simpleValue>Pset_DoorCommon</simpleValue></propertySet>
    <baseName><simpleValue>FireRating</simpleValue></baseName></property></requirements>
</specification>
<specification name="Slabs are external" ifcVersion="IFC4">
  <applicability minOccurs="1" maxOccurs="unbounded">
    <entity><name><simpleValue>IFCSLAB</simpleValue></name></entity></applicability>
  <requirements><property dataType="IFCBOOLEAN">
    <propertySet><simpleValue>Pset_SlabCommon</simpleValue></propertySet>
    <baseName><simpleValue>IsExternal</simpleValue></baseName>
    <value><simpleValue>true</simpleValue></value></property></requirements>
</specification>
</specifications></ids>
"""
PSETS = ("Pset_WallCommon", "Pset_DoorCommon")


@dataclass
class Sample:
    seconds: float
    peak_rss_mb: float
    facts: dict[str, Any]


# -- the plain side, in a process of its own ---------------------------------------------------


def plain(step: str, path: Path, ids_path: Path, out_dir: Path) -> dict[str, Any]:
    """The operation as a plain IfcOpenShell/ifctester script does it."""
    import ifcopenshell

    if step == "validate":
        import ifcopenshell.validate

        logger = ifcopenshell.validate.json_logger()
        ifcopenshell.validate.validate(str(path), logger)
        with (out_dir / "validation.json").open("w", encoding="utf-8") as f:
            json.dump(logger.statements, f, default=str)
        return {"issues": len(logger.statements)}
    model = ifcopenshell.open(str(path))
    if step == "ids":
        from ifctester import ids, reporter

        document = ids.open(str(ids_path))
        document.validate(model)
        for cls, name in ((reporter.Json, "report.json"), (reporter.Bcf, "report.bcf")):
            report = cls(document)
            report.report()
            report.to_file(str(out_dir / name))
        return {"failed": sum(not s.status for s in document.specifications)}
    from aecflow_processor_ifc.steps.config import CsvConfig
    from aecflow_processor_ifc.steps.csv_export import write_rows

    with (out_dir / "elements.csv").open("w", encoding="utf-8", newline="") as f:
        counts = write_rows(model, f, CsvConfig(psets=PSETS))
    return {"rows": counts["rows"]}


def run_plain(step: str, path: Path, ids_path: Path) -> Sample:
    with tempfile.TemporaryDirectory() as out_dir:
        report = Path(out_dir) / "facts.json"
        started = time.perf_counter()
        argv = [sys.executable, __file__, "--plain", step, str(path), str(ids_path), out_dir]
        proc = subprocess.Popen(argv)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"the plain {step} script failed")
        facts = json.loads(report.read_text())
    return Sample(seconds, usage.ru_maxrss / 1024, facts)


# -- the core side ---------------------------------------------------------------------------


def run_core(step: str, path: Path, ids_path: Path) -> Sample:
    from aecflow.isolation import Limits, ProcessorSpec, run_isolated
    from aecflow.processing import ProcessingContext
    from aecflow_processor_ifc.steps import CsvConfig, CsvStep, IdsConfig, IdsStep, ValidateStep

    processor: Any = {
        "validate": lambda: ValidateStep(),
        "ids": lambda: IdsStep(IdsConfig(ids=(ids_path,))),
        "csv": lambda: CsvStep(CsvConfig(psets=PSETS)),
    }[step]()
    cls = type(processor)
    spec = ProcessorSpec(
        factory=f"{cls.__module__}:{cls.__qualname__}",
        config_model=f"{type(processor.config).__module__}:{type(processor.config).__qualname__}",
        config=processor.config,
    )
    size = path.stat().st_size
    limits = Limits(timeout_s=7200, memory_mb=processor.resources(size).memory_mb)
    with tempfile.TemporaryDirectory() as out_dir:
        context = ProcessingContext("bench", "bench", path.name, size, output_dir=Path(out_dir))
        started = time.perf_counter()
        report = asyncio.run(run_isolated(spec, path, context, limits))
        seconds = time.perf_counter() - started
    if report.outcome != "succeeded" or report.result is None:
        raise RuntimeError(f"core {step} ended {report.outcome}: {report.error}")
    result = report.result
    facts = {
        "validate": lambda: {"issues": result["issue_count"]},
        "ids": lambda: {"failed": result["specifications_failed"]},
        "csv": lambda: {"rows": result["rows"]},
    }[step]()
    facts["memory_cap_mb"] = limits.memory_mb
    return Sample(seconds, report.peak_rss_mb or 0.0, facts)


# -- the driver -------------------------------------------------------------------------------


def model_for(size_mb: int, data_dir: Path) -> Path:
    from aecflow_processor_ifc.testing.synthetic import Spec, write_model

    path = data_dir / f"synthetic-{size_mb}mb.ifc"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        spec = Spec(storeys=max(2, size_mb // 20), bays=None, target_bytes=size_mb * MB)
        expected = write_model(partial, spec)
        partial.rename(path)
        print(f"generated {path.name}: {expected.entity_count:,} entities", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=50, help="model size in MB")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--steps", default=",".join(STEPS))
    parser.add_argument(
        "--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "aecflow-bench-ifc"
    )
    parser.add_argument("--plain", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.plain:
        step, model, ids_path, out_dir = args.plain
        facts = plain(step, Path(model), Path(ids_path), Path(out_dir))
        (Path(out_dir) / "facts.json").write_text(json.dumps(facts))
        return

    path = model_for(args.mb, args.data_dir)
    ids_path = args.data_dir / "bench.ids"
    ids_path.write_text(IDS, encoding="utf-8")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"model {path.name}: {path.stat().st_size / MB:,.1f} MB", flush=True)
    rows = []
    for step in args.steps.split(","):
        samples: dict[str, list[Sample]] = {"plain": [], "core": []}
        for rep in range(args.reps):
            order = ["plain", "core"] if rep % 2 == 0 else ["core", "plain"]
            for side in order:
                run = run_plain if side == "plain" else run_core
                samples[side].append(run(step, path, ids_path))
                print(
                    f"  {step} {side}: {samples[side][-1].seconds:.1f} s "
                    f"(load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        best = {
            side: Sample(
                min(s.seconds for s in found), max(s.peak_rss_mb for s in found), found[0].facts
            )
            for side, found in samples.items()
        }
        rows.append((step, best))
    print()
    print(
        f"{'step':>8} {'plain s':>8} {'core s':>8} {'ratio':>6} {'plain RSS':>10} "
        f"{'core RSS':>9} {'RSS ratio':>9} {'cap':>7} goal  same facts"
    )
    for step, best in rows:
        p, c = best["plain"], best["core"]
        ratio = c.seconds / p.seconds
        cap = c.facts.pop("memory_cap_mb")
        same = "yes" if p.facts == c.facts else f"NO {p.facts} vs {c.facts}"
        rss_ratio = c.peak_rss_mb / p.peak_rss_mb
        print(
            f"{step:>8} {p.seconds:>8.1f} {c.seconds:>8.1f} {ratio:>6.2f} "
            f"{p.peak_rss_mb:>8.0f}MB {c.peak_rss_mb:>7.0f}MB {rss_ratio:>9.2f} "
            f"{cap:>5}MB {'ok' if ratio <= GOAL_TIME_RATIO else 'MISS':>4}  {same}"
        )
    print(f"\nload average after: {os.getloadavg()}; goal: core time <= {GOAL_TIME_RATIO} x plain")


if __name__ == "__main__":
    main()
