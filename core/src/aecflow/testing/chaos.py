"""Chaos runs over a :class:`~aecflow.testing.cluster.Cluster`: clients, kills, and the check
that nothing acknowledged was lost or duplicated.

- :class:`Receiver`: a real webhook endpoint (uvicorn on loopback) that verifies every
  Standard Webhooks signature the ``webhook`` notifier sends and records each event by id.
- :class:`Ledger`: what the clients were told: acknowledged uploads and deletes, and the
  requests that got no answer (a host died under them: they may or may not have happened).
- :func:`client_mix`: clients uploading small ``*.burn`` files and real IFC models, listing and
  deleting, against random hosts, until stopped.
- :func:`chaos`: every few seconds SIGKILL a random host or worker, and start it again.
- :func:`settle`: every process up again, then wait until no job, no outbox row (the delete
  announcements included) and no orphaned object is pending.
- :func:`verify`: every acknowledged upload stored once with its object present, processed
  once in effect, announced at least once with one stable id per event (``file.stored``,
  ``file.processed``, ``file.deleted``), no object without a row, no job stuck.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from aecflow.files.orphans import file_id_of
from aecflow.store import scratch
from aecflow.testing.cluster import Cluster
from aecflow.testing.live import serve_app

#: Outcomes a settled job or outbox row may have.
JOB_DONE = frozenset({"done", "failed"})
EVENT_DONE = frozenset({"delivered", "dead"})


class Receiver:
    """A webhook endpoint that checks signatures and records what arrived (see module)."""

    def __init__(self, secret: str | None = None, *, tolerance_s: float = 300.0) -> None:
        self.secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.key = base64.b64decode(self.secret.removeprefix("whsec_"))
        self.tolerance_s = tolerance_s
        self.url = ""
        #: event id -> payload (the first delivery of it).
        self.events: dict[str, dict[str, Any]] = {}
        #: (event type, file id) -> the distinct event ids that announced it.
        self.seen: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
        self.deliveries = 0
        self.redeliveries = 0
        self.refused = 0

    def verified(self, headers: Any, body: bytes) -> bool:
        msg_id = headers.get("webhook-id", "")
        stamp = headers.get("webhook-timestamp", "")
        if not msg_id or not stamp.isdigit() or abs(time.time() - int(stamp)) > self.tolerance_s:
            return False
        mac = hmac.new(self.key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        offered = headers.get("webhook-signature", "").split()
        return any(hmac.compare_digest(expected, sig) for sig in offered)

    async def handle(self, request: Any) -> Any:
        from starlette.responses import Response

        body = await request.body()
        if not self.verified(request.headers, body):
            self.refused += 1
            return Response(status_code=400)
        payload = json.loads(body)
        event_id = request.headers["webhook-id"]
        self.deliveries += 1
        if event_id in self.events:
            self.redeliveries += 1
        else:
            self.events[event_id] = payload
        file_id = (payload.get("file") or {}).get("id", "")
        self.seen[(payload.get("type", ""), file_id)].add(event_id)
        return Response(status_code=204)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        from starlette.applications import Starlette
        from starlette.routing import Route

        app = Starlette(routes=[Route("/hooks", self.handle, methods=["POST"])])
        async with serve_app(app) as url:
            self.url = url + "/hooks"
            yield self

    def notifier(self, **options: Any) -> dict[str, Any]:
        """The ``[[notifiers]]`` entry that sends here."""
        return {
            "backend": "webhook",
            "name": "chaos",
            "url": self.url,
            "secret": self.secret,
            "timeout_s": 5.0,
            **options,
        }


@dataclass(frozen=True, slots=True)
class Upload:
    file_id: str
    project: str
    filename: str
    size: int
    sha256: str
    kind: str  # burn | ifc


@dataclass
class Ledger:
    """What the clients were told."""

    uploads: dict[str, Upload] = field(default_factory=dict)
    deletes: set[str] = field(default_factory=set)
    #: Requests that got no answer or a 5xx: they may or may not have happened.
    unanswered: list[str] = field(default_factory=list)
    #: Operation -> count, and operation -> status or error -> count.
    ops: collections.Counter[str] = field(default_factory=collections.Counter)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))


def _burn_body(rng: random.Random) -> bytes:
    return rng.randbytes(rng.randint(256, 16 * 1024))


async def client_mix(
    cluster: Cluster,
    ledger: Ledger,
    stop: asyncio.Event,
    *,
    clients: int = 4,
    projects: Sequence[str] = ("chaos-a", "chaos-b"),
    ifc: Sequence[Path] = (),
    weights: dict[str, float] | None = None,
    seed: int = 19,
    pause_s: float = 0.05,
) -> None:
    """``clients`` clients each looping over the mix until ``stop`` is set."""
    mix = weights or {
        "upload": 0.45,
        "upload_ifc": 0.1 if ifc else 0.0,
        "list": 0.3,
        "delete": 0.15,
    }
    models = [(path.name, path.read_bytes()) for path in ifc]
    rng = random.Random(seed)

    async def one(client_no: int) -> None:
        local = random.Random(rng.random())
        async with httpx.AsyncClient(timeout=20.0) as http:
            while not stop.is_set():
                op = local.choices(list(mix), weights=list(mix.values()))[0]
                hosts = cluster.host_urls
                first = local.randrange(len(hosts))
                project = local.choice(list(projects))
                started = time.monotonic()
                # A refused connection sent nothing: the client fails over to the next host.
                for base in hosts[first:] + hosts[:first]:
                    try:
                        await _operation(op, http, base, project, ledger, local, models)
                        break
                    except httpx.ConnectError as exc:
                        ledger.outcomes[f"{op}:{type(exc).__name__}"] += 1
                    except httpx.HTTPError as exc:
                        ledger.outcomes[f"{op}:{type(exc).__name__}"] += 1
                        break
                ledger.latencies[op].append(time.monotonic() - started)
                await asyncio.sleep(pause_s)

    await asyncio.gather(*(one(n) for n in range(clients)))


async def _operation(
    op: str,
    http: httpx.AsyncClient,
    base: str,
    project: str,
    ledger: Ledger,
    rng: random.Random,
    models: list[tuple[str, bytes]],
) -> None:
    if op in ("upload", "upload_ifc"):
        if op == "upload_ifc" and models:
            name, body = rng.choice(models)
            filename, kind = f"{uuid.uuid4().hex[:12]}-{name}", "ifc"
        else:
            body, filename, kind = _burn_body(rng), f"{uuid.uuid4().hex[:12]}.burn", "burn"
        what = f"upload {project}/{filename}"
        ledger.ops[op] += 1
        try:
            response = await http.post(
                f"{base}/v1/projects/{project}/files", params={"filename": filename}, content=body
            )
        except httpx.ConnectError:
            raise  # refused: nothing was sent
        except httpx.HTTPError:
            ledger.unanswered.append(what)
            raise
        ledger.outcomes[f"{op}:{response.status_code}"] += 1
        if response.status_code == 201:
            record = response.json()
            ledger.uploads[record["id"]] = Upload(
                record["id"], project, filename, len(body), hashlib.sha256(body).hexdigest(), kind
            )
        elif response.status_code >= 500:
            ledger.unanswered.append(what)
    elif op == "list":
        ledger.ops[op] += 1
        response = await http.get(f"{base}/v1/projects/{project}/files", params={"limit": 50})
        ledger.outcomes[f"{op}:{response.status_code}"] += 1
    elif op == "delete":
        live = [u for u in ledger.uploads.values() if u.file_id not in ledger.deletes]
        if not live:
            return
        target = rng.choice(live)
        ledger.ops[op] += 1
        try:
            response = await http.delete(f"{base}/v1/files/{target.file_id}")
        except httpx.ConnectError:
            raise
        except httpx.HTTPError:
            ledger.unanswered.append(f"delete {target.file_id}")
            raise
        ledger.outcomes[f"{op}:{response.status_code}"] += 1
        if response.status_code == 200:
            ledger.deletes.add(target.file_id)


async def chaos(
    cluster: Cluster,
    stop: asyncio.Event,
    *,
    every_s: float = 3.0,
    down_s: float = 0.3,
    seed: int = 7,
    kinds: Sequence[str] = ("host", "worker"),
) -> list[str]:
    """SIGKILL a random member every ``every_s`` (one of each kind in turn) and restart it
    ``down_s`` later; returns the names killed, in order."""
    rng = random.Random(seed)
    killed: list[str] = []
    turn = 0
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s * rng.uniform(0.6, 1.4))
        if stop.is_set():
            break
        kind = kinds[turn % len(kinds)]  # kinds in turn, a random member of each
        turn += 1
        name = rng.choice(cluster.names(kind))
        cluster.kill(name)
        killed.append(name)
        await asyncio.sleep(down_s)
        cluster.restart(name)
    return killed


@dataclass
class State:
    """One look at the whole run: rows by table and the objects in storage."""

    files: list[dict[str, Any]]
    jobs: list[dict[str, Any]]
    outbox: list[dict[str, Any]]
    objects: dict[str, int]

    def pending(self) -> list[str]:
        """What is not settled yet, one line each."""
        owned = {row["storage_key"] for row in self.files if row["storage_key"]}
        lines = [f"job {j['id']} {j['status']}" for j in self.jobs if j["status"] not in JOB_DONE]
        lines += [
            f"event {r['event_type']} {r['file_id']} {r['status']} attempts={r['attempts']}"
            for r in self.outbox
            if r["status"] not in EVENT_DONE
        ]
        lines += [f"orphaned object {key}" for key in self.objects if key not in owned]
        return lines


async def look(cluster: Cluster) -> State:
    flow = cluster.flow
    assert flow is not None
    async with flow.engine.connect() as conn:
        files = await scratch.table_rows(conn, "files")
        jobs = await scratch.table_rows(conn, "jobs")
        outbox = await scratch.table_rows(conn, "outbox")
    objects = {
        info.key: info.size
        async for info in flow.runtime.storage.list("")
        if file_id_of(info.key) is not None
    }
    return State(files, jobs, outbox, objects)


async def settle(cluster: Cluster, *, timeout_s: float = 90.0) -> State:
    """Restart whatever is down, then wait until nothing is pending (see :meth:`State.pending`):
    jobs finished, every outbox row delivered or dead (deletes' announcements too), orphans
    swept. Fails with what is still pending and the processes' log tails."""
    for name, member in cluster.members.items():
        if not member.alive:
            cluster.restart(name)
    await cluster.wait_ready()
    deadline = time.monotonic() + timeout_s
    while True:
        state = await look(cluster)
        pending = state.pending()
        if not pending:
            return state
        if time.monotonic() > deadline:
            shown = "\n".join(pending[:40])
            raise AssertionError(
                f"not settled within {timeout_s:g}s ({len(pending)} pending):\n{shown}\n"
                f"{cluster.tails()}"
            )
        await asyncio.sleep(0.5)


@dataclass
class Verdict:
    problems: list[str]
    counts: dict[str, int]

    def __bool__(self) -> bool:
        return not self.problems


async def verify(cluster: Cluster, ledger: Ledger, receiver: Receiver, state: State) -> Verdict:
    """Check the invariants of the module docstring against a settled ``state``."""
    problems: list[str] = []
    rows = {row["id"]: row for row in state.files}
    names = collections.Counter(row["filename"] for row in state.files if row["filename"])
    done_jobs = collections.Counter(j["file_id"] for j in state.jobs if j["status"] == "done")
    for up in ledger.uploads.values():
        row = rows.get(up.file_id)
        if row is None:
            problems.append(f"acknowledged upload {up.filename} ({up.file_id}) has no row")
            continue
        if (row["sha256"], row["size"], row["filename"]) != (up.sha256, up.size, up.filename):
            problems.append(f"file {up.file_id} does not match what was uploaded")
        if names[up.filename] != 1:
            problems.append(f"{up.filename} is stored {names[up.filename]} times")
        if state.objects.get(row["storage_key"]) != up.size:
            problems.append(f"file {up.file_id}: object {row['storage_key']} missing or wrong size")
        if up.file_id in ledger.deletes and row["deleted_at"] is None:
            problems.append(f"acknowledged delete of {up.file_id} is not recorded")
    for file_id, row in rows.items():
        processing = row["processing"] or {}
        if processing.get("outcome") == "skipped":
            continue
        if row["status"] != "processed" or processing.get("outcome") != "succeeded":
            problems.append(
                f"file {file_id} ({row['filename']}) ended {row['status']}: "
                f"{processing.get('outcome')} {processing.get('error')}"
            )
        if done_jobs[file_id] != 1:
            problems.append(f"file {file_id} has {done_jobs[file_id]} successful jobs, not 1")
        result = processing.get("result") or {}
        if processing.get("processor") == "burn" and result.get("sha256") != row["sha256"]:
            problems.append(f"file {file_id} was processed from other bytes")
        wanted = ["file.stored", "file.processed"]
        if row["deleted_at"] is not None:
            wanted.append("file.deleted")
        for event_type in wanted:
            ids = receiver.seen.get((event_type, file_id), set())
            if len(ids) != 1:
                problems.append(f"{event_type} of {file_id} arrived under {len(ids)} event ids")
    for up_id in ledger.deletes:
        if not receiver.seen.get(("file.deleted", up_id)):
            problems.append(f"acknowledged delete of {up_id} was never announced")
    for event in state.outbox:
        if event["status"] != "delivered":
            problems.append(f"event {event['event_id']} {event['event_type']} is {event['status']}")
        elif event["event_id"] not in receiver.events:
            problems.append(f"event {event['event_id']} delivered but not received")
    owned = {row["storage_key"] for row in state.files if row["storage_key"]}
    problems += [f"orphaned object {key}" for key in state.objects if key not in owned]
    problems += [
        f"job {j['id']} stuck {j['status']}" for j in state.jobs if j["status"] not in JOB_DONE
    ]
    counts = {
        "files": len(rows),
        "acknowledged_uploads": len(ledger.uploads),
        "acknowledged_deletes": len(ledger.deletes),
        "unanswered": len(ledger.unanswered),
        "events": len(receiver.events),
        "redeliveries": receiver.redeliveries,
        "refused_deliveries": receiver.refused,
        "kills": sum(m.kills for m in cluster.members.values()),
        "jobs": len(state.jobs),
        "job_attempts": sum(j["attempts"] for j in state.jobs),
    }
    return Verdict(problems, counts)
