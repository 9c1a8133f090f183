"""Soak: steady uploads with processing and webhook notifications for an hour; watch for leaks.

Starts a :class:`aecflow.testing.cluster.Cluster` (``--hosts`` 2 ``aecflow serve --no-worker``
and ``--workers`` 2 ``aecflow worker`` processes on a fresh PostgreSQL database, local storage)
with a signed-webhook receiver, and uploads one IFC model every ``--every`` seconds through the
hosts in turn: the real samples in ``../shared/samples/ifc`` (the small ones) and synthetic
models of 50-400 KB (``aecflow_processor_ifc.testing.synthetic``), each under a new name, so
each is stored, processed by the IFC processor and announced. Every ``--interval`` seconds
(default 60) it samples, for each host and worker process: resident memory (RSS) and open file
descriptors; and for the database: connections to it (``pg_stat_activity``) and its size. At
the end it prints each series' first and last value and its slope per hour (least squares
over the samples after the first, which includes start-up), then settles and checks that
every upload was processed and announced.

    .venv/bin/python bench/soak.py                      # 60 minutes, a sample a minute
    .venv/bin/python bench/soak.py --minutes 5 --interval 30

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432.
Goal (seed 000): flat RSS and file descriptors over an hour. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil

from aecflow.store import scratch
from aecflow.testing.chaos import Ledger, Receiver, settle, verify
from aecflow.testing.cluster import Cluster

SAMPLES = Path(__file__).resolve().parents[1] / "../shared/samples/ifc"
KB = 1024


def synthetic_models(directory: Path) -> list[Path]:
    from aecflow_processor_ifc.testing.synthetic import Spec, write_model

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for size_kb in (50, 120, 400):
        path = directory / f"synthetic-{size_kb}kb.ifc"
        write_model(path, Spec(storeys=2, bays=None, target_bytes=size_kb * KB))
        paths.append(path)
    return paths


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per hour."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return float("nan")
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 3600


async def uploader(
    cluster: Cluster, ledger: Ledger, models: list[Path], every_s: float, stop: asyncio.Event
) -> None:
    import hashlib

    from aecflow.testing.chaos import Upload

    bodies = [(p.name, p.read_bytes()) for p in models]
    hosts = itertools.cycle(cluster.host_urls)
    async with httpx.AsyncClient(timeout=60) as http:
        for name, body in itertools.cycle(bodies):
            if stop.is_set():
                return
            began = time.monotonic()
            filename = f"{uuid.uuid4().hex[:10]}-{name}"
            try:
                response = await http.post(
                    f"{next(hosts)}/v1/projects/soak/files",
                    params={"filename": filename},
                    content=body,
                )
                ledger.outcomes[f"upload:{response.status_code}"] += 1
                if response.status_code == 201:
                    record = response.json()
                    ledger.uploads[record["id"]] = Upload(
                        record["id"],
                        "soak",
                        filename,
                        len(body),
                        hashlib.sha256(body).hexdigest(),
                        "ifc",
                    )
            except httpx.HTTPError as exc:
                ledger.outcomes[f"upload:{type(exc).__name__}"] += 1
            ledger.latencies["upload"].append(time.monotonic() - began)
            rest = every_s - (time.monotonic() - began)
            if rest > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rest)


async def sample(cluster: Cluster) -> dict[str, float]:
    values: dict[str, float] = {}
    for name, pid in cluster.pids().items():
        try:
            proc = psutil.Process(pid)
            values[f"{name} rss_mb"] = proc.memory_info().rss / (1024 * 1024)
            values[f"{name} fds"] = proc.num_fds()
        except psutil.Error:
            continue
    assert cluster.flow is not None
    async with cluster.flow.engine.connect() as conn:
        gauges = await scratch.server_gauges(conn)
    values["db connections"] = gauges["connections"]
    values["db size_mb"] = gauges["database_bytes"] / (1024 * 1024)
    return values


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between uploads")
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    real = sorted(p for p in SAMPLES.glob("*.ifc") if p.stat().st_size < 200 * KB)
    with tempfile.TemporaryDirectory(prefix="aecflow-soak-") as tmp:
        models = real + synthetic_models(Path(tmp) / "models")
        print(
            f"soak: {args.minutes:g} min, an upload every {args.every:g} s of "
            f"{len(real)} real + 3 synthetic IFC models, {args.hosts} hosts, {args.workers} "
            f"workers, a sample every {args.interval:g} s; load {os.getloadavg()}",
            flush=True,
        )
        async with Receiver().running() as receiver:
            cluster = Cluster(
                Path(tmp) / "cluster",
                hosts=args.hosts,
                workers=args.workers,
                notifiers=[receiver.notifier()],
            )
            async with cluster:
                ledger, stop = Ledger(), asyncio.Event()
                task = asyncio.create_task(uploader(cluster, ledger, models, args.every, stop))
                series: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
                began = time.monotonic()
                end = began + args.minutes * 60
                while True:
                    now = time.monotonic() - began
                    for key, value in (await sample(cluster)).items():
                        series[key].append((now, value))
                    print(
                        f"  t={now / 60:5.1f} min: {len(ledger.uploads)} uploads, "
                        f"{len(receiver.events)} events, load {os.getloadavg()[0]:.2f}",
                        flush=True,
                    )
                    if time.monotonic() >= end:
                        break
                    await asyncio.sleep(min(args.interval, max(0.0, end - time.monotonic())))
                stop.set()
                await task
                state = await settle(cluster, timeout_s=300)
                verdict = await verify(cluster, ledger, receiver, state)
        elapsed = time.monotonic() - began
    print(f"\n  {'series':<24} {'first':>10} {'last':>10} {'slope/hour':>12}")
    for key in sorted(series):
        points = series[key]
        print(
            f"  {key:<24} {points[0][1]:>10.1f} {points[-1][1]:>10.1f} "
            f"{slope_per_hour(points[1:]):>+12.2f}"
        )
    uploads = len(ledger.uploads)
    print(
        f"\n  {uploads} uploads in {elapsed / 60:.1f} min ({uploads / elapsed:.2f}/s), "
        f"{verdict.counts['events']} events received, outcomes {dict(ledger.outcomes)}"
    )
    print(
        "  verdict: every upload processed and announced"
        if verdict
        else f"  verdict: {len(verdict.problems)} PROBLEMS: {verdict.problems[:10]}"
    )
    print(f"  load at end: {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
