"""Filename substring search at 100,000 files in one project, with and without pg_trgm.

Loads N files (default 100,000) into ONE project in a throw-away PostgreSQL database (schema
from aecflow's migrations, dropped at the end), with ISO 19650-style names, then times
``aecflow.store.files.search`` -- what ``Flow.list``, ``aecflow files list --filename`` and the
HTTP listing run -- for substring searches: a no-match term (the worst case without an index:
every row of the project is read) and a few that match. Each query runs ``--repeat`` times;
p50 and p99 in milliseconds are printed with the trigram index (migration 0006) and again after
dropping it. Goal: a no-match search under 20 ms. Prints figures; asserts nothing.

    .venv/bin/python bench/search.py --files 100000

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import statistics
import sys
import time
import uuid

import sqlalchemy as sa

from aecflow.store import files as catalog
from aecflow.store import scratch
from aecflow.store.engine import create_engine, upgrade
from aecflow.store.files import FileQuery
from aecflow.store.schema import files

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PROJECT = "tower-a"
BATCH = 5_000
DESCRIPTIONS = [
    "Level {n:02d} model.ifc",
    "General arrangement level {n:02d}.pdf",
    "Section {n}-{n}.dwg",
    "North elevation {n}.pdf",
    "Door schedule rev {n}.xlsx",
    "Fire strategy report {n}.pdf",
]
#: (label, term): the no-match term is the case the index is for.
TERMS = [
    ("no match", "zzq-nothing"),
    ("rare (about 0.1 %)", "TWA-ARP-Z1-07-M3-A-0042"),
    ("common (one in six)", "elevation"),
    ("with % and _", "100%_x"),
]


def filename(rng: random.Random, n: int) -> str:
    code = f"TWA-{rng.choice(['ARP', 'BHE', 'WSP'])}-Z{rng.randint(1, 3)}-{rng.randint(0, 12):02d}"
    kind = rng.choice(["M3", "DR", "SH", "RP"])
    number = f"{n % 10_000:04d}"
    text = rng.choice(DESCRIPTIONS).format(n=rng.randint(1, 40))
    return f"{code}-{kind}-{rng.choice('ASMECLF')}-{number} {text}"


async def load(url: str, count: int) -> None:
    engine = create_engine(url)
    rng = random.Random(20261207)
    now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
    try:
        await upgrade(engine)
        for start in range(0, count, BATCH):
            rows = []
            for n in range(start, min(count, start + BATCH)):
                name = filename(rng, n)
                rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "project": PROJECT,
                        "filename": name,
                        "size": 1000 + n,
                        "sha256": "0" * 64,
                        "storage_backend": "local",
                        "storage_key": f"{PROJECT}/{n}",
                        "status": "processed",
                        "meta": {"phase": "design"},
                        "created_at": now - dt.timedelta(seconds=n),
                        "updated_at": now,
                    }
                )
            async with engine.begin() as conn:
                await conn.execute(sa.insert(files), rows)
        await vacuum(engine)
    finally:
        await engine.dispose()


async def vacuum(engine: sa.ext.asyncio.AsyncEngine) -> None:
    """What autovacuum does after a bulk load (GIN's pending list into the index, statistics)."""
    async with engine.connect() as conn:
        autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await autocommit.execute(sa.text("VACUUM ANALYZE files"))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, repeat: int) -> dict[str, tuple[float, float, int]]:
    engine = create_engine(url)
    results: dict[str, tuple[float, float, int]] = {}
    try:
        async with engine.connect() as conn:
            for label, term in TERMS:
                query = FileQuery(project=PROJECT, filename_contains=term, limit=50)
                await catalog.search(conn, query)  # warm the cache and the prepared statement
                times = []
                found = 0
                for _ in range(repeat):
                    began = time.perf_counter()
                    page = await catalog.search(conn, query)
                    times.append((time.perf_counter() - began) * 1000)
                    found = len(page.items)
                results[label] = (statistics.median(times), percentile(times, 0.99), found)
    finally:
        await engine.dispose()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=100)
    args = parser.parse_args()
    admin = os.environ.get("AECFLOW_TEST_DATABASE_URL") or LOCAL_POSTGRES
    if problem := await scratch.unreachable(admin):
        print(f"PostgreSQL not reachable at {admin}: {problem}; nothing measured")
        return
    name = f"aecflow_bench_search_{uuid.uuid4().hex[:8]}"
    url = await scratch.create_database(admin, name)
    try:
        began = time.perf_counter()
        await load(url, args.files)
        print(
            f"loaded {args.files:,} files into one project in {time.perf_counter() - began:.1f} s"
        )
        with_index = await measure(url, args.repeat)
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(sa.text("DROP INDEX ix_files_filename_trgm"))
            await vacuum(engine)
        finally:
            await engine.dispose()
        without = await measure(url, args.repeat)
    finally:
        await scratch.drop_database(admin, name)
    load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"search over {args.files:,} files in one project, {args.repeat} runs each, "
        f"page of 50 (load average {load_avg}; python {sys.version.split()[0]})"
    )
    print(f"{'term':24} {'rows':>5} {'trgm p50':>9} {'p99':>8} {'no index p50':>13} {'p99':>8}")
    for label, _term in TERMS:
        p50, p99, found = with_index[label]
        q50, q99, _ = without[label]
        print(f"{label:24} {found:5d} {p50:8.2f}ms {p99:6.2f}ms {q50:11.2f}ms {q99:6.2f}ms")
    no_match = with_index["no match"][0]
    print(
        f"goal: no-match search < 20 ms at p50 -> {'met' if no_match < 20 else 'missed'} "
        f"({no_match:.2f} ms)"
    )


if __name__ == "__main__":
    asyncio.run(main())
