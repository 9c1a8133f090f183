"""The web page over plain HTTP: ``/`` and its assets, the CSP, and ``GET /v1/me``."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import httpx
import pytest

from aecflow.actor import Role
from aecflow.host import webpage

from .conftest import ROOT, make_settings
from .live import live_host

WEB = ROOT / "core" / "src" / "aecflow" / "host" / "web"


async def test_the_page_and_its_assets_are_served_with_a_strict_csp(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(
        tmp_path, database_url, web={"connect_src": ["https://models.s3.example.com"]}
    )
    async with live_host(settings, worker=False) as host, httpx.AsyncClient(base_url=host.url) as c:
        page = await c.get("/")
        assets = {name: await c.get(f"/web/{name}") for name in webpage.ASSETS}
        missing = await c.get("/web/secrets.txt")
        traversal = await c.get("/web/..%2F__init__.py")
        again = await c.get("/", headers={"If-None-Match": page.headers["etag"]})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    csp = dict(
        part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";")
    )
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self' https://models.s3.example.com"
    assert csp["frame-ancestors"] == "'none'"
    assert page.headers["x-frame-options"] == "DENY"
    # Nothing is fetched from elsewhere: every script and style sheet is the host's own.
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith(("/web/", "#", "data:")) for ref in refs), refs
    assert "://" not in page.text
    for name, answer in assets.items():
        assert answer.status_code == 200, name
        assert answer.content == (WEB / name).read_bytes()
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert assets["app.js"].headers["content-type"].startswith("text/javascript")
    assert assets["app.css"].headers["content-type"].startswith("text/css")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert traversal.status_code == 404
    assert again.status_code == 304


async def test_me_names_the_token_its_role_and_projects(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url)
    async with live_host(settings, worker=False) as host:
        _, reader = await host.flow.create_token(
            name="alice", role=Role.READER, projects=["b", "a"]
        )
        _, admin = await host.flow.create_token(name="ops", role=Role.ADMIN, projects=["*"])
        async with httpx.AsyncClient(base_url=host.url) as c:
            answers = [
                await c.get("/v1/me", headers={"Authorization": f"Bearer {t}"})
                for t in (reader, admin, "aecf_wrong")
            ]
            anonymous = await c.get("/v1/me")
    alice, ops, wrong = answers
    assert alice.status_code == 200
    body = alice.json()
    assert body["actor"].startswith("token:")
    assert {k: body[k] for k in ("token_name", "role", "projects", "auth_mode")} == {
        "token_name": "alice",
        "role": "reader",
        "projects": ["a", "b"],
        "auth_mode": "token",
    }
    assert (ops.json()["role"], ops.json()["projects"]) == ("admin", ["*"])
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_token"
    assert anonymous.status_code == 401


async def test_me_without_authentication_is_an_unrestricted_admin(
    tmp_path: Path, database_url: str
) -> None:
    settings = make_settings(tmp_path, database_url, auth={"mode": "none"})
    async with live_host(settings, worker=False) as host, httpx.AsyncClient(base_url=host.url) as c:
        body = (await c.get("/v1/me")).json()
    assert body == {
        "actor": "anonymous-local",
        "token_name": None,
        "role": "admin",
        "projects": ["*"],
        "auth_mode": "none",
    }


def test_connect_src_refuses_what_would_break_the_policy(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CSP source"):
        make_settings(
            tmp_path, "sqlite+aiosqlite://", web={"connect_src": ["https://a; script-src *"]}
        )
    parsed = make_settings(
        tmp_path, "sqlite+aiosqlite://", web={"connect_src": "https://a, https://b"}
    )
    assert parsed.web.connect_src == ["https://a", "https://b"]


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_the_committed_uppy_bundle_is_what_make_web_builds(tmp_path: Path) -> None:
    """The bundle is vendored; rebuilding it from package-lock.json gives the same bytes."""
    if os.environ.get("AECFLOW_SKIP_WEB_BUILD") == "1":
        pytest.skip("AECFLOW_SKIP_WEB_BUILD=1")
    bundle = WEB / "uppy.js"
    before = hashlib.sha256(bundle.read_bytes()).hexdigest()
    subprocess.run(["make", "web"], cwd=ROOT, check=True, capture_output=True, timeout=300)
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == before


def test_the_core_wheel_ships_the_page(tmp_path: Path) -> None:
    """The page is package data: an installed aecflow serves it without the source tree."""
    from .test_packaging import find_uv, run

    uv = find_uv()
    if uv is None:
        pytest.skip("uv is not installed (make test installs it)")
    built = run(uv, "build", "--wheel", "--quiet", "--out-dir", tmp_path, ROOT / "core")
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in ("index.html", *webpage.ASSETS):
        assert f"aecflow/host/web/{name}" in names
    assert not any("node_modules" in name for name in names)
