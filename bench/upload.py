"""Upload throughput, memory and liveness of the HTTP host with local storage.

Streams one large file (default 1 GiB) over HTTP into the aecflow host (SQLite + local
storage, no notifiers, no embedded worker) and, in the same run, into a minimal Starlette
endpoint that only writes the body to disk; the two take turns (alternating order), twice each
by default. Prints MiB/s for both, their ratio, each server's peak RSS growth and its CPU time
(event-loop thread vs. other threads). Then measures ``/health`` latency on the aecflow host
while 50 uploads of 20 MiB run at once, and the same on the minimal endpoint for reference.
Prints figures; asserts nothing; a missed goal never changes the exit status (only a failed
upload does).

    .venv/bin/python bench/upload.py                 # 1 GiB, 2 repetitions per server
    .venv/bin/python bench/upload.py --size-mib 256 --reps 1
    .venv/bin/python bench/upload.py --sessions      # streamed vs. upload session, see below
    .venv/bin/python bench/upload.py --sessions --size-mib 1024 --parallel 4 --part-mib 16

``--sessions`` runs another benchmark instead (bench/sessions.py): the same file streamed in one
request and sent through an upload session with parallel parts (``aecflow.client``), against
local storage and against S3 on a loopback moto server; MiB/s and the CPU seconds of the host,
the client and moto for each. With S3 the session's parts go straight to S3, past the host.

Every server runs in its own process (uvicorn on a free loopback port, started from this
file with ``--serve``) with the settings ``aecflow serve`` uses, so its RSS and CPU time can be
sampled with psutil; ``/health`` is probed from another process (``--probe``) so that the
uploading client's event loop cannot delay the probe.

The aecflow host runs on SQLite and local storage in a temporary directory, with no
notifiers, no embedded worker and, where the host has authentication, ``[auth] mode = "none"``
(allowed on loopback). The baseline endpoint writes each body chunk with a plain blocking
``write`` on the event loop (no re-chunking, no hashing, no worker threads) and ``fsync``s the
file in a thread at the end, because the local backend fsyncs every object before it answers.

Every figure is wall-clock on a machine that may be shared: each timed upload also reports
how much CPU the rest of the machine (other processes, kernel writeback) used meanwhile, so a
noisy run can be recognised as one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.util
import json
import math
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

MIB = 1024 * 1024
READ_CHUNK = 1 * MIB
WARM_UP = 4 * MIB
PROJECT = "bench"
START_TIMEOUT_S = 120.0

GOAL_RATIO = 0.8
GOAL_RSS_MIB = 64
GOAL_HEALTH_P99_MS = 50.0


# -- servers (child processes) ------------------------------------------------------------


def baseline_app(root: Path) -> Any:
    """The reference: a Starlette endpoint that writes the request body to a file, nothing else."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    root.mkdir(parents=True, exist_ok=True)

    async def upload(request: Request) -> JSONResponse:
        path = root / f"{uuid.uuid4().hex}.bin"
        size = 0
        with open(path, "wb", buffering=0) as out:  # noqa: ASYNC230 - on the loop on purpose
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
            await run_in_threadpool(os.fsync, out.fileno())
        return JSONResponse({"size": size}, 201)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/upload", upload, methods=["POST"]), Route("/health", health)])


def aecflow_app(root: Path, storage: dict[str, Any] | None = None) -> Any:
    """The host on SQLite; local storage under ``root`` unless ``storage`` (a [storage] table)."""
    from aecflow.config import Settings
    from aecflow.host import create_app

    raw: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "database": {"url": f"sqlite+aiosqlite:///{root / 'aecflow.db'}"},
        "storage": storage or {"backend": "local", "root": str(root / "objects")},
        "notifiers": [],
        "worker": {"embedded": False},
    }
    if "auth" in Settings.model_fields:
        # No bearer token to manage: the unauthenticated mode is allowed on loopback, and a
        # token check is one small query per request, nothing next to a large body.
        raw["auth"] = {"mode": "none"}
    return create_app(Settings.model_validate(raw), worker=False)


def exit_with_parent() -> None:
    """Stop this child (as if by SIGTERM) if the benchmark that started it dies without us."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


async def serve(kind: str, root: Path, storage: dict[str, Any] | None = None) -> None:
    """Run one server the way ``aecflow serve`` does; print ``PORT <n>`` once it listens."""
    import uvicorn

    app = aecflow_app(root, storage) if kind == "aecflow" else baseline_app(root)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.02)
    if server.started:
        port = server.servers[0].sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
    await task


# -- /health prober (child process) -------------------------------------------------------


def probe(url: str, interval_s: float) -> None:
    """GET ``url`` every ``interval_s`` until a line arrives on stdin; then print the samples.

    Prints ``READY`` once the first request has answered (the connection is open), then, at
    the end, one JSON list of ``[monotonic start, seconds, status]`` (status 0: failed). A
    probe that overruns the period is followed at once by the next, without a catch-up burst.
    """
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    samples: list[tuple[float, float, int]] = []
    with httpx.Client(timeout=30.0) as client:
        client.get(url).raise_for_status()
        print("READY", flush=True)
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            try:
                status = client.get(url).status_code
            except httpx.HTTPError:
                status = 0
            samples.append((started, time.monotonic() - started, status))
            next_at = max(next_at + interval_s, time.monotonic())
            stop.wait(next_at - time.monotonic())
    print(json.dumps(samples), flush=True)


# -- children from the parent's side ------------------------------------------------------


class Child:
    """A child process running this file in one of its modes; ``close`` always stops it."""

    def __init__(
        self,
        *args: str,
        stdin: bool = False,
        env: dict[str, str] | None = None,
        script: str = __file__,
    ) -> None:
        """``env``: the child's whole environment (default: ours); ``script``: another file."""
        self.name = " ".join(args[:2])
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(script), *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,  # Ctrl-C reaches only us, and we stop the children
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def read_line(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"{self.name}: nothing printed for {timeout:g} s")
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                line = self.proc.stdout.readline()
                if not line:
                    raise RuntimeError(f"{self.name}: exited with status {self.proc.wait()}")
                return line.strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class Server(Child):
    def __init__(
        self,
        kind: str,
        root: Path,
        storage: dict[str, Any] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``storage``: the aecflow host's [storage] table (default: local under ``root``)."""
        extra = ("--storage-json", json.dumps(storage)) if storage else ()
        super().__init__("--serve", kind, "--root", str(root), *extra, env=env)
        self.kind = kind
        try:
            line = self.read_line(START_TIMEOUT_S)
            if not line.startswith("PORT "):
                raise RuntimeError(f"the {kind} server printed {line!r} instead of its port")
        except BaseException:
            self.close()
            raise
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"

    @property
    def upload_url(self) -> str:
        if self.kind == "aecflow":
            return f"{self.base}/v1/projects/{PROJECT}/files"
        return f"{self.base}/upload"


# -- measuring ----------------------------------------------------------------------------


def process_cpu(proc: psutil.Process) -> float:
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
        times = proc.cpu_times()
        return times.user + times.system
    return 0.0


def machine_busy() -> float:
    """CPU seconds all CPUs have spent busy since boot (iowait and steal count as idle)."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0) + getattr(times, "steal", 0.0)
    return sum(times) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)


class Watch:
    """While open: peak RSS of a server's process tree, sampled every ``interval_s``, and CPU.

    ``growth`` is the peak minus the RSS just before. Server CPU is split into its main thread
    (the event loop) and every other thread (storage writes and hashing, SQLite, thread
    pools). ``ours`` is the CPU of this process and of ``also`` (the prober); ``others`` is
    what the rest of the machine used meanwhile.
    """

    def __init__(self, pid: int, also: tuple[int, ...] = (), interval_s: float = 0.02) -> None:
        self.proc = psutil.Process(pid)
        self.mine = [psutil.Process(), *(psutil.Process(p) for p in also)]
        self.interval_s = interval_s
        self.before = self.peak = 0
        self.wall = self.loop_cpu = self.other_cpu = self.ours = self.others = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _tree(self) -> list[psutil.Process]:
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss(self) -> int:
        total = 0
        for proc in self._tree():
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += proc.memory_info().rss
        return total

    def _cpu(self) -> tuple[float, float, float, float, float]:
        """(now, server main thread, server tree, ours, machine busy)."""
        main = 0.0
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            for thread in self.proc.threads():
                if thread.id == self.proc.pid:
                    main = thread.user_time + thread.system_time
        tree = sum(process_cpu(p) for p in self._tree())
        ours = sum(process_cpu(p) for p in self.mine)
        return time.monotonic(), main, tree, ours, machine_busy()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.rss())

    def __enter__(self) -> Watch:
        self.before = self.peak = self.rss()
        self._start = self._cpu()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._cpu()
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss())
        wall, main, tree, ours, busy = (b - a for a, b in zip(self._start, end, strict=True))
        self.wall, self.loop_cpu, self.other_cpu = wall, main, max(0.0, tree - main)
        self.ours = ours
        self.others = max(0.0, busy - tree - ours)

    @property
    def growth(self) -> int:
        return self.peak - self.before

    def describe(self) -> str:
        return (
            f"RSS {self.before / MIB:.1f} -> {self.peak / MIB:.1f} MiB (+{self.growth / MIB:.1f});"
            f" server CPU {self.loop_cpu + self.other_cpu:.2f} s (event loop {self.loop_cpu:.2f},"
            f" other threads {self.other_cpu:.2f}); client CPU {self.ours:.2f} s; rest of the"
            f" machine {self.others:.2f} CPU-s of {(os.cpu_count() or 1) * self.wall:.1f}"
        )


# -- the large upload ---------------------------------------------------------------------


def make_source(path: Path, size: int) -> str:
    """Write ``size`` random bytes to ``path`` (fsynced); returns their SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(READ_CHUNK, left))
            out.write(block)
            digest.update(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


def file_chunks(path: Path, done: list[float]) -> Iterator[bytes]:
    """The file in 1 MiB reads; appends the time of the last read to ``done``."""
    with open(path, "rb") as source:
        while chunk := source.read(READ_CHUNK):
            yield chunk
    done.append(time.perf_counter())


def upload_once(
    server: Server, path: Path, size: int, sha256: str | None, name: str
) -> tuple[float, float]:
    """POST the file with a Content-Length, streamed in 1 MiB reads.

    Returns (seconds until the response, seconds from the last byte handed to the socket to
    the response: mostly the server's fsync and commit, plus what the socket buffers held).
    """
    headers = {"content-length": str(size), "content-type": "application/octet-stream"}
    done: list[float] = []
    with httpx.Client(timeout=None) as client:
        started = time.perf_counter()
        response = client.post(
            server.upload_url,
            params={"filename": name},
            content=file_chunks(path, done),
            headers=headers,
        )
        finished = time.perf_counter()
    if response.status_code != 201:
        raise RuntimeError(f"{server.kind}: HTTP {response.status_code}: {response.text[:300]}")
    body = response.json()
    if body.get("size") != size:
        raise RuntimeError(f"{server.kind} stored {body.get('size')} bytes, not {size}")
    if sha256 and server.kind == "aecflow" and body.get("sha256") != sha256:
        raise RuntimeError(f"aecflow stored SHA-256 {body.get('sha256')}, not {sha256}")
    return finished - started, finished - done[0]


@dataclass
class Run:
    kind: str
    rep: int
    seconds: float
    size: int
    watch: Watch

    @property
    def mib_s(self) -> float:
        return self.size / MIB / self.seconds


def timed_upload(server: Server, path: Path, size: int, sha256: str, rep: int) -> Run:
    os.sync()  # the previous run's dirty pages are not flushed during this one
    with Watch(server.pid) as watch:
        took, tail = upload_once(server, path, size, sha256, f"big-{rep}.bin")
    run = Run(server.kind, rep, took, size, watch)
    print(
        f"  rep {rep} {run.kind:<8} {size / MIB:,.0f} MiB in {took:6.2f} s = {run.mib_s:7.1f}"
        f" MiB/s; last byte sent -> 201: {tail:.2f} s\n      {watch.describe()}",
        flush=True,
    )
    return run


# -- /health under concurrent uploads -----------------------------------------------------


@dataclass
class HealthResult:
    kind: str
    uploads: int
    each: int
    seconds: float
    statuses: dict[str, int]
    watch: Watch
    during: list[float] = field(default_factory=list)
    idle: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def failed_uploads(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "201")


async def concurrent_uploads(url: str, count: int, payload: bytes) -> dict[str, int]:
    """POST ``payload`` ``count`` times at once; returns how many got which status."""
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    headers = {"content-type": "application/octet-stream"}
    async with httpx.AsyncClient(timeout=None, limits=limits) as client:

        async def one(i: int) -> str:
            try:
                response = await client.post(
                    url, params={"filename": f"c{i}.bin"}, content=payload, headers=headers
                )
            except httpx.HTTPError as exc:
                return type(exc).__name__
            return str(response.status_code)

        outcomes = await asyncio.gather(*(one(i) for i in range(count)))
    return {status: outcomes.count(status) for status in sorted(set(outcomes))}


def health_under_load(
    server: Server, count: int, each: int, interval_s: float, idle_s: float
) -> HealthResult:
    payload = os.urandom(each)
    url = f"{server.base}/health"
    prober = Child("--probe", url, "--interval-ms", str(interval_s * 1000), stdin=True)
    try:
        if prober.read_line(60) != "READY":
            raise RuntimeError("the /health prober did not start")
        time.sleep(idle_s)
        os.sync()
        with Watch(server.pid, also=(prober.pid,)) as watch:
            start = time.monotonic()
            statuses = asyncio.run(concurrent_uploads(server.upload_url, count, payload))
            end = time.monotonic()
        assert prober.proc.stdin is not None
        prober.proc.stdin.write("stop\n")
        prober.proc.stdin.flush()
        samples = json.loads(prober.read_line(60))
    finally:
        prober.close()
    result = HealthResult(server.kind, count, each, end - start, statuses, watch)
    for sent, seconds, status in samples:
        if not start - idle_s <= sent <= end:
            continue
        if status != 200:
            result.errors += 1
        elif sent >= start:
            result.during.append(seconds * 1000)
        else:
            result.idle.append(seconds * 1000)
    return result


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def print_health(health: HealthResult) -> None:
    total = health.uploads * health.each
    print(
        f"  {health.kind}: {health.uploads} uploads of {health.each / MIB:.0f} MiB at once:"
        f" statuses {health.statuses}, all done in {health.seconds:.2f} s"
        f" ({total / MIB / health.seconds:.1f} MiB/s together)\n      {health.watch.describe()}"
    )
    for name, values in (("idle, before", health.idle), ("during uploads", health.during)):
        if values:
            print(
                f"      /health {name:<15} n={len(values):5d}  p50 {percentile(values, 50):7.2f}"
                f" ms  p99 {percentile(values, 99):7.2f} ms  max {max(values):7.2f} ms"
            )
        else:
            print(f"      /health {name:<15} no samples")
    if health.errors:
        print(f"      /health failed or not 200 in the window: {health.errors}")
    sys.stdout.flush()


# -- report -------------------------------------------------------------------------------


def environment() -> str:
    import starlette
    import uvicorn

    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Python {sys.version.split()[0]}, uvicorn {uvicorn.__version__} (http={http},"
        f" loop={loop}), Starlette {starlette.__version__}, httpx {httpx.__version__};"
        f" {os.cpu_count()} CPUs, load average {load}"
    )


def yes_no(ok: bool) -> str:
    return "yes" if ok else "NO"


def print_summary(
    runs: list[Run], healths: list[HealthResult], idle_rss: dict[str, int], seconds: float
) -> None:
    """The figures next to their goals; a missed goal is reported, never an exit status."""
    by_kind = {kind: [r for r in runs if r.kind == kind] for kind in ("aecflow", "baseline")}
    speed = {kind: statistics.median(r.mib_s for r in rs) for kind, rs in by_kind.items()}
    ratio = speed["aecflow"] / speed["baseline"]
    cpu = {
        kind: statistics.median(
            (r.watch.loop_cpu + r.watch.other_cpu) / (r.size / (1024 * MIB)) for r in rs
        )
        for kind, rs in by_kind.items()
    }
    growth = max(r.watch.growth for r in by_kind["aecflow"])
    over_idle = max(r.watch.peak for r in by_kind["aecflow"]) - idle_rss["aecflow"]
    base_growth = max(r.watch.growth for r in by_kind["baseline"])
    reps = len(by_kind["aecflow"])
    rows: list[tuple[str, str, str, str]] = [
        (f"aecflow upload (median of {reps})", f"{speed['aecflow']:.1f} MiB/s", "", ""),
        (f"baseline upload (median of {reps})", f"{speed['baseline']:.1f} MiB/s", "", ""),
        (
            "ratio aecflow / baseline",
            f"{ratio:.2f}",
            f">= {GOAL_RATIO}",
            yes_no(ratio >= GOAL_RATIO),
        ),
        ("  aecflow server CPU per GiB (median)", f"{cpu['aecflow']:.2f} s", "", ""),
        ("  baseline server CPU per GiB (median)", f"{cpu['baseline']:.2f} s", "", ""),
        (
            "aecflow peak RSS growth (max)",
            f"{growth / MIB:.1f} MiB",
            f"< {GOAL_RSS_MIB} MiB",
            yes_no(growth < GOAL_RSS_MIB * MIB),
        ),
        ("  aecflow peak over idle RSS", f"{over_idle / MIB:.1f} MiB", "", ""),
        ("  baseline peak RSS growth (max)", f"{base_growth / MIB:.1f} MiB", "", ""),
    ]
    for health in healths:
        load = f"{health.uploads} x {health.each // MIB} MiB"
        p50, p99 = percentile(health.during, 50), percentile(health.during, 99)
        goal = met = ""
        if health.kind == "aecflow":
            goal = f"< {GOAL_HEALTH_P99_MS:.0f} ms"
            ok = p99 < GOAL_HEALTH_P99_MS and not health.errors and not health.failed_uploads
            met = yes_no(ok)
        prefix = "" if health.kind == "aecflow" else "  baseline "
        rows += [
            (f"{prefix}/health p50 during {load}", f"{p50:.1f} ms", "", ""),
            (f"{prefix}/health p99 during {load}", f"{p99:.1f} ms", goal, met),
        ]
    width = max(len(r[0]) for r in rows) + 2
    print(f"\n{'figure':<{width}}{'value':>14}  {'goal':<12}{'met':>4}")
    print("-" * (width + 32))
    for name, value, goal, met in rows:
        print(f"{name:<{width}}{value:>14}  {goal:<12}{met:>4}")
    ratios = ", ".join(
        f"{a.mib_s / b.mib_s:.2f}"
        for a, b in zip(by_kind["aecflow"], by_kind["baseline"], strict=True)
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"\nratio per repetition: {ratios}. MiB/s: file bytes / wall time from the first byte"
        " sent to the 201\n(fsync and commit included). RSS growth: peak RSS (sampled every 20"
        " ms) minus RSS just before\nthat upload; 'over idle': minus RSS after the warm-up"
        " upload. The /health goal also needs\nevery probe and every upload to succeed."
        f" Took {seconds:.0f} s; load average now {load}."
    )


# -- main ---------------------------------------------------------------------------------


def bench(args: argparse.Namespace) -> int:
    size = args.size_mib * MIB
    print(
        f"aecflow upload benchmark: {args.size_mib:,} MiB over HTTP, {args.reps} repetition(s)"
        f" per server in alternating order; then /health every {args.health_interval_ms:g} ms"
        f" while {args.concurrent} uploads of {args.concurrent_mib} MiB run at once\n"
        f"{environment()}",
        flush=True,
    )
    began = time.perf_counter()
    runs: list[Run] = []
    healths: list[HealthResult] = []
    servers: list[Server] = []
    tmp = Path(tempfile.mkdtemp(prefix="aecflow-bench-upload-", dir=args.tmp_dir))
    try:
        started = time.perf_counter()
        source = tmp / "source.bin"
        sha256 = make_source(source, size)
        took = time.perf_counter() - started
        print(f"  wrote the {args.size_mib:,} MiB source file in {took:.1f} s ({tmp})", flush=True)
        aecflow = Server("aecflow", tmp / "aecflow")
        servers.append(aecflow)
        baseline = Server("baseline", tmp / "baseline")
        servers.append(baseline)
        warm = tmp / "warm.bin"
        make_source(warm, WARM_UP)
        idle_rss: dict[str, int] = {}
        for server in (aecflow, baseline):
            upload_once(server, warm, WARM_UP, None, "warm.bin")
            idle_rss[server.kind] = Watch(server.pid).rss()
        print(
            f"  idle RSS after a {WARM_UP // MIB} MiB warm-up: aecflow"
            f" {idle_rss['aecflow'] / MIB:.1f} MiB, baseline {idle_rss['baseline'] / MIB:.1f} MiB",
            flush=True,
        )
        for rep in range(1, args.reps + 1):
            order = (aecflow, baseline) if rep % 2 else (baseline, aecflow)
            for server in order:
                runs.append(timed_upload(server, source, size, sha256, rep))
        source.unlink()
        if args.concurrent:
            print(f"\n/health from another process while {args.concurrent} uploads run:")
            for server in (aecflow, baseline):
                health = health_under_load(
                    server,
                    args.concurrent,
                    args.concurrent_mib * MIB,
                    args.health_interval_ms / 1000,
                    idle_s=1.0,
                )
                print_health(health)
                healths.append(health)
        print_summary(runs, healths, idle_rss, time.perf_counter() - began)
    except (RuntimeError, httpx.HTTPError) as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        for server in servers:
            server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="size of the big file (1024)")
    parser.add_argument(
        "--reps", type=int, help="timed uploads per server (2), per path with --sessions (1)"
    )
    parser.add_argument(
        "--sessions",
        action="store_true",
        help="instead: streamed upload vs. upload session, local storage and S3 (moto)",
    )
    parser.add_argument(
        "--parallel", type=int, default=4, help="--sessions: parts in flight at once (4)"
    )
    parser.add_argument("--part-mib", type=int, default=16, help="--sessions: part size (16)")
    parser.add_argument(
        "--backends", default="local,s3", help="--sessions: local, s3 or both (local,s3)"
    )
    parser.add_argument(
        "--s3-size-mib", type=int, help="--sessions: file size for S3 (default: --size-mib)"
    )
    parser.add_argument(
        "--concurrent", type=int, default=50, help="uploads at once for /health (50; 0: skip)"
    )
    parser.add_argument("--concurrent-mib", type=int, default=20, help="size of each (20)")
    parser.add_argument(
        "--health-interval-ms", type=float, default=10.0, help="/health period (10)"
    )
    parser.add_argument(
        "--tmp-dir", help="where the source file and both servers' data go (system temp dir)"
    )
    # internal modes: this file is also the servers and the prober
    parser.add_argument("--serve", choices=["aecflow", "baseline"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--storage-json", type=json.loads, help=argparse.SUPPRESS)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--interval-ms", type=float, default=10.0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:
        exit_with_parent()
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(args.serve, args.root, args.storage_json))
        return 0
    if args.probe:
        probe(args.probe, args.interval_ms / 1000)
        return 0
    if args.reps is None:
        args.reps = 1 if args.sessions else 2
    if args.sessions:
        return run_sessions(parser, args)
    if min(args.size_mib, args.reps, args.concurrent_mib) < 1 or args.concurrent < 0:
        parser.error("--size-mib, --reps and --concurrent-mib must be positive")
    if args.health_interval_ms <= 0:
        parser.error("--health-interval-ms must be positive")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # clean up children and files, then exit
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    try:
        return bench(args)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130


def run_sessions(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """``--sessions``: the benchmark in bench/sessions.py, with this file's servers."""
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends or set(backends) - {"local", "s3"}:
        parser.error("--backends takes local, s3 or local,s3")
    if min(args.size_mib, args.reps, args.parallel, args.s3_size_mib or 1) < 1:
        parser.error("--size-mib, --s3-size-mib, --reps and --parallel must be positive")
    if not 5 <= args.part_mib <= 5 * 1024:
        parser.error("--part-mib must be 5 to 5120 (S3's limits)")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda signum, _frame: sys.exit(128 + signum))
    sys.modules.setdefault("upload", sys.modules[__name__])  # one copy of this file, not two
    import sessions

    try:
        return sessions.bench(args, backends)
    except KeyboardInterrupt:
        print("\ninterrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
