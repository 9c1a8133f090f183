"""Access control and the audit log over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from aecflow.actor import Role
from aecflow.ids import uuid7
from aecflow.jobs.worker import Worker
from aecflow.store.schema import api_tokens, audit_log, outbox
from aecflow.streams import aiter_bytes

from . import engine_plugin
from .conftest import make_settings
from .live import live_host

PLUGINS = [("engine_plugin", engine_plugin)]

# (method, path, role needed, scoped to the file's project)
ENDPOINTS = [
    ("GET", "/ready", Role.READER, False),
    ("GET", "/v1/projects/a/files", Role.READER, True),
    ("POST", "/v1/projects/a/files?filename=new.bin", Role.WRITER, True),
    ("GET", "/v1/files/{id}", Role.READER, True),
    ("GET", "/v1/files/{id}/content", Role.READER, True),
    ("GET", "/v1/files/{id}/download", Role.READER, True),
    ("POST", "/v1/files/{id}/reprocess", Role.WRITER, True),
    ("POST", "/v1/files/{id}/reprocess?step=t-count", Role.WRITER, True),
    ("GET", "/v1/files/{id}/artifacts", Role.READER, True),
    ("GET", "/v1/projects/a/pipeline", Role.READER, True),
    ("PUT", "/v1/projects/a/pipeline", Role.ADMIN, True),
    ("DELETE", "/v1/projects/a/pipeline", Role.ADMIN, True),
    ("DELETE", "/v1/files/{id}", Role.WRITER, True),
    ("POST", "/v1/files/{id}/restore", Role.WRITER, True),
    ("DELETE", "/v1/files/{id}?purge=true", Role.ADMIN, True),
    ("GET", "/v1/plugins", Role.ADMIN, False),
    ("GET", "/v1/audit", Role.ADMIN, False),
    ("GET", "/v1/events/dead", Role.ADMIN, False),
]
TOKENS = {  # name: (role, projects)
    "admin": (Role.ADMIN, ["*"]),
    "writer-a": (Role.WRITER, ["a"]),
    "reader-a": (Role.READER, ["a"]),
    "admin-b": (Role.ADMIN, ["b"]),
}


def access_settings(tmp_path: Path, database_url: str, **overrides: object):
    return make_settings(
        tmp_path,
        database_url,
        notifiers=[{"backend": "log"}],
        worker={"embedded": False},
        **overrides,
    )


def expected_status(token: str | None, role: Role, scoped: bool) -> set[int]:
    if token is None:
        return {401}
    held, projects = TOKENS[token]
    if scoped and "*" not in projects and "a" not in projects:
        return {404}  # another project's files do not exist for this token
    if held < role:
        return {403}
    return {200, 201, 202, 307}


@pytest.mark.parametrize("token_name", [None, *TOKENS])
async def test_every_role_against_every_endpoint(
    tmp_path: Path, database_url: str, token_name: str | None
) -> None:
    async with live_host(access_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        issued = {
            name: (await flow.create_token(name=name, role=role, projects=projects))[1]
            for name, (role, projects) in TOKENS.items()
        }
        headers = {"Authorization": f"Bearer {issued[token_name]}"} if token_name else {}
        async with httpx.AsyncClient(base_url=url, headers=headers) as client:
            for method, path, role, scoped in ENDPOINTS:
                record = await flow.ingest("a", "plan.ok", aiter_bytes(b"bytes"))
                if path.endswith("/restore"):
                    await flow.delete(record.id)
                response = await client.request(
                    method,
                    path.format(id=record.id),
                    # a body that is not JSON: the role is checked before any body is read
                    content=b"new bytes"
                    if method == "POST"
                    else b'{"pipeline": ["t-count"]}'
                    if method == "PUT" and token_name == "admin"
                    else b"not json"
                    if method == "PUT"
                    else None,
                )
                wanted = expected_status(token_name, role, scoped)
                assert response.status_code in wanted, (
                    token_name,
                    method,
                    path,
                    response.status_code,
                    response.text,
                )
                if response.status_code >= 400:
                    assert response.json()["error"]["code"]


async def test_revoked_and_expired_tokens_are_refused(tmp_path: Path, database_url: str) -> None:
    async with live_host(access_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        revoked_info, revoked = await flow.create_token(name="r", role=Role.ADMIN, projects=["*"])
        expired_info, expired = await flow.create_token(
            name="e", role=Role.ADMIN, projects=["*"], expires_in=dt.timedelta(days=1)
        )
        async with httpx.AsyncClient(base_url=url) as client:
            ok = await client.get("/ready", headers={"Authorization": f"Bearer {revoked}"})
            assert ok.status_code == 200
            await flow.revoke_token(revoked_info.id)
            async with flow.engine.begin() as conn:
                await conn.execute(
                    sa.update(api_tokens)
                    .where(api_tokens.c.id == expired_info.id)
                    .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
                )
            for token, code in (
                (revoked, "revoked_token"),
                (expired, "expired_token"),
                ("aecf_" + "x" * 43, "invalid_token"),
                ("nope", "invalid_token"),
            ):
                response = await client.get("/ready", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 401
                assert response.json()["error"]["code"] == code
                assert response.headers["www-authenticate"].startswith("Bearer")


async def test_failed_authentication_is_rate_limited_and_audited(
    tmp_path: Path, database_url: str
) -> None:
    settings = access_settings(tmp_path, database_url, auth={"failures_per_minute": 3})
    async with (
        live_host(settings, plugins=PLUGINS) as (url, app),
        httpx.AsyncClient(base_url=url, headers={"User-Agent": "pytest-probe"}) as client,
    ):
        codes = [
            (await client.get("/ready", headers={"Authorization": "Bearer wrong"})).status_code
            for _ in range(5)
        ]
        assert codes == [401, 401, 401, 429, 429]
        limited = await client.get("/ready")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert (await client.get("/health")).status_code == 200
        page = await app.state.flow.audit.search(action="auth.failed")
    assert len(page["items"]) == 3
    row = page["items"][0]
    assert (row["outcome"], row["error_code"], row["actor"]) == (
        "denied",
        "invalid_token",
        "anonymous",
    )
    assert row["source_ip"] == "127.0.0.1" and row["user_agent"] == "pytest-probe"
    assert row["request_id"]


async def test_audit_rows_for_each_action_and_no_secret_anywhere(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with live_host(access_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        info, token = await flow.create_token(name="ops", role=Role.ADMIN, projects=["*"])
        actor = f"token:{info.id}"
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-1"}
        ) as client:
            created = (
                await client.post("/v1/projects/a/files?filename=m.ok", content=b"one\ntwo\n")
            ).json()
            failed = await client.post("/v1/projects/a/files?filename=empty.ok", content=b"")
            assert failed.status_code == 400
            file_id = created["id"]
            await Worker(flow.runtime).run_until_idle()
            from aecflow.outbox.dispatcher import Dispatcher

            await Dispatcher(flow.runtime).run_until_idle()
            await client.get("/v1/projects/a/files")
            await client.get(f"/v1/files/{file_id}")
            content = await client.get(f"/v1/files/{file_id}/content")
            await client.get(f"/v1/files/{file_id}/download")
            await client.delete(f"/v1/files/{file_id}")
            await client.post(f"/v1/files/{file_id}/restore")
            await client.post(f"/v1/files/{file_id}/reprocess")
            await client.delete(f"/v1/files/{file_id}", params={"purge": "true"})
        async with flow.engine.connect() as conn:
            rows = [
                dict(r)
                for r in (
                    await conn.execute(sa.select(audit_log).order_by(audit_log.c.id))
                ).mappings()
            ]
            token_hash = await conn.scalar(sa.select(api_tokens.c.token_hash))
    by_action: dict[str, list[dict]] = {}
    for row in rows:
        by_action.setdefault(row["action"], []).append(row)
    for action in (
        "token.create",
        "file.upload",
        "processing.succeeded",
        "event.delivered",
        "file.list",
        "file.read",
        "file.download",
        "file.delete",
        "file.restore",
        "file.reprocess",
        "file.purge",
    ):
        assert action in by_action, (action, sorted(by_action))
    ok_upload, bad_upload = by_action["file.upload"]
    assert (ok_upload["actor"], ok_upload["outcome"], ok_upload["file_id"]) == (
        actor,
        "ok",
        file_id,
    )
    assert ok_upload["bytes_in"] == 8 and ok_upload["request_id"] == "req-1"
    assert ok_upload["read_only"] is False and ok_upload["source_ip"] == "127.0.0.1"
    assert ok_upload["storage_key"] == f"a/{file_id}"
    assert (bad_upload["outcome"], bad_upload["error_code"]) == ("error", "empty_file")
    assert by_action["processing.succeeded"][0]["actor"] == "system"
    download = next(r for r in by_action["file.download"] if r["details"]["via"] == "content")
    assert download["bytes_out"] == len(content.content) and download["read_only"] is True
    assert by_action["file.purge"][0]["outcome"] == "ok"
    every_line = "\n".join(r.getMessage() for r in caplog.records)
    info_lines = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    audit_dump = json.dumps(rows, default=str)
    assert token not in audit_dump and token not in every_line
    assert token_hash not in audit_dump and token_hash not in info_lines
    assert token[5:20] not in audit_dump + every_line


async def test_hash_chain_detects_tampering(tmp_path: Path, database_url: str) -> None:
    settings = access_settings(tmp_path, database_url, audit={"hash_chain": True})
    async with live_host(settings, plugins=PLUGINS) as (_, app):
        flow = app.state.flow
        for index in range(5):
            await flow.ingest("a", f"f{index}.bin", aiter_bytes(b"x"))
        assert await flow.audit.verify() == {"ok": True, "checked": 5, "broken_at": None}
        async with flow.engine.begin() as conn:
            victim = await conn.scalar(
                sa.select(audit_log.c.id).order_by(audit_log.c.id).offset(2).limit(1)
            )
            await conn.execute(
                sa.update(audit_log).where(audit_log.c.id == victim).values(actor="someone-else")
            )
        result = await flow.audit.verify()
    assert result == {"ok": False, "checked": 2, "broken_at": victim}


async def test_scoped_admin_sees_and_redelivers_only_its_projects(
    tmp_path: Path, database_url: str
) -> None:
    async with live_host(access_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        _, admin_a = await flow.create_token(name="admin-a", role=Role.ADMIN, projects=["a"])
        _, admin_all = await flow.create_token(name="admin", role=Role.ADMIN, projects=["*"])
        dead = {}
        now = dt.datetime.now(dt.UTC)
        for project in ("a", "b"):
            record = await flow.ingest(project, f"{project}-secret.bin", aiter_bytes(b"x"))
            dead[project] = uuid7()
            async with flow.engine.begin() as conn:
                await conn.execute(
                    sa.insert(outbox).values(
                        id=dead[project],
                        event_id=uuid7(),
                        destination="log",
                        event_type="file.stored",
                        project=project,
                        file_id=record.id,
                        payload={"filename": f"{project}-secret.bin"},
                        status="dead",
                        attempts=10,
                        available_at=now,
                        created_at=now,
                    )
                )
        async with httpx.AsyncClient(base_url=url) as client:
            as_a = {"Authorization": f"Bearer {admin_a}"}
            rows = (await client.get("/v1/audit?limit=500", headers=as_a)).json()["items"]
            assert rows and {row["project"] for row in rows} == {"a"}
            other = await client.get("/v1/audit?project=b", headers=as_a)
            assert other.status_code == 200 and other.json()["items"] == []
            letters = (await client.get("/v1/events/dead", headers=as_a)).json()["items"]
            assert [letter["id"] for letter in letters] == [dead["a"]]
            refused = await client.post(f"/v1/events/dead/{dead['b']}/redeliver", headers=as_a)
            assert refused.status_code == 404
            assert refused.json()["error"]["code"] == "dead_letter_not_found"
            as_all = {"Authorization": f"Bearer {admin_all}"}
            everything = (await client.get("/v1/audit?limit=500", headers=as_all)).json()
            assert {"a", "b", None} <= {row["project"] for row in everything["items"]}
            letters = (await client.get("/v1/events/dead", headers=as_all)).json()["items"]
            assert {letter["id"] for letter in letters} == set(dead.values())
        async with flow.engine.connect() as conn:
            status = await conn.scalar(sa.select(outbox.c.status).where(outbox.c.id == dead["b"]))
        assert status == "dead"


async def test_signed_url_is_refused_after_delete_and_each_fetch_is_audited(
    tmp_path: Path, database_url: str
) -> None:
    async with live_host(access_settings(tmp_path, database_url), plugins=PLUGINS) as (url, app):
        flow = app.state.flow
        data = b"drawing bytes " * 100
        record = await flow.ingest("a", "plan.bin", aiter_bytes(data))
        signed = await flow.download_url(record.id, host_relative=True)
        assert signed and "signature=" in signed
        async with httpx.AsyncClient(base_url=url) as client:
            served = await client.get(signed, headers={"User-Agent": "fetcher/1"})
            assert served.status_code == 200 and served.content == data
            await flow.delete(record.id)
            refused = await client.get(signed)
            assert refused.status_code == 404
            assert refused.json()["error"]["code"] == "file_deleted"
            await flow.restore(record.id)
            ranged = await client.get(signed, headers={"Range": "bytes=0-9"})
            assert ranged.status_code == 206 and ranged.content == data[:10]
        rows = (await flow.audit.search(action="file.download"))["items"]
        fetches = [
            row
            for row in rows
            if row["details"] == {"via": "signed_url"} and row["storage_key"] == record.storage_key
        ]
        assert [(row["outcome"], row["error_code"], row["bytes_out"]) for row in fetches] == [
            ("ok", None, 10),
            ("error", "file_deleted", None),
            ("ok", None, len(data)),
        ]
        first = fetches[-1]
        assert first["actor"] == "signed-url" and first["user_agent"] == "fetcher/1"
        assert first["project"] == "a" and first["storage_key"] == record.storage_key
        assert first["source_ip"] == "127.0.0.1"
