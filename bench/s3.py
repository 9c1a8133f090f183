"""Upload throughput and client memory of the S3 plugin against boto3 and aioboto3.

Uploads one file (256 MiB and 1 GiB by default) to a loopback S3 endpoint (moto's server, in
its own process) three ways, in the same run and with the same part size and concurrency:

- ``plugin``: ``S3Storage.put`` fed by the core's own file reader (1 MiB chunks), exactly as
  ``aecflow ingest`` does; it also computes the SHA-256 of every byte, which the others don't;
- ``boto3``: boto3's managed transfer, ``upload_file``;
- ``aioboto3``: aioboto3's ``upload_file``.

Each upload runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own; the
figure printed is the growth over the process's RSS just before the upload started. Clients
alternate order across repetitions. Prints MB/s and peak RSS growth for each, and the plugin's
ratio to the fastest other client. Prints figures; asserts nothing.

    .venv/bin/python bench/s3.py                         # 256 MiB and 1 GiB, 1 repetition
    .venv/bin/python bench/s3.py --sizes 256 --reps 2
    .venv/bin/python bench/s3.py --part-mib 16 --concurrency 8

Against moto the server side (Python, werkzeug) costs far more CPU than any client, and this
machine has few cores, so absolute figures say more about moto than about S3; the comparison
between clients under the same conditions is the point, and the client CPU time is printed
because it is what a client takes away from the server here.

The plugin's buffers are bounded by (concurrency + 1) x part size plus two 1 MiB blocks; glibc's
dynamic mmap threshold adds heap slack on top of that in the RSS figure (run with
``MALLOC_MMAP_THRESHOLD_=131072`` to see the buffers alone).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
BUCKET = "aecflow-bench"
REGION = "eu-central-1"
CLIENTS = ("plugin", "boto3", "aioboto3")
GOAL_RATIO = 1.0

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


# -- the S3 endpoint (child process) ------------------------------------------------------


def serve_moto(port: int) -> None:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- one upload (child process) -----------------------------------------------------------


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def client_config(endpoint: str) -> dict[str, Any]:
    return {"endpoint_url": endpoint, "region_name": REGION}


def upload_plugin(endpoint: str, path: Path, key: str, part: int, concurrency: int) -> dict:
    from aecflow.streams import file_chunks
    from aecflow_storage_s3 import S3Storage, S3StorageConfig

    config = S3StorageConfig(
        bucket=BUCKET, endpoint_url=endpoint, part_size=part, max_concurrency=concurrency
    )

    async def run() -> dict:
        storage = S3Storage(config)
        await storage.start()
        try:
            size = path.stat().st_size  # noqa: ASYNC240 - before measuring
            before, cpu = peak_rss_mib(), cpu_s()
            started = time.perf_counter()
            stored = await storage.put(key, file_chunks(path), size=size)
            seconds = time.perf_counter() - started
            return {
                "seconds": seconds,
                "cpu_s": cpu_s() - cpu,
                "before_mib": before,
                "sha256": stored.sha256,
            }
        finally:
            await storage.close()

    return asyncio.run(run())


def upload_boto3(endpoint: str, path: Path, key: str, part: int, concurrency: int) -> dict:
    import boto3
    from boto3.s3.transfer import TransferConfig

    client = boto3.client("s3", **client_config(endpoint))
    transfer = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=concurrency
    )
    client.head_bucket(Bucket=BUCKET)  # connect and load models before measuring
    before, cpu = peak_rss_mib(), cpu_s()
    started = time.perf_counter()
    client.upload_file(str(path), BUCKET, key, Config=transfer)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu_s": cpu_s() - cpu, "before_mib": before}


def upload_aioboto3(endpoint: str, path: Path, key: str, part: int, concurrency: int) -> dict:
    import aioboto3
    from boto3.s3.transfer import TransferConfig

    transfer = TransferConfig(
        multipart_threshold=part, multipart_chunksize=part, max_concurrency=concurrency
    )

    async def run() -> dict:
        async with aioboto3.Session().client("s3", **client_config(endpoint)) as client:
            await client.head_bucket(Bucket=BUCKET)
            before, cpu = peak_rss_mib(), cpu_s()
            started = time.perf_counter()
            await client.upload_file(str(path), BUCKET, key, Config=transfer)
            seconds = time.perf_counter() - started
            return {"seconds": seconds, "cpu_s": cpu_s() - cpu, "before_mib": before}

    return asyncio.run(run())


UPLOADERS = {"plugin": upload_plugin, "boto3": upload_boto3, "aioboto3": upload_aioboto3}


def run_client(args: argparse.Namespace) -> None:
    result = UPLOADERS[args.client](
        args.endpoint, Path(args.file), args.key, args.part_mib * MIB, args.concurrency
    )
    result["peak_mib"] = peak_rss_mib()
    print(json.dumps(result), flush=True)


# -- the parent ---------------------------------------------------------------------------


def make_file(directory: Path, size_mib: int) -> tuple[Path, str]:
    path = directory / f"upload-{size_mib}MiB.bin"
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for index in range(size_mib):
            chunk = index.to_bytes(8, "little") + block[8:]  # distinct blocks, cheap to make
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


def measure(
    client: str, endpoint: str, path: Path, part_mib: int, concurrency: int, s3: Any
) -> dict:
    key = f"bench/{client}/{path.name}"
    command = [
        sys.executable,
        __file__,
        "--client",
        client,
        "--endpoint",
        endpoint,
        "--file",
        str(path),
        "--key",
        key,
        "--part-mib",
        str(part_mib),
        "--concurrency",
        str(concurrency),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{client} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    size = s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"]
    if size != path.stat().st_size:
        raise RuntimeError(f"{client} stored {size} bytes, not {path.stat().st_size}")
    s3.delete_object(Bucket=BUCKET, Key=key)  # moto keeps objects in memory
    result["mb_s"] = size / 1e6 / result["seconds"]
    result["growth_mib"] = result["peak_mib"] - result["before_mib"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="256,1024", help="MiB, comma-separated")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--part-mib", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--serve-moto", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_moto:
        serve_moto(args.serve_moto)
        return
    if args.client:
        run_client(args)
        return

    import boto3

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-moto", str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line.startswith("PORT"):
            raise RuntimeError("moto did not start")
        endpoint = f"http://127.0.0.1:{port}"
        s3 = boto3.client("s3", **client_config(endpoint))
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        bound = args.part_mib * (args.concurrency + 1)
        print(
            f"loopback moto S3 at {endpoint}; part {args.part_mib} MiB, concurrency "
            f"{args.concurrency} for every client (memory bound (concurrency + 1) x part = "
            f"{bound} MiB); {args.reps} repetition(s)"
        )
        with tempfile.TemporaryDirectory(prefix="aecflow-bench-s3-") as tmp:
            for size_mib in (int(s) for s in args.sizes.split(",")):
                path, digest = make_file(Path(tmp), size_mib)
                results: dict[str, list[dict]] = {client: [] for client in CLIENTS}
                for rep in range(args.reps):
                    order = CLIENTS if rep % 2 == 0 else tuple(reversed(CLIENTS))
                    for client in order:
                        result = measure(
                            client, endpoint, path, args.part_mib, args.concurrency, s3
                        )
                        if client == "plugin" and result["sha256"] != digest:
                            raise RuntimeError("the plugin's SHA-256 does not match the file")
                        results[client].append(result)
                report(size_mib, results, bound)
                path.unlink()
    finally:
        if server.stdin:
            server.stdin.close()
        server.wait(timeout=30)


def report(size_mib: int, results: dict[str, list[dict]], bound: int) -> None:
    print(f"\n== {size_mib} MiB")
    best: dict[str, float] = {}
    for client, runs in results.items():
        rates = [r["mb_s"] for r in runs]
        best[client] = max(rates)
        growth = max(r["growth_mib"] for r in runs)
        peak = max(r["peak_mib"] for r in runs)
        cpu = min(r["cpu_s"] for r in runs)
        print(
            f"{client:>9}: {best[client]:7.1f} MB/s (runs: "
            + ", ".join(f"{rate:.1f}" for rate in rates)
            + f"); client CPU {cpu:.2f} s; peak RSS {peak:.0f} MiB, +{growth:.0f} MiB during"
            " the upload"
        )
    fastest = max((v, k) for k, v in best.items() if k != "plugin")
    ratio = best["plugin"] / fastest[0]
    growth = max(r["growth_mib"] for r in results["plugin"])
    verdict = "met" if ratio >= GOAL_RATIO else "NOT met"
    print(
        f"plugin / fastest other ({fastest[1]}): {ratio:.2f} (goal >= {GOAL_RATIO}: {verdict}); "
        f"plugin RSS growth {growth:.0f} MiB vs bound {bound} MiB + a few 1 MiB blocks"
    )


if __name__ == "__main__":
    main()
