"""Indexes that keep listing fast at 100,000+ files.

Loads N synthetic files (default 200,000) into SQLite (a temporary file) and PostgreSQL (a
throw-away database, dropped at the end), with the schema made by aecflow's own migrations,
then times ``aecflow.store.files.search`` -- what ``Flow.list``, ``aecflow files list`` and the
HTTP listing run -- for the listings people actually ask for. Half the files belong to one big
project; the other half is spread over 19 smaller ones. Prints figures; asserts nothing.

    .venv/bin/python bench/list.py --files 100000

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432;
without one only SQLite is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import gc
import itertools
import math
import os
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from aecflow.ids import uuid7
from aecflow.store import files as catalog
from aecflow.store.engine import create_engine, upgrade
from aecflow.store.files import FileQuery
from aecflow.store.schema import files

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BATCH = 5_000
SEED = 20_261_121
SPAN = dt.timedelta(days=730)  # two years of uploads, oldest first

BIG = "tower-a"
SMALL = "fire-station-9"  # the smallest project: about 0.7 % of all files
PROJECTS = {  # name -> ISO 19650 project code used in filenames
    BIG: "TWA",
    "hospital-north": "HSN",
    "bridge-m4-j12": "BM4",
    "school-riverside": "SRV",
    "depot-east": "DPE",
    "library-central": "LBC",
    "tower-b": "TWB",
    "campus-lab-3": "CL3",
    "station-square": "STS",
    "housing-block-7": "HB7",
    "airport-pier-2": "AP2",
    "museum-annex": "MSA",
    "water-works": "WTW",
    "stadium-west": "STW",
    "hotel-harbour": "HTH",
    "office-park-5": "OP5",
    "tunnel-link": "TNL",
    "care-home-elm": "CHE",
    "retail-plaza": "RTP",
    "fire-station-9": "FS9",
}
# The big project holds half of all files; the rest fall off like a Zipf distribution.
_others = [name for name in PROJECTS if name != BIG]
_tail = [1 / (rank + 1) for rank in range(len(_others))]
PROJECT_NAMES = [BIG, *_others]
PROJECT_CUM = list(itertools.accumulate([sum(_tail), *_tail]))

ROLES = {  # ISO 19650 role code -> metadata "discipline"
    "A": "architecture",
    "S": "structure",
    "M": "mechanical",
    "E": "electrical",
    "P": "plumbing",
    "C": "civil",
    "L": "landscape",
    "F": "fire",
}
ROLE_CODES = list(ROLES)
ROLE_WEIGHTS = [30, 20, 15, 12, 8, 6, 4, 5]
ORIGINATORS = ["ARP", "BHE", "WSP", "ARU", "MOT", "FST"]
VOLUMES = ["ZZ", "Z1", "Z2", "Z3", "B1"]
LEVELS = ["B1", "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "RF", "ZZ"]
# (type code, description template, extension, content type, weight)
DOCUMENTS = [
    ("M3", "Level {lvl} model", "ifc", "application/x-step", 30),
    ("M3", "Federated model", "ifc", "application/x-step", 4),
    ("M3", "Coordination model", "rvt", "application/octet-stream", 6),
    ("DR", "General arrangement level {lvl}", "pdf", "application/pdf", 14),
    ("DR", "Section {sec}-{sec}", "pdf", "application/pdf", 10),
    ("DR", "Section {sec}-{sec}", "dwg", "image/vnd.dwg", 4),
    ("DR", "{side} elevation", "pdf", "application/pdf", 8),
    ("DR", "Detail {det}", "dwg", "image/vnd.dwg", 6),
    ("SH", "Door schedule", "xlsx", "application/vnd.ms-excel", 3),
    ("SH", "Room data sheet", "xlsx", "application/vnd.ms-excel", 3),
    ("RP", "Fire strategy report", "pdf", "application/pdf", 2),
    ("RP", "Clash detection report", "pdf", "application/pdf", 1),
    ("SU", "Point cloud survey", "e57", "application/octet-stream", 1),
]
DOCUMENT_CUM = list(itertools.accumulate(d[4] for d in DOCUMENTS))
REVISIONS = ["P01", "P02", "P03", "P04", "C01", "C02", "C03"]
SIDES = ["North", "South", "East", "West"]
PHASES = ["design", "tender", "construction", "as-built"]
PHASE_WEIGHTS = [25, 10, 45, 20]
STATUSES = ["processed", "failed", "stored", "processing"]
STATUS_CUM = list(itertools.accumulate([86, 4, 6, 4]))


def _pick(rng: random.Random, values: list[Any], cum: list[float]) -> Any:
    return values[bisect.bisect(cum, rng.random() * cum[-1])]


def _one(rng: random.Random, values: list[Any] | str) -> Any:
    return values[int(rng.random() * len(values))]


@dataclass
class Dataset:
    """Deterministic synthetic files (ids are fresh UUIDv7s on every pass)."""

    count: int
    end: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(microsecond=0))

    @property
    def start(self) -> dt.datetime:
        return self.end - SPAN

    def batches(self, size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
        rng = random.Random(SEED)
        seq = dict.fromkeys(PROJECTS, 0)
        step = SPAN / self.count
        role_cum = list(itertools.accumulate(ROLE_WEIGHTS))
        phase_cum = list(itertools.accumulate(PHASE_WEIGHTS))
        batch: list[dict[str, Any]] = []
        for i in range(self.count):
            project = _pick(rng, PROJECT_NAMES, PROJECT_CUM)
            seq[project] += 1
            role = _pick(rng, ROLE_CODES, role_cum)
            kind, template, ext, content_type, _ = _pick(rng, DOCUMENTS, DOCUMENT_CUM)
            level = _one(rng, LEVELS)
            description = template.format(
                lvl=level,
                sec=_one(rng, "ABCDEFGH"),
                side=_one(rng, SIDES),
                det=rng.randint(1, 99),
            )
            filename = (
                f"{PROJECTS[project]}-{_one(rng, ORIGINATORS)}-{_one(rng, VOLUMES)}-{level}-"
                f"{kind}-{role}-{seq[project]:05d} {description}_{_one(rng, REVISIONS)}.{ext}"
            )
            meta = {
                "phase": _pick(rng, PHASES, phase_cum),
                "discipline": ROLES[role],
            }
            if rng.random() < 0.5:
                meta["package"] = f"WP-{rng.randint(1, 200):03d}"
            created = self.start + step * i + dt.timedelta(milliseconds=rng.randint(0, 999))
            status = _pick(rng, STATUSES, STATUS_CUM)
            processing = None
            if status in ("processed", "failed"):
                took = round(rng.lognormvariate(2.0, 1.0), 3)
                started = created + dt.timedelta(seconds=rng.randint(1, 30))
                ok = status == "processed"
                processing = {
                    "processor": "ifc" if ext == "ifc" else "example",
                    "outcome": "succeeded" if ok else "invalid_input",
                    "error": None if ok else "not a STEP file: bad header",
                    "started_at": started.isoformat(),
                    "finished_at": (started + dt.timedelta(seconds=took)).isoformat(),
                    "duration_s": took,
                    "result": {"schema": "IFC4", "products": rng.randint(100, 90_000)}
                    if ok
                    else None,
                }
            deleted_at = purged_at = None
            roll = rng.random()
            if roll < 0.02:
                deleted_at = created + dt.timedelta(days=rng.randint(1, 60))
                if roll < 0.002:
                    purged_at = deleted_at + dt.timedelta(days=30)
            file_id = uuid7()
            batch.append(
                {
                    "id": file_id,
                    "project": project,
                    "filename": filename,
                    "size": int(rng.lognormvariate(15.5, 1.8)) + 1,
                    "sha256": f"{rng.getrandbits(256):064x}",
                    "content_type": content_type,
                    "storage_backend": "local",
                    "storage_key": f"{project}/{file_id}",
                    "status": status,
                    "meta": meta,
                    "processing": processing,
                    "created_at": created,
                    "updated_at": created + dt.timedelta(minutes=rng.randint(1, 120)),
                    "deleted_at": deleted_at,
                    "purged_at": purged_at,
                }
            )
            if len(batch) == size:
                yield batch
                batch = []
        if batch:
            yield batch


@dataclass
class Case:
    name: str
    query: FileQuery
    #: The same filter in Python, to count what matches in the project (``None``: every file).
    match: Callable[[dict[str, Any]], bool] | None = None
    #: Pages to walk before the timed one.
    skip_pages: int = 0
    matches: int = 0


def make_cases(data: Dataset) -> list[Case]:
    week_start = data.start + SPAN / 2
    week_end = week_start + dt.timedelta(days=7)
    return [
        Case("first page", FileQuery(project=BIG)),
        Case("page 21 via cursor", FileQuery(project=BIG), skip_pages=20),
        Case("first page, small project", FileQuery(project=SMALL)),
        Case(
            "status=failed",
            FileQuery(project=BIG, status="failed"),
            lambda r: r["status"] == "failed",
        ),
        Case(
            "meta phase=construction",
            FileQuery(project=BIG, metadata={"phase": "construction"}),
            lambda r: r["meta"]["phase"] == "construction",
        ),
        Case(
            "meta package=WP-042",
            FileQuery(project=BIG, metadata={"package": "WP-042"}),
            lambda r: r["meta"].get("package") == "WP-042",
        ),
        Case(
            "meta phase=demolition (none)",
            FileQuery(project=BIG, metadata={"phase": "demolition"}),
            lambda r: r["meta"]["phase"] == "demolition",
        ),
        Case(
            "filename ~ 'section'",
            FileQuery(project=BIG, filename_contains="section"),
            lambda r: "section" in r["filename"].lower(),
        ),
        Case(
            "filename ~ 'mock-up' (none)",
            FileQuery(project=BIG, filename_contains="mock-up"),
            lambda r: "mock-up" in r["filename"].lower(),
        ),
        Case(
            "created in one week",
            FileQuery(project=BIG, created_after=week_start, created_before=week_end),
            lambda r: week_start <= r["created_at"] < week_end,
        ),
    ]


def tally(cases: list[Case], batch: list[dict[str, Any]]) -> None:
    for row in batch:
        if row["deleted_at"] is not None:
            continue
        for case in cases:
            if row["project"] == case.query.project and (case.match is None or case.match(row)):
                case.matches += 1


@dataclass
class Result:
    backend: str
    case: Case
    samples: list[float]
    rows: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# -- loading -----------------------------------------------------------------------------


async def load(engine: AsyncEngine, data: Dataset, cases: list[Case] | None) -> None:
    await upgrade(engine)
    started = time.perf_counter()
    done = 0
    for batch in data.batches():
        if cases is not None:
            tally(cases, batch)
        async with engine.begin() as conn:
            await conn.execute(files.insert(), batch)  # executemany
        done += len(batch)
        if done % 50_000 == 0 or done == data.count:
            rate = done / (time.perf_counter() - started)
            print(f"  inserted {done:>9,} files  ({rate:,.0f} files/s)", flush=True)
    took = time.perf_counter() - started
    print(
        f"  loaded {data.count:,} files in {took:.1f} s: {data.count / took:,.0f} files/s"
        " (generating the rows included)"
    )
    started = time.perf_counter()
    async with engine.begin() as conn:
        await conn.exec_driver_sql("ANALYZE")
    print(f"  ANALYZE took {time.perf_counter() - started:.1f} s")


# -- timing ------------------------------------------------------------------------------


async def prepare(conn: AsyncConnection, case: Case) -> FileQuery:
    """The case's query, with the cursor of its page when it is a deep page."""
    query = case.query
    for _ in range(case.skip_pages):
        page = await catalog.search(conn, query)
        query = replace(query, cursor=page.next_cursor)
    return query


async def measure(conn: AsyncConnection, query: FileQuery, runs: int) -> tuple[list[float], int]:
    page = await catalog.search(conn, query)  # warm-up
    gc.collect()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        page = await catalog.search(conn, query)
        samples.append((time.perf_counter() - started) * 1000)
    return samples, len(page.items)


async def captured_sql(conn: AsyncConnection, query: FileQuery) -> tuple[str, Any]:
    """The statement and parameters that ``catalog.search`` sends to the driver."""
    seen: list[tuple[str, Any]] = []

    def listen(_conn, _cursor, statement, parameters, _context, _many):
        seen.append((statement, parameters))

    engine = conn.sync_engine
    sa.event.listen(engine, "before_cursor_execute", listen)
    try:
        await catalog.search(conn, query)
    finally:
        sa.event.remove(engine, "before_cursor_execute", listen)
    return seen[-1]


_COST = re.compile(r"\s*\(cost=[^)]*\)")


async def plan(conn: AsyncConnection, query: FileQuery) -> list[str]:
    """A short plan: every node, the top node's buffers, the execution time."""
    statement, parameters = await captured_sql(conn, query)
    if conn.dialect.name == "postgresql":
        result = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters)
        lines = [row[0] for row in result]
        summary = [_COST.sub("", lines[0])]
        for line in lines[1:]:
            text = line.strip()
            if text.startswith("->"):
                summary.append(_COST.sub("", line))
            elif text.startswith("Buffers:") and len(summary) == 1:
                summary.append(line)
            elif text.startswith("Execution Time"):
                summary.append(text)
        return summary
    result = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
    return [("  " if row[1] else "") + row[3] for row in result]


async def bench_backend(
    backend: str, url: str, data: Dataset, cases: list[Case], runs: int, first: bool
) -> list[Result]:
    print(f"\n== {backend}: loading {data.count:,} files", flush=True)
    engine = create_engine(url)
    try:
        await load(engine, data, cases if first else None)
        results = []
        plans: list[tuple[str, list[str]]] = []
        async with engine.connect() as conn:
            for case in cases:
                query = await prepare(conn, case)
                samples, rows = await measure(conn, query, runs)
                results.append(Result(backend, case, samples, rows))
                print(
                    f"  {case.name:<30} median {results[-1].median:8.2f} ms  "
                    f"p95 {results[-1].p95:8.2f} ms",
                    flush=True,
                )
                plans.append((case.name, await plan(conn, query)))
        title = "EXPLAIN (ANALYZE, BUFFERS)" if backend == "postgresql" else "EXPLAIN QUERY PLAN"
        print(f"\n  {backend} plans ({title}):")
        for name, lines in plans:
            print(f"  [{name}]")
            for line in lines:
                print(f"      {line}")
        if backend == "postgresql":
            print(
                "  (asyncpg prepares each statement: PostgreSQL plans its first 5 executions for\n"
                "  the values given, as shown above, then may switch to one generic plan, so the\n"
                "  timed runs can use a different plan from the one shown.)"
            )
        return results
    finally:
        await engine.dispose()


# -- PostgreSQL throw-away database ------------------------------------------------------


async def admin(url: str, statement: str | None = None) -> str | None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5})
    try:
        async with engine.connect() as conn:
            if statement is None:
                return (await conn.exec_driver_sql("SHOW server_version")).scalar()
            await conn.exec_driver_sql(statement)
            return None
    finally:
        await engine.dispose()


# -- report ------------------------------------------------------------------------------


def print_table(results: list[Result]) -> None:
    header = f"{'backend':<11}{'query':<31}{'median ms':>10}{'p95 ms':>10}{'rows':>6}{'matches':>9}"
    print("\n" + header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.backend:<11}{r.case.name:<31}{r.median:>10.2f}{r.p95:>10.2f}"
            f"{r.rows:>6}{r.case.matches:>9,}"
        )
    print(
        f"\nrows: rows on the page (limit {FileQuery(project=BIG).limit}); matches: live files of"
        f" the project ({BIG!r} unless said) that satisfy the filter."
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200_000, help="files to load (200,000)")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query (30)")
    parser.add_argument(
        "--no-postgres", action="store_true", help="measure SQLite only, even with a server"
    )
    args = parser.parse_args()
    if args.files < 2_000 or args.runs < 1:
        parser.error("--files must be at least 2000 and --runs at least 1")

    data = Dataset(args.files)
    cases = make_cases(data)
    print(
        f"aecflow listing benchmark: {args.files:,} files over {len(PROJECTS)} projects "
        f"({BIG!r} holds half), {args.runs} timed runs per query after one warm-up; "
        f"Python {sys.version.split()[0]}, SQLAlchemy {sa.__version__}"
    )
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="aecflow-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'aecflow.db'}"
        results += await bench_backend("sqlite", url, data, cases, args.runs, first=True)

    admin_url = os.environ.get("AECFLOW_TEST_DATABASE_URL", LOCAL_POSTGRES)
    shown = sa.engine.make_url(admin_url).render_as_string(hide_password=True)
    version = None
    if args.no_postgres:
        print("\n== postgresql: skipped (--no-postgres)")
    else:
        try:
            version = await admin(admin_url)
        except Exception as exc:
            print(f"\n== postgresql: not reachable at {shown} ({type(exc).__name__}: {exc});")
            print("   measured SQLite only (set AECFLOW_TEST_DATABASE_URL)")
    if version:
        name = f"aecflow_bench_{secrets.token_hex(6)}"
        print(f"\n== postgresql {version} at {shown}: throw-away database {name}")
        await admin(admin_url, f'CREATE DATABASE "{name}"')
        try:
            url = sa.engine.make_url(admin_url).set(database=name)
            results += await bench_backend(
                "postgresql",
                url.render_as_string(hide_password=False),
                data,
                cases,
                args.runs,
                first=False,
            )
        finally:
            await admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"  dropped {name}")

    print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
