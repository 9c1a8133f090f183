"""Commit-to-receipt speed of the SQS and webhook notifiers.

For each destination on its own, this opens a flow with the embedded dispatcher (as
``aecflow serve`` does) and:

1. **bulk**: commits N events (default 10,000) to the transactional outbox, in transactions
   of 200, as fast as it can while the dispatcher delivers; waits until all are delivered;
   prints events/s (N over first commit to last receipt) and the p50/p99 delay from each
   event's commit to its receipt;
2. **idle**: ingests files one at a time, every 50 ms, and prints the same delays.

Destinations, each in its own process on loopback, reached over real HTTP:

- ``sqs``: a minimal SQS endpoint (the JSON protocol's GetQueueAttributes and
  SendMessageBatch, nothing else) that notes when each message arrived;
- ``sqs-moto``: moto's SQS server, with a consumer receiving and deleting as it goes
  (receipt = the message's ``SentTimestamp``). moto rescans every message it holds for each
  one sent or received, so it slows as its queue grows: it runs fewer events (``--moto-events``)
  and measures moto as much as aecflow;
- ``webhook``: a Starlette receiver under uvicorn that verifies every signature with
  ``aecflow_notify_webhook.verify``;
- ``log``: the core's log notifier, which only formats the event: the dispatcher's own ceiling
  (receipt = the row's ``delivered_at``).

Prints figures; asserts nothing.

    .venv/bin/python bench/notify.py                       # SQLite, 10,000 events
    .venv/bin/python bench/notify.py --events 2000 --only sqs webhook
    .venv/bin/python bench/notify.py --postgres            # a throw-away PostgreSQL database

PostgreSQL comes from ``AECFLOW_TEST_DATABASE_URL`` or the local server at 127.0.0.1:5432.
Goals: at least 1,000 events/s to SQS with batching; webhook p50 delay under 1 s at idle.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa

TXN_EVENTS = 200
IDLE_EVENTS = 100
IDLE_GAP_S = 0.05
GOAL_SQS_RATE = 1000.0
GOAL_WEBHOOK_IDLE_P50_S = 1.0
REGION = "us-east-1"
LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

Receipts = Callable[[set[str]], Awaitable[dict[str, float]]]


# -- destinations (child processes) --------------------------------------------------------


def serve_app(app: Any) -> None:
    """Run ``app`` under uvicorn on a free loopback port; print ``PORT <n>`` once it listens."""
    import uvicorn

    async def run() -> None:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", access_log=False
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.02)
        print(f"PORT {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
        await task

    asyncio.run(run())


def receipts_route(receipts: dict[str, float], extra: Callable[[], dict[str, Any]]) -> Any:
    """``GET /receipts``: hand the receipts noted so far over (and forget them)."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def collect(request: Request) -> JSONResponse:
        data = {"receipts": receipts.copy(), **extra()}
        receipts.clear()
        return JSONResponse(data)

    return Route("/receipts", collect)


def receiver_app(secret: str) -> Any:
    """A webhook receiver that verifies every delivery and notes when it arrived."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from aecflow_notify_webhook import WebhookVerificationError, verify

    receipts: dict[str, float] = {}
    forged = [0]

    async def hook(request: Request) -> Response:
        body = await request.body()
        try:
            verify(body, request.headers, secret)
        except WebhookVerificationError:
            forged[0] += 1
            return Response(status_code=400)
        receipts.setdefault(request.headers["webhook-id"], time.time())
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/hook", hook, methods=["POST"]),
            receipts_route(receipts, lambda: {"forged": forged[0]}),
        ]
    )


def sqs_app() -> Any:
    """A minimal SQS endpoint: accepts every message and notes when it arrived."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    receipts: dict[str, float] = {}
    media = "application/x-amz-json-1.0"

    async def api(request: Request) -> JSONResponse:
        operation = request.headers.get("x-amz-target", "").rpartition(".")[2]
        data = json.loads(await request.body())
        if operation == "GetQueueAttributes":
            return JSONResponse({"Attributes": {"MaximumMessageSize": "1048576"}}, media_type=media)
        if operation != "SendMessageBatch":
            error = {"__type": "com.amazonaws.sqs#UnsupportedOperation", "message": operation}
            return JSONResponse(error, 400, media_type=media)
        now = time.time()
        successful = []
        for entry in data["Entries"]:
            receipts.setdefault(entry["MessageAttributes"]["event_id"]["StringValue"], now)
            digest = hashlib.md5(entry["MessageBody"].encode(), usedforsecurity=False)
            successful.append(
                {"Id": entry["Id"], "MessageId": str(uuid.uuid4()),
                 "MD5OfMessageBody": digest.hexdigest()}
            )  # fmt: skip
        return JSONResponse({"Successful": successful, "Failed": []}, media_type=media)

    return Starlette(routes=[Route("/", api, methods=["POST"]), receipts_route(receipts, dict)])


def moto_main() -> None:
    """moto's server on a free loopback port until stdin closes."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(f"PORT {server.get_host_and_port()[1]}", flush=True)
    sys.stdin.read()
    server.stop()


@contextlib.contextmanager
def child(mode: str, **env: str) -> Iterator[str]:
    """This file run as ``--serve MODE`` in its own process: yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError(f"{mode} did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.terminate()
        process.wait(10)


class QueueConsumer:
    """Receives and deletes as it goes, as a real consumer would, noting ``SentTimestamp``
    (when SQS accepted each message); it also keeps moto's queue, and so its cost, small."""

    def __init__(self, sqs: Any, url: str, loops: int = 2) -> None:
        self.sqs, self.url, self.loops = sqs, url, loops
        self.receipts: dict[str, float] = {}
        self.duplicates = 0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop()) for _ in range(self.loops)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _loop(self) -> None:
        while not self._stop.is_set():
            # short polls: moto re-scans the whole queue for every waiting long poll
            answer = await self.sqs.receive_message(
                QueueUrl=self.url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["event_id"],
                MessageSystemAttributeNames=["SentTimestamp"],
            )
            batch = answer.get("Messages", [])
            if not batch:
                await asyncio.sleep(0.02)
                continue
            for m in batch:
                event_id = m["MessageAttributes"]["event_id"]["StringValue"]
                if event_id in self.receipts:
                    self.duplicates += 1
                self.receipts.setdefault(event_id, int(m["Attributes"]["SentTimestamp"]) / 1000)
            await self.sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                         for n, m in enumerate(batch)],
            )  # fmt: skip

    async def take(self, expected: set[str], timeout_s: float = 300.0) -> dict[str, float]:
        """Wait until every ``expected`` event was received; hand their receipts over."""
        deadline = time.monotonic() + timeout_s
        while not expected <= self.receipts.keys() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        return {e: self.receipts.pop(e) for e in expected if e in self.receipts}


def http_receipts(base: str) -> Receipts:
    """Receipts kept by a child destination, fetched from its ``GET /receipts``."""
    import httpx

    kept: dict[str, float] = {}

    async def take(expected: set[str]) -> dict[str, float]:
        async with httpx.AsyncClient(base_url=base) as client:
            data = (await client.get("/receipts")).json()
        assert not data.get("forged"), "the receiver refused signatures"
        kept.update(data["receipts"])
        return {e: kept.pop(e) for e in expected if e in kept}

    return take


# -- measuring -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def database(postgres: bool) -> AsyncIterator[str | None]:
    """``None`` (SQLite in the run's directory) or a throw-away PostgreSQL database."""
    if not postgres:
        yield None
        return
    from sqlalchemy.ext.asyncio import create_async_engine

    admin_url = os.environ.get("AECFLOW_TEST_DATABASE_URL", LOCAL_POSTGRES)
    name = f"aecflow_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        yield sa.engine.make_url(admin_url).set(database=name).render_as_string(False)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def settings_for(root: Path, database_url: str | None, notifier: dict[str, Any]) -> Any:
    from aecflow.config import Settings

    raw: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "database": {"url": database_url or f"sqlite+aiosqlite:///{root / 'aecflow.db'}"},
        "storage": {"backend": "local", "root": str(root / "objects")},
        "notifiers": [notifier],
        "worker": {"embedded": True},
    }
    return Settings.model_validate(raw)


async def pending(flow: Any) -> int:
    from aecflow.store.schema import outbox

    async with flow.engine.connect() as conn:
        stmt = sa.select(sa.func.count()).where(outbox.c.status != "delivered")
        return (await conn.execute(stmt)).scalar_one()


async def wait_delivered(flow: Any, timeout_s: float = 900.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await pending(flow):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{await pending(flow)} events still pending")
        await asyncio.sleep(0.05)


async def commit_bulk(flow: Any, template: dict[str, Any], count: int) -> dict[str, float]:
    """Commit ``count`` events through the outbox; returns event id -> commit time."""
    from aecflow.ids import uuid7
    from aecflow.outbox import events

    committed: dict[str, float] = {}
    for start in range(0, count, TXN_EVENTS):
        now = dt.datetime.now(dt.UTC)
        occurred = now.isoformat().replace("+00:00", "Z")
        batch = [
            dict(template, id=uuid7(), occurred_at=occurred)
            for _ in range(min(TXN_EVENTS, count - start))
        ]
        async with flow.engine.begin() as conn:
            for event in batch:
                await events.enqueue(conn, event, flow.notifiers.items(), now)
        stamp = time.time()
        committed.update((event["id"], stamp) for event in batch)
        if flow.dispatcher is not None:
            flow.dispatcher.wake.set()  # what the flow's own state changes do
    return committed


async def commit_idle(flow: Any, count: int) -> dict[str, float]:
    """Ingest files one at a time, spaced out; returns event id -> commit time."""
    from aecflow.store.schema import outbox
    from aecflow.streams import aiter_bytes

    committed_files: dict[str, float] = {}
    for n in range(count):
        record = await flow.ingest("bench", f"idle-{n}.bin", aiter_bytes(b"idle"))
        committed_files[record.id] = time.time()
        await asyncio.sleep(IDLE_GAP_S)
    async with flow.engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox.c.event_id, outbox.c.file_id))).all()
    return {event_id: committed_files[file_id] for event_id, file_id in rows
            if file_id in committed_files}  # fmt: skip


def summary(label: str, committed: dict[str, float], receipts: dict[str, float]) -> dict:
    arrived = [e for e in committed if e in receipts]
    delays = sorted(receipts[e] - committed[e] for e in arrived)
    span = max(receipts[e] for e in arrived) - min(committed.values())
    q = statistics.quantiles(delays, n=100, method="inclusive")
    result = {
        "events": len(committed),
        "missing": len(committed) - len(arrived),
        "rate": len(delays) / span if span > 0 else float("inf"),
        "p50_s": q[49],
        "p99_s": q[98],
    }
    p50_ms, p99_ms = result["p50_s"] * 1000, result["p99_s"] * 1000
    print(
        f"   {label:5} {len(delays):>6,} events {result['rate']:>7,.0f} events/s   "
        f"commit->receipt p50 {p50_ms:>8.1f} ms  p99 {p99_ms:>8.1f} ms"
        + (f"   MISSING {result['missing']}" if result["missing"] else ""),
        flush=True,
    )
    return result


async def measure(
    kind: str,
    notifier: dict[str, Any],
    receipts_of: Receipts | None,
    count: int,
    postgres: bool,
) -> dict[str, Any]:
    """Bulk, then idle, through a flow with the embedded dispatcher; prints both."""
    from aecflow.flow import Flow
    from aecflow.store.schema import outbox
    from aecflow.streams import aiter_bytes

    async def from_outbox(expected: set[str]) -> dict[str, float]:
        async with flow.engine.connect() as conn:
            rows = await conn.execute(sa.select(outbox.c.event_id, outbox.c.delivered_at))
        return {e: at.timestamp() for e, at in rows if e in expected and at is not None}

    take = receipts_of or from_outbox
    with tempfile.TemporaryDirectory(prefix=f"aecflow-bench-{kind}-") as tmp:
        async with (
            database(postgres) as url,
            Flow.open(settings_for(Path(tmp), url, notifier)) as flow,
        ):
            warm = await flow.ingest("bench", "warm-up.bin", aiter_bytes(b"warm"))
            await wait_delivered(flow)
            async with flow.engine.begin() as conn:
                warm_ids = set((await conn.execute(sa.select(outbox.c.event_id))).scalars())
                await conn.execute(sa.delete(outbox))
            await take(warm_ids)
            template = {"type": "file.stored", "version": 1, "project": "bench",
                        "file": (await flow.get(warm.id)).as_dict()}  # fmt: skip

            started = time.perf_counter()
            committed = await commit_bulk(flow, template, count)
            commit_s = time.perf_counter() - started
            await wait_delivered(flow)
            print(f"   (bulk commits: {count:,} in {commit_s:.2f} s, "
                  f"{count / commit_s:,.0f} events/s)", flush=True)  # fmt: skip
            bulk = summary("bulk", committed, await take(set(committed)))
            async with flow.engine.begin() as conn:
                await conn.execute(sa.delete(outbox))

            committed = await commit_idle(flow, IDLE_EVENTS)
            await wait_delivered(flow)
            idle = summary("idle", committed, await take(set(committed)))
            alone = await notifier_alone(flow, template, count, take)
    return {"bulk": bulk, "idle": idle, "notifier_alone": alone}


async def notifier_alone(
    flow: Any, template: dict[str, Any], count: int, take: Receipts
) -> dict[str, float]:
    """The plugin without the dispatcher: ``deliver()`` rounds of ``max_batch`` events, one
    after another, as the dispatcher calls it; shows what the outbox's bookkeeping costs."""
    from aecflow.ids import uuid7
    from aecflow.notify import DeliveryStatus, Event

    [notifier] = flow.notifiers.values()
    now = dt.datetime.now(dt.UTC)
    events = [
        Event(i, "file.stored", now, "bench", template["file"]["id"], dict(template, id=i), {})
        for i in (uuid7() for _ in range(count))
    ]
    started = time.perf_counter()
    delivered = 0
    for start in range(0, count, notifier.max_batch):
        outcomes = await notifier.deliver(events[start : start + notifier.max_batch])
        delivered += sum(o.status is DeliveryStatus.DELIVERED for o in outcomes.values())
    elapsed = time.perf_counter() - started
    await take({e.id for e in events})
    rate = delivered / elapsed
    print(f"   alone {delivered:>6,} events {rate:>7,.0f} events/s   "
          f"(deliver() in rounds of {notifier.max_batch}, no outbox)", flush=True)  # fmt: skip
    return {"events": delivered, "rate": rate}


async def run(kind: str, args: argparse.Namespace) -> dict[str, Any]:
    where = "PostgreSQL" if args.postgres else "SQLite"
    count = args.moto_events if kind == "sqs-moto" else args.events
    print(f"== {kind}: {DESCRIPTIONS[kind]}; {where}; {count:,} events", flush=True)
    if kind == "log":
        notifier = {"backend": "log", "level": "DEBUG"}
        return await measure(kind, notifier, None, count, args.postgres)
    if kind == "webhook":
        from aecflow_notify_webhook import generate_secret

        secret = generate_secret()
        with child("receiver", BENCH_WEBHOOK_SECRET=secret) as base:
            notifier = {"backend": "webhook", "url": f"{base}/hook", "secret": secret}
            return await measure(kind, notifier, http_receipts(base), count, args.postgres)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    if kind == "sqs":
        with child("sqs") as base:
            notifier = {"backend": "sqs", "queue_url": f"{base}/000000000000/bench-events",
                        "endpoint_url": base, "region": REGION}  # fmt: skip
            return await measure(kind, notifier, http_receipts(base), count, args.postgres)
    import aioboto3

    with child("moto") as base:
        session = aioboto3.Session()
        async with session.client("sqs", region_name=REGION, endpoint_url=base) as sqs:
            url = (await sqs.create_queue(QueueName="bench-events"))["QueueUrl"]
            consumer = QueueConsumer(sqs, url)
            consumer.start()
            notifier = {"backend": "sqs", "queue_url": url, "endpoint_url": base,
                        "region": REGION}  # fmt: skip
            try:
                return await measure(kind, notifier, consumer.take, count, args.postgres)
            finally:
                await consumer.stop()
                if consumer.duplicates:
                    print(f"   ({consumer.duplicates} messages received twice)")


DESCRIPTIONS = {
    "sqs": "minimal SQS endpoint, aioboto3 over HTTP",
    "sqs-moto": "moto's SQS, aioboto3 over HTTP, consumed as it goes",
    "webhook": "uvicorn receiver verifying every signature",
    "log": "the core's log notifier: the dispatcher alone",
}


async def main(args: argparse.Namespace) -> None:
    results = {kind: await run(kind, args) for kind in args.only}
    print("== goals")
    if "sqs" in results:
        rate = results["sqs"]["bulk"]["rate"]
        verdict = "met" if rate >= GOAL_SQS_RATE else "MISSED"
        print(f"   SQS bulk {rate:,.0f} events/s (goal >= {GOAL_SQS_RATE:,.0f}): {verdict}")
    if "webhook" in results:
        p50 = results["webhook"]["idle"]["p50_s"]
        verdict = "met" if p50 < GOAL_WEBHOOK_IDLE_P50_S else "MISSED"
        print(f"   webhook idle p50 {p50 * 1000:.1f} ms (goal < 1 s): {verdict}")
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        mode = sys.argv[2]
        if mode == "moto":
            moto_main()
        else:
            serve_app(
                receiver_app(os.environ["BENCH_WEBHOOK_SECRET"]) if mode == "receiver"
                else sqs_app()
            )  # fmt: skip
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--moto-events", type=int, default=1_000)
    parser.add_argument(
        "--only", nargs="+", choices=list(DESCRIPTIONS), default=list(DESCRIPTIONS),
        help="destinations to measure (default: all)",
    )  # fmt: skip
    parser.add_argument("--postgres", action="store_true", help="a throw-away PostgreSQL database")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    asyncio.run(main(parser.parse_args()))
