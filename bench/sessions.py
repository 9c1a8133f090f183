"""Streamed upload vs. upload session, with local storage and with S3 (``upload.py --sessions``).

For each backend (local storage; S3 on a loopback moto server, bench/s3.py's ``--serve-moto``)
an aecflow host runs in a child process (bench/upload.py's ``--serve``), and the same file is
uploaded to it two ways, in alternating order:

- ``streamed``: one ``POST /v1/projects/{p}/files`` with the raw body, exactly as the default
  benchmark sends it (no ``Content-SHA256``, so no hashing pass on the client);
- ``session``: ``aecflow.client.AsyncClient.upload`` with ``stream_threshold=0``, so a session
  with ``--parallel`` parts of ``--part-mib`` in flight. The client first reads the whole file
  once to hash it (the file's and every part's SHA-256), then sends the parts: to the host
  (``PUT /v1/uploads/{id}/parts/{n}``) with local storage, straight to S3 through presigned
  URLs with S3. Its MiB/s is measured over the whole call, hashing pass included, and also
  without it.

For every upload: wall time, MiB/s, CPU seconds (user + system) of the host process, of this
process (the client) and, with S3, of the moto process, so the figures show where the bytes
were handled. The host's S3 settings use the same part size and concurrency as the client, so
the streamed path (the host's multipart upload) and the session cut the file the same way.
Every upload's SHA-256 is checked against the file's; with S3, the object a session assembled
is also read back from moto and hashed (the host never sees those bytes: it records the
checksum the client declared). Objects are removed from moto after each upload (moto keeps
them in memory).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from s3 import BUCKET, REGION, free_port
from upload import (
    MIB,
    PROJECT,
    START_TIMEOUT_S,
    Child,
    Server,
    Watch,
    environment,
    make_source,
    process_cpu,
    upload_once,
)

from aecflow.client import AsyncClient, ClientError, Progress

PREFIX = "aecflow-bench"
#: moto accepts any keys; these keep the host and boto3 away from real credentials.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
PATHS = ("streamed", "session")


def aws_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | FAKE_AWS


# -- moto ---------------------------------------------------------------------------------


class Moto(Child):
    """moto's S3 server in a child process (bench/s3.py), with the bucket created."""

    def __init__(self) -> None:
        port = free_port()
        script = str(Path(__file__).with_name("s3.py"))
        super().__init__("--serve-moto", str(port), stdin=True, env=aws_env(), script=script)
        try:
            line = self.read_line(START_TIMEOUT_S)
            if not line.startswith("PORT"):
                raise RuntimeError(f"moto printed {line!r} instead of its port")
            self.endpoint = f"http://127.0.0.1:{port}"
            import boto3

            self.s3 = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=REGION,
                aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"],
            )
            self.s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
            )
        except BaseException:
            self.close()
            raise

    def storage(self, part_size: int, parallel: int) -> dict[str, Any]:
        """The host's [storage] table (as in plugins/storage_s3/tests/test_s3_flow.py)."""
        return {
            "backend": "s3",
            "bucket": BUCKET,
            "prefix": PREFIX,
            "endpoint_url": self.endpoint,
            "region": REGION,
            "pin_region": True,
            "part_size": part_size,
            "max_concurrency": parallel,
        }

    def sha256(self, file_id: str) -> str:
        """Read the stored file back from moto and hash it."""
        body = self.s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{PROJECT}/{file_id}")["Body"]
        digest = hashlib.sha256()
        for chunk in body.iter_chunks(MIB):
            digest.update(chunk)
        return digest.hexdigest()

    def held(self) -> str:
        """What the bucket holds: each object's size and part count (from its ETag's ``-N``)."""
        found = []
        for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", ()):
            etag = item["ETag"].strip('"')
            parts = etag.rsplit("-", 1)[1] if "-" in etag else "1"
            found.append(f"{item['Size'] / MIB:,.0f} MiB in {parts} part(s)")
        return "moto holds " + ("; ".join(found) or "nothing")

    def empty(self) -> None:
        """Remove every object and open multipart upload (moto holds them in memory)."""
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for page in pages:
            for item in page.get("Contents", ()):
                self.s3.delete_object(Bucket=BUCKET, Key=item["Key"])
        pending = self.s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", ())
        for upload in pending:
            self.s3.abort_multipart_upload(
                Bucket=BUCKET, Key=upload["Key"], UploadId=upload["UploadId"]
            )

    def cpu(self) -> float:
        return process_cpu(psutil.Process(self.pid))


# -- one upload each way ------------------------------------------------------------------


@dataclass
class Result:
    backend: str
    path: str
    rep: int
    size: int
    seconds: float
    watch: Watch
    moto_cpu: float | None = None
    #: (name, seconds, host CPU seconds) per phase of a session upload
    phases: list[tuple[str, float, float]] = field(default_factory=list)
    note: str = ""

    @property
    def mib_s(self) -> float:
        return self.size / MIB / self.seconds

    @property
    def mb_s(self) -> float:
        return self.size / 1e6 / self.seconds

    @property
    def transfer_mib_s(self) -> float:
        """MiB/s without the client's hashing pass (a streamed upload has none)."""
        hashing = sum(s for name, s, _ in self.phases if name == "hash+open")
        return self.size / MIB / (self.seconds - hashing)

    @property
    def host_cpu(self) -> float:
        return self.watch.loop_cpu + self.watch.other_cpu


def streamed(host: Server, path: Path, size: int, sha256: str, name: str) -> str:
    _, tail = upload_once(host, path, size, sha256, name)  # checks size and SHA-256
    return f"last byte sent -> 201: {tail:.2f} s"


async def session(
    host: Server,
    path: Path,
    size: int,
    sha256: str,
    name: str,
    parallel: int,
    part_size: int,
    phases: list[tuple[str, float, float]],
) -> dict[str, Any]:
    """Upload through a session with the client; fills ``phases`` (time and host CPU)."""
    proc = psutil.Process(host.pid)
    marks: list[tuple[str, float, float]] = []

    def progress(state: Progress) -> None:
        if not marks or marks[-1][0] != state.phase:
            marks.append((state.phase, time.perf_counter(), process_cpu(proc)))

    async with AsyncClient(
        host.base, part_concurrency=parallel, stream_threshold=0, part_size=part_size
    ) as client:
        record = await client.upload(path, PROJECT, filename=name, resume=False, progress=progress)
    labels = {"hashing": "hash+open", "uploading": "parts", "completing": "complete"}
    for (phase, at, cpu), (_, until, cpu_until) in itertools.pairwise(marks):
        phases.append((labels.get(phase, phase), until - at, cpu_until - cpu))
    if record.get("size") != size or record.get("sha256") != sha256:
        raise RuntimeError(
            f"session upload stored {record.get('size')} bytes with SHA-256"
            f" {record.get('sha256')}, not {size} bytes with {sha256}"
        )
    return record


def measure(
    backend: str,
    kind: str,
    rep: int,
    host: Server,
    moto: Moto | None,
    source: tuple[Path, int, str],
    args: argparse.Namespace,
) -> Result:
    path, size, sha256 = source
    name = f"{kind}-{rep}.bin"
    phases: list[tuple[str, float, float]] = []
    os.sync()  # the previous upload's dirty pages are not flushed during this one
    moto_before = moto.cpu() if moto else 0.0
    with Watch(host.pid) as watch:
        started = time.perf_counter()
        record: dict[str, Any] | None = None
        if kind == "streamed":
            note = streamed(host, path, size, sha256, name)
        else:
            coro = session(
                host, path, size, sha256, name, args.parallel, args.part_mib * MIB, phases
            )
            record = asyncio.run(coro)
            note = ""
        seconds = time.perf_counter() - started
    result = Result(backend, kind, rep, size, seconds, watch, phases=phases, note=note)
    if moto:
        result.moto_cpu = moto.cpu() - moto_before
        result.note = "; ".join(filter(None, (result.note, moto.held())))
        if record is not None:  # the host never saw these bytes: check what S3 holds
            took = time.perf_counter()
            held = moto.sha256(record["id"])
            if held != sha256:
                raise RuntimeError(f"S3 holds SHA-256 {held} for {record['id']}, not {sha256}")
            took = time.perf_counter() - took
            result.note += f"; read back from moto: SHA-256 matches ({took:.1f} s, untimed)"
        moto.empty()
    report(result)
    return result


def report(r: Result) -> None:
    w = r.watch
    lines = [
        f"  {r.backend:<5} rep {r.rep} {r.path:<8} {r.size / MIB:,.0f} MiB in {r.seconds:6.2f} s"
        f" = {r.mib_s:6.1f} MiB/s ({r.mb_s:.1f} MB/s); host CPU {r.host_cpu:.2f} s (event loop"
        f" {w.loop_cpu:.2f}, other threads {w.other_cpu:.2f}); client CPU {w.ours:.2f} s"
        + (f"; moto CPU {r.moto_cpu:.2f} s" if r.moto_cpu is not None else "")
    ]
    if r.phases:
        lines.append(
            "      "
            + ", ".join(f"{name} {s:.2f} s (host CPU {cpu:.2f} s)" for name, s, cpu in r.phases)
            + f"; without the hashing pass {r.transfer_mib_s:.1f} MiB/s"
        )
    rest = max(0.0, w.others - (r.moto_cpu or 0.0))
    lines.append(
        f"      host RSS {w.before / MIB:.0f} -> {w.peak / MIB:.0f} MiB (+{w.growth / MIB:.1f});"
        f" rest of the machine {rest:.2f} CPU-s of {(os.cpu_count() or 1) * w.wall:.1f}"
        + (f"; {r.note}" if r.note else "")
    )
    print("\n".join(lines), flush=True)


# -- one backend --------------------------------------------------------------------------


def warm_up(host: Server, warm: Path, args: argparse.Namespace) -> None:
    """One small upload each way (two parts, so multipart uploads too): imports, connections
    and S3 clients before measuring."""
    size = warm.stat().st_size
    upload_once(host, warm, size, None, "warm-streamed.bin")
    sha = hashlib.sha256(warm.read_bytes()).hexdigest()
    asyncio.run(
        session(host, warm, size, sha, "warm-session.bin", args.parallel, args.part_mib * MIB, [])
    )


def run_backend(
    backend: str,
    tmp: Path,
    source: tuple[Path, int, str],
    warm: Path,
    args: argparse.Namespace,
) -> list[Result]:
    moto: Moto | None = None
    host: Server | None = None
    results: list[Result] = []
    try:
        if backend == "s3":
            moto = Moto()
            storage = moto.storage(args.part_mib * MIB, args.parallel)
            host = Server("aecflow", tmp / "s3-host", storage=storage, env=aws_env())
            where = f"S3 on moto at {moto.endpoint} (bucket {BUCKET}, prefix {PREFIX})"
        else:
            host = Server("aecflow", tmp / "local-host")
            where = f"local storage under {tmp / 'local-host' / 'objects'}"
        print(f"\n{backend}: aecflow host at {host.base}, {where}", flush=True)
        warm_up(host, warm, args)
        if moto:
            moto.empty()
        for rep in range(1, args.reps + 1):
            order = PATHS if rep % 2 else tuple(reversed(PATHS))
            for kind in order:
                results.append(measure(backend, kind, rep, host, moto, source, args))
    finally:
        if host:
            host.close()
        if moto:
            moto.close()
    return results


# -- report -------------------------------------------------------------------------------


def median(results: list[Result], value: Callable[[Result], float | None]) -> float | None:
    values = [v for v in map(value, results) if v is not None]
    return statistics.median(values) if values else None


def print_summary(results: list[Result], backends: list[str], seconds: float) -> None:
    header = (
        f"{'backend':<8}{'path':<10}{'size':>9}{'MiB/s':>8}{'MB/s':>8}{'excl.hash':>10}"
        f"{'wall s':>8}{'host CPU s':>11}{'per GiB':>9}{'client CPU s':>13}{'moto CPU s':>11}"
    )
    reps = max(r.rep for r in results)
    print(f"\nsummary (median of {reps} per row; CPU = user + system seconds during the upload)")
    print(header)
    print("-" * len(header))
    host_cpu: dict[tuple[str, str], float] = {}
    moto_cpu: dict[tuple[str, str], float | None] = {}
    for backend in backends:
        for kind in PATHS:
            rows = [r for r in results if r.backend == backend and r.path == kind]
            if not rows:
                continue
            cpu = median(rows, lambda r: r.host_cpu)
            moto = median(rows, lambda r: r.moto_cpu)
            host_cpu[backend, kind], moto_cpu[backend, kind] = cpu or 0.0, moto

            def fmt(value: float | None, spec: str = ".1f") -> str:
                return "-" if value is None else format(value, spec)

            per_gib = median(rows, lambda r: r.host_cpu / (r.size / (1024 * MIB)))
            print(
                f"{backend:<8}{kind:<10}{rows[0].size / MIB:>5,.0f} MiB"
                f"{fmt(median(rows, lambda r: r.mib_s)):>8}"
                f"{fmt(median(rows, lambda r: r.mb_s)):>8}"
                f"{fmt(median(rows, lambda r: r.transfer_mib_s)):>10}"
                f"{fmt(median(rows, lambda r: r.seconds), '.2f'):>8}"
                f"{fmt(cpu, '.2f'):>11}{fmt(per_gib, '.2f'):>9}"
                f"{fmt(median(rows, lambda r: r.watch.ours), '.2f'):>13}{fmt(moto, '.2f'):>11}"
            )
    print()
    for backend in backends:
        if (backend, "session") not in host_cpu or (backend, "streamed") not in host_cpu:
            continue
        session_cpu, streamed_cpu = host_cpu[backend, "session"], host_cpu[backend, "streamed"]
        share = f" ({session_cpu / streamed_cpu:.0%} of it)" if streamed_cpu else ""
        line = (
            f"{backend}: host CPU for the session path {session_cpu:.2f} s vs. streamed"
            f" {streamed_cpu:.2f} s{share}"
        )
        if backend == "s3":
            line += (
                f"; moto CPU session {moto_cpu[backend, 'session'] or 0.0:.2f} s vs. streamed"
                f" {moto_cpu[backend, 'streamed'] or 0.0:.2f} s"
            )
        print(line)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        "MiB/s: file bytes / wall time of the whole call (for the session: the client's hashing"
        " pass, opening,\nparts and completing; 'excl.hash' leaves out the hashing pass and the"
        f" opening call). Took {seconds:.0f} s; load average now {load}."
    )


# -- main ---------------------------------------------------------------------------------


def bench(args: argparse.Namespace, backends: list[str]) -> int:
    import moto

    sizes = {
        b: (args.s3_size_mib or args.size_mib) if b == "s3" else args.size_mib for b in backends
    }
    files = ", ".join(f"{b} {sizes[b]:,} MiB" for b in backends)
    print(
        f"aecflow streamed upload vs. upload session: {files};"
        f" session parts of {args.part_mib} MiB, {args.parallel} in flight; {args.reps}"
        f" repetition(s) per path in alternating order\n{environment()}; moto {moto.__version__}",
        flush=True,
    )
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="aecflow-bench-sessions-", dir=args.tmp_dir))
    results: list[Result] = []
    try:
        warm = tmp / "warm.bin"
        make_source(warm, (args.part_mib + 4) * MIB)
        sources: dict[int, tuple[Path, int, str]] = {}
        for backend in backends:
            size_mib = sizes[backend]
            if size_mib not in sources:
                started = time.perf_counter()
                path = tmp / f"source-{size_mib}MiB.bin"
                sources[size_mib] = (path, size_mib * MIB, make_source(path, size_mib * MIB))
                took = time.perf_counter() - started
                print(f"  wrote the {size_mib:,} MiB source file in {took:.1f} s ({tmp})")
            results += run_backend(backend, tmp, sources[size_mib], warm, args)
        print_summary(results, backends, time.perf_counter() - began)
    except (RuntimeError, httpx.HTTPError, ClientError) as exc:
        print(f"\nbenchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0
