"""Scale-out: files processed per second by M = 1, 2, 4 ``aecflow worker`` processes.

For each M this starts a :class:`aecflow.testing.cluster.Cluster` on a fresh PostgreSQL
database: N hosts (``aecflow serve --no-worker``, default 2) and no worker; uploads F small
``*.burn`` files through the hosts (the ``burn`` processor spends a fixed CPU time on each,
default 0.2 s); then starts M workers (``--concurrency 1`` each unless ``--per-worker``) and
waits until every file is processed. Throughput is F over the span from the first job's start
to the last one's finish (each file's ``processing.started_at``/``finished_at``), so worker
start-up is not counted. It prints, per M: files/s, the per-file wall time (p50) and its
overhead over the CPU cost (the isolated child process, the copy, the database), and the
CPU-bound ceiling of this machine (cores / CPU per file).

``--chaos SECONDS`` adds a chaos run at size (clients uploading, listing, deleting against the
hosts while a random host or worker is SIGKILLed every ``--kill-every`` seconds), then prints
whether every acknowledged upload was stored once, processed once, announced with stable ids,
with no orphaned object and no job stuck (:mod:`aecflow.testing.chaos`).

    .venv/bin/python bench/scale.py                        # M = 1, 2, 4; 40 files; 0.2 s CPU each
    .venv/bin/python bench/scale.py --files 80 --workers 1 2 4 8
    .venv/bin/python bench/scale.py --chaos 60 --storage s3   # on moto S3

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aecflow.store import scratch
from aecflow.testing.chaos import Ledger, Receiver, chaos, client_mix, settle, verify
from aecflow.testing.cluster import Cluster

SAMPLES = Path(__file__).resolve().parents[1] / "../shared/samples/ifc"


def parse(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def upload_all(cluster: Cluster, files: int, size: int) -> None:
    hosts = cluster.host_urls
    async with httpx.AsyncClient(timeout=60) as http:
        sem = asyncio.Semaphore(8)

        async def one(n: int) -> None:
            async with sem:
                response = await http.post(
                    f"{hosts[n % len(hosts)]}/v1/projects/bench/files",
                    params={"filename": f"f{n:05d}.burn"},
                    content=os.urandom(size),
                )
                response.raise_for_status()

        await asyncio.gather(*(one(n) for n in range(files)))


async def measure(args: argparse.Namespace, workers: int, root: Path) -> dict[str, float]:
    cluster = Cluster(
        root,
        hosts=args.hosts,
        workers=0,
        burn_cpu_s=args.cpu,
        worker_concurrency=args.per_worker,
        storage=args.storage,
        s3_endpoint=args.s3_endpoint,
    )
    async with cluster:
        await upload_all(cluster, args.files, args.size)
        for n in range(1, workers + 1):
            cluster.add_worker(f"worker-{n}")
            cluster.restart(f"worker-{n}")
        assert cluster.flow is not None
        deadline = time.monotonic() + args.timeout
        while True:
            async with cluster.flow.engine.connect() as conn:
                rows = await scratch.table_rows(conn, "files")
            done = [r for r in rows if r["status"] in ("processed", "failed")]
            if len(done) == len(rows) == args.files:
                break
            if time.monotonic() > deadline:
                print(f"  timed out with {len(done)} of {args.files} done\n{cluster.tails()}")
                break
            await asyncio.sleep(0.5)
    processing = [r["processing"] for r in done if r["processing"]]
    failed = sum(1 for r in done if r["status"] == "failed")
    started = min(parse(p["started_at"]) for p in processing)
    finished = max(parse(p["finished_at"]) for p in processing)
    span = (finished - started).total_seconds()
    walls = [p["duration_s"] for p in processing]
    return {
        "workers": workers,
        "files": len(done),
        "failed": failed,
        "span_s": span,
        "files_per_s": len(done) / span if span else float("nan"),
        "wall_p50_s": statistics.median(walls),
    }


async def chaos_run(args: argparse.Namespace, root: Path) -> None:
    models = sorted(p for p in SAMPLES.glob("*.ifc") if p.stat().st_size < 200_000)
    async with Receiver().running() as receiver:
        cluster = Cluster(
            root,
            hosts=args.hosts,
            workers=max(args.workers),
            notifiers=[receiver.notifier()],
            burn_cpu_s=args.cpu,
            storage=args.storage,
            s3_endpoint=args.s3_endpoint,
        )
        async with cluster:
            ledger, stop = Ledger(), asyncio.Event()
            clients = asyncio.create_task(
                client_mix(cluster, ledger, stop, clients=args.clients, ifc=models, pause_s=0.1)
            )
            killer = asyncio.create_task(chaos(cluster, stop, every_s=args.kill_every))
            await asyncio.sleep(args.chaos)
            stop.set()
            killed = await killer
            await clients
            began = time.monotonic()
            state = await settle(cluster, timeout_s=args.timeout)
            verdict = await verify(cluster, ledger, receiver, state)
    print(f"\nchaos: {args.chaos:g} s, {len(killed)} kills ({', '.join(killed)})")
    print(f"  settled in {time.monotonic() - began:.1f} s; {verdict.counts}")
    print(f"  client outcomes: {dict(sorted(ledger.outcomes.items()))}")
    if verdict:
        print("  verdict: nothing acknowledged lost or duplicated, no orphan, no job stuck")
    else:
        print(f"  verdict: {len(verdict.problems)} PROBLEMS")
        for line in verdict.problems[:40]:
            print(f"    {line}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--hosts", type=int, default=2)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--size", type=int, default=4096, help="bytes per file")
    parser.add_argument("--cpu", type=float, default=0.2, help="CPU seconds per file")
    parser.add_argument("--per-worker", type=int, default=1, help="concurrency of each worker")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--chaos", type=float, default=0, metavar="SECONDS")
    parser.add_argument("--kill-every", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    args.s3_endpoint = None
    moto = None
    if args.storage == "s3":
        from aecflow.testing.aws import ACCESS_KEY, SECRET_KEY, MotoServer

        moto = MotoServer()
        moto.start()
        args.s3_endpoint = moto.endpoint
        os.environ |= {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    cores = os.cpu_count() or 1
    print(
        f"{args.files} files x {args.cpu:g} s CPU, {args.hosts} hosts, {args.storage} storage, "
        f"each worker --concurrency {args.per_worker}; {cores} cores: CPU-bound ceiling "
        f"{cores / args.cpu:.1f} files/s; load before: {os.getloadavg()[0]:.2f}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="aecflow-scale-") as tmp:
        for m in args.workers:
            result = await measure(args, m, Path(tmp) / f"m{m}")
            results.append(result)
            print(
                f"  M={m}: {result['files_per_s']:.2f} files/s over {result['span_s']:.1f} s "
                f"({result['files']:.0f} files, {result['failed']:.0f} failed); wall per file "
                f"p50 {result['wall_p50_s']:.2f} s = {args.cpu:g} s CPU + "
                f"{result['wall_p50_s'] - args.cpu:.2f} s overhead; load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
        print("\n  workers  files/s  speed-up  per-file wall p50")
        base = results[0]["files_per_s"]
        for r in results:
            print(
                f"  {r['workers']:>7.0f}  {r['files_per_s']:>7.2f}  {r['files_per_s'] / base:>8.2f}"
                f"  {r['wall_p50_s']:>8.2f} s"
            )
        best = max(results, key=lambda r: r["files_per_s"])
        wall = best["wall_p50_s"]
        busy = os.getloadavg()[0]
        print(
            f"\n  limit: {best['files_per_s']:.2f} files/s at M={best['workers']:.0f}, against a "
            f"CPU-bound ceiling of {cores / args.cpu:.1f} files/s on {cores} cores. Each file "
            f"costs {wall:.2f} s of wall time of which {args.cpu:g} s is the processor's CPU: "
            f"the rest is the per-job overhead (a fresh isolated child process, the copy, the "
            f"recording transaction), so "
            + (
                "the overhead, not the processing, bounds a worker; more workers help until "
                "the cores are full"
                if wall > 2 * args.cpu
                else "the processing bounds it; beyond M = cores the workers share the CPU"
            )
            + f" (load average now {busy:.2f} on {cores} cores: other work shares them)."
        )
        if args.chaos:
            await chaos_run(args, Path(tmp) / "chaos")
    if moto is not None:
        moto.stop()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
