"""The OpenAPI document against the live host: schemathesis calls every operation with a valid
admin token (and without one) and checks that nothing answers 5xx and that every status,
header and body is the one the document promises. Plain tests check that the document is
OpenAPI 3.1, names every route, and that ``/docs`` shows every endpoint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import hypothesis
import pytest
import requests
import schemathesis
import sqlalchemy as sa
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from starlette.routing import Route

from aecflow.actor import Role
from aecflow.flow import Flow
from aecflow.host import ROUTES, create_app, openapi
from aecflow.ids import uuid7
from aecflow.store.schema import outbox
from aecflow.streams import aiter_bytes

from .conftest import make_settings
from .live import live_host

#: Examples per operation (on top of schemathesis's coverage cases): about 1,600 requests,
#: some 30 s for the whole file.
MAX_EXAMPLES = 50
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20240607,
        "generation": {"mode": "all", "deterministic": True, "database": "none"},
        "phases": {"stateful": {"enabled": False}},
    }
)
SCHEMA = schemathesis.openapi.from_dict(openapi.document(), config=CONFIG)


@SCHEMA.auth()
class AdminToken:
    """The live host's admin token (it exists only once the host runs); schemathesis leaves it
    out of the cases where it tests a missing or broken ``Authorization``."""

    token = ""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return AdminToken.token

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@dataclass
class Live:
    """A host serving in a thread of its own, so schemathesis's blocking calls cannot stall it."""

    url: str
    token: str
    flow: Flow
    loop: asyncio.AbstractEventLoop
    session: requests.Session = field(default_factory=requests.Session)

    def seed(self) -> Seeded:
        return asyncio.run_coroutine_threadsafe(_seed(self.flow), self.loop).result(30)


@dataclass
class Seeded:
    """Ids that exist: files in every state (stored, deleted, purged), a dead letter, and upload
    sessions in every state (open and empty, open with every part, completed, aborted)."""

    file_ids: list[str]
    dead_ids: list[str]
    upload_ids: list[str]


async def _seed(flow: Flow) -> Seeded:
    async def ingest(name: str, data: bytes, **meta: str) -> str:
        record = await flow.ingest("demo", name, aiter_bytes(data), metadata=meta)
        return record.id

    kept = await ingest("tower.txt", b"level 1\nlevel 2\n" * 64, phase="design")
    other = await ingest("notes.bin", bytes(range(256)) * 8)
    deleted = await ingest("old.txt", b"gone soon\n")
    await flow.delete(deleted)
    purged = await ingest("secret.txt", b"erase me\n")
    await flow.purge(purged)
    dead_id = uuid7()
    now = dt.datetime.now(dt.UTC)
    async with flow.engine.begin() as conn:
        await conn.execute(
            sa.insert(outbox).values(
                id=dead_id,
                event_id=uuid7(),
                destination="log",
                event_type="file.stored",
                project="demo",
                file_id=kept,
                payload={"type": "file.stored"},
                status="dead",
                attempts=10,
                available_at=now,
                last_error="connection refused",
                created_at=now,
            )
        )
    return Seeded([kept, other, deleted, purged], [dead_id], await _seed_uploads(flow))


async def _seed_uploads(flow: Flow) -> list[str]:
    sessions = flow.uploads
    data = b"IFC part\n" * 32
    digest = hashlib.sha256(data).hexdigest()

    async def opened(name: str, *, parts: bool) -> str:
        view = await sessions.open("demo", name, len(data), sha256=digest, metadata={"k": "v"})
        if parts:
            await sessions.receive_part(view["id"], 1, aiter_bytes(data))
        return view["id"]

    empty = await opened("empty.ifc", parts=False)
    full = await opened("full.ifc", parts=True)
    completed = await opened("completed.ifc", parts=True)
    await sessions.complete(completed)
    aborted = await opened("aborted.ifc", parts=False)
    await sessions.abort(aborted)
    return [empty, full, completed, aborted]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    settings = make_settings(
        tmp,
        f"sqlite+aiosqlite:///{tmp / 'aecflow.db'}",
        notifiers=[{"backend": "log"}],
        # schemathesis also calls without a token; the 429 lock-out has tests of its own
        auth={"failures_per_minute": 1_000_000},
        telemetry={"prometheus": True},  # so that /metrics is routed too
    )
    started: queue.Queue[Live | BaseException] = queue.Queue()
    stopping: queue.Queue[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = queue.Queue()

    async def serve() -> None:
        async with live_host(settings, worker=False) as (url, app):
            flow: Flow = app.state.flow
            _, token = await flow.create_token(name="openapi", role=Role.ADMIN, projects=["*"])
            stop = asyncio.Event()
            stopping.put((asyncio.get_running_loop(), stop))
            started.put(Live(url, token, flow, asyncio.get_running_loop()))
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            started.put(exc)

    thread = threading.Thread(target=run, name="aecflow openapi host", daemon=True)
    thread.start()
    got = started.get(timeout=60)
    if isinstance(got, BaseException):
        raise got
    AdminToken.token = got.token
    try:
        yield got
    finally:
        got.session.close()
        loop, stop = stopping.get()
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


@pytest.fixture
def seeded(live: Live) -> Seeded:
    """Fresh records for each operation: earlier ones may have deleted or purged the last."""
    return live.seed()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_the_live_host_matches_the_document(case, live: Live, seeded: Seeded) -> None:
    meta = case.meta
    if meta is None or meta.generation.mode.is_positive:
        # random ids never exist: most of the time aim at a real file or dead letter instead,
        # chosen from the generated value so that a run stays reproducible
        for name, ids in (
            ("file_id", seeded.file_ids),
            ("dead_id", seeded.dead_ids),
            ("upload_id", seeded.upload_ids),
            ("number", [1]),
        ):
            if case.path_parameters and name in case.path_parameters:
                drawn = str(case.path_parameters[name])
                choices = [drawn, *ids]
                case.path_parameters[name] = choices[zlib.crc32(drawn.encode()) % len(choices)]
    # Some schema-valid values are refused by design, with a documented 400: cursors are opaque
    # (only a page's next_cursor is valid), a Content-SHA256 must match the body, names and
    # metadata also follow Unicode rules that JSON Schema cannot state.
    excluded = [positive_data_acceptance]
    if meta and str(case.media_type).startswith("multipart/") and meta.is_negative_at("body"):
        # every multipart value goes out as a part: a body of the "wrong type" cannot be sent
        excluded.append(negative_data_rejection)
    case.call_and_validate(
        base_url=live.url,
        session=live.session,
        excluded_checks=excluded,
    )


# -- bugs schemathesis found, pinned down -----------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/v1/events/dead?cursor=%F1%8A%89%C3%99", 400, "invalid_cursor"),  # non-ASCII
        ("GET", "/v1/projects/demo/files?cursor=%C3%A9", 400, "invalid_cursor"),
        ("GET", "/v1/files/{id}/download?expires=54286398727358263590912", 400, "invalid_query"),
        ("GET", "/v1/projects/demo/files?limit=%C2%B2", 400, "invalid_query"),  # "²".isdigit()
        ("GET", "/v1/audit?limit=%C2%B2", 400, "invalid_query"),
        ("GET", "/v1/audit?limit=" + "9" * 5000, 400, "invalid_query"),
        ("GET", "/v1/audit?since=0001-01-01T00:00:00%2B01:00", 400, "invalid_query"),
        ("GET", "/v1/audit?until=9999-12-31T23:59:59-01:00", 400, "invalid_query"),
        ("GET", "/v1/audit?actor=a%00b", 400, "invalid_character"),  # PostgreSQL: 500 before
        ("GET", "/v1/files/0000000%00-0000-0000-0000-000000000000", 400, "invalid_character"),
        ("POST", "/v1/projects/demo%0A/files?filename=a.txt", 400, "invalid_project"),
    ],
)
def test_found_bugs_stay_fixed(
    live: Live, seeded: Seeded, method: str, path: str, status: int, code: str
) -> None:
    headers = {"Authorization": f"Bearer {live.token}"}
    url = live.url + path.replace("{id}", seeded.file_ids[0])
    response = live.session.request(method, url, headers=headers, data=b"x")
    assert (response.status_code, response.json()["error"]["code"]) == (status, code)


def test_a_405_names_every_method_of_the_path(live: Live, seeded: Seeded) -> None:
    headers = {"Authorization": f"Bearer {live.token}"}
    for path in (f"/v1/files/{seeded.file_ids[0]}", "/v1/projects/demo/files"):
        response = live.session.request("PUT", live.url + path, headers=headers)
        assert response.status_code == 405
        allowed = {method.strip() for method in response.headers["Allow"].split(",")}
        documented = {method.upper() for method in openapi.document()["paths"][_template(path)]}
        assert documented <= allowed <= documented | {"HEAD"}


def _template(path: str) -> str:
    if path.startswith("/v1/files/"):
        return "/v1/files/{file_id}"
    return "/v1/projects/{project}/files"


# -- the document itself ----------------------------------------------------------------------

PARAMETER_IN = {"path", "query", "header", "cookie"}


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_the_document_is_well_formed_openapi_3_1() -> None:
    document = openapi.document()
    assert document["openapi"].startswith("3.1.")
    assert document["info"]["title"] and document["info"]["version"]
    components = document["components"]
    for ref in _refs(document):
        section, name = ref.removeprefix("#/components/").split("/")
        assert name in components[section], ref
    tags = {tag["name"] for tag in document["tags"]}
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        assert path.startswith("/")
        templated = set(re.findall(r"{(\w+)}", path))
        for method, op in item.items():
            assert method in {"get", "post", "put", "patch", "delete"}
            assert set(op["tags"]) <= tags
            for scheme in op.get("security") or document["security"]:
                assert set(scheme) <= set(components["securitySchemes"])
            params = op.get("parameters", [])
            assert {p["in"] for p in params} <= PARAMETER_IN
            in_path = {p["name"] for p in params if p["in"] == "path"}
            assert in_path == templated, (method, path)
            assert all(p["required"] for p in params if p["in"] == "path")
            assert op["responses"], (method, path)
            for status, response in op["responses"].items():
                assert re.fullmatch(r"[1-5][0-9][0-9]", status), (method, path, status)
                assert response["description"]
                assert "X-Request-ID" in response["headers"], (method, path, status)
                if int(status) >= 400:
                    assert response["x-error-codes"], (method, path, status)


def test_the_document_passes_the_openapi_3_1_validator() -> None:
    validator = pytest.importorskip("openapi_spec_validator")  # comes with moto[server]
    validator.OpenAPIV31SpecValidator(openapi.document()).validate()


def _route_operations(tmp_path: Path) -> set[tuple[str, str]]:
    """Every (method, path) the app routes, optional ones switched on."""
    settings = make_settings(
        tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", telemetry={"prometheus": True}
    )
    operations = set()
    for route in create_app(settings).routes:
        assert isinstance(route, Route)
        if route.path.startswith(PROTOCOL_PREFIXES):
            continue
        for method in route.methods or ():
            if method != "HEAD":
                operations.add((method.lower(), _without_convertors(route.path)))
    assert {
        (m.lower(), _without_convertors(r.path))
        for r in ROUTES
        for m in r.methods or ()
        if m != "HEAD" and not r.path.startswith(PROTOCOL_PREFIXES)
    } <= operations
    return operations


#: tus 1.0 and Uppy's S3 endpoints follow specifications of their own (tus.io, Uppy's plugin),
#: which OpenAPI cannot state (HEAD-only answers, status 460): docs/clients.md documents them.
PROTOCOL_PREFIXES = ("/v1/tus/", "/v1/uppy/")


def _without_convertors(path: str) -> str:
    """Starlette's ``{number:int}`` is OpenAPI's ``{number}``."""
    return re.sub(r"{(\w+):\w+}", r"{\1}", path)


def test_every_route_is_in_the_document(tmp_path: Path) -> None:
    paths = openapi.document()["paths"]
    documented = {(method, path) for path, item in paths.items() for method in item}
    assert documented == _route_operations(tmp_path)


async def test_docs_are_served_and_show_every_endpoint(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}")
    async with live_host(settings, worker=False) as (url, app):
        _, token = await app.state.flow.create_token(name="d", role=Role.READER, projects=["a"])
        async with httpx.AsyncClient(base_url=url) as client:
            for path in ("/openapi.json", "/docs"):
                assert (await client.get(path)).status_code == 401
            auth = {"Authorization": f"Bearer {token}"}
            served = await client.get("/openapi.json", headers=auth)
            page = await client.get("/docs", headers=auth)
    assert served.status_code == 200
    assert served.json() == openapi.document()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "<script" not in page.text and "://" not in page.text  # nothing fetched elsewhere
    for method, path in _route_operations(tmp_path):
        assert f"{method.upper()}</span> {path}</h3>" in page.text, (method, path)
    for name in openapi.document()["components"]["schemas"]:
        assert f'id="schema-{name}"' in page.text


def _codes(op: dict, status: str) -> list[str]:
    return op["responses"].get(status, {}).get("x-error-codes", [])


def test_the_document_lists_the_host_s_limits_where_they_apply() -> None:
    """408, 429, 431 and 507 answers the host gives (server.py, limits.py, the upload caps,
    storage_local's reserve) on the operations that can get them."""
    paths = openapi.document()["paths"]
    for path, item in paths.items():
        for method, op in item.items():
            where = (method, path)
            # before any route: the request head is capped and timed (httptools)
            assert _codes(op, "431") == ["headers_too_large"], where
            expected = ["header_timeout", *(["body_timeout"] if "requestBody" in op else [])]
            assert _codes(op, "408") == expected, where
    upload = paths["/v1/projects/{project}/files"]["post"]
    part = paths["/v1/uploads/{upload_id}/parts/{number}"]["put"]
    for op in (upload, part):
        assert "too_many_uploads_for_token" in _codes(op, "429")
        assert "too_many_auth_failures" in _codes(op, "429")
        assert _codes(op, "507") == ["insufficient_storage"]
    opened = paths["/v1/projects/{project}/uploads"]["post"]
    assert "upload_quota_exceeded" in _codes(opened, "429")
    assert "body_timeout" in _codes(opened, "408")
    writes = {
        ("post", "/v1/projects/{project}/files"),
        ("put", "/v1/uploads/{upload_id}/parts/{number}"),
    }
    for path, item in paths.items():
        for method, op in item.items():
            if (method, path) not in writes:
                assert "507" not in op["responses"], (method, path)
