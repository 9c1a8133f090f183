"""The command line as a script sees it: output, JSON and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    [],
    ["ingest"],
    ["files"],
    ["files", "list"],
    ["files", "show"],
    ["plugins"],
    ["db"],
    ["db", "upgrade"],
    ["worker"],
    ["events"],
    ["events", "dead"],
    ["events", "redeliver"],
    ["upload"],
    ["status"],
]


def aecflow(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aecflow", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "aecflow")
def test_every_command_has_help(tmp_path: Path, command: list[str]) -> None:
    result = aecflow(tmp_path, *command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_ingest_list_show_on_the_embedded_defaults(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("one two\nthree\n")
    result = aecflow(
        tmp_path, "ingest", "notes.txt", "--project", "demo", "--meta", "phase=design", "--json"
    )
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["status"] == "processed"
    assert record["processing"]["result"] == {"lines": 2, "words": 3, "characters": 14}
    assert record["metadata"] == {"phase": "design"}
    assert (tmp_path / "aecflow-data" / "aecflow.db").exists()

    listed = json.loads(aecflow(tmp_path, "files", "list", "-p", "demo", "--json").stdout)
    assert [item["id"] for item in listed["items"]] == [record["id"]]
    assert listed["next_cursor"] is None
    shown = json.loads(aecflow(tmp_path, "files", "show", record["id"], "--json").stdout)
    assert shown == record
    human = aecflow(tmp_path, "files", "show", record["id"]).stdout
    assert "succeeded" in human and "phase=design" in human

    no_wait = aecflow(tmp_path, "ingest", "notes.txt", "-p", "demo", "--no-wait", "--json")
    assert json.loads(no_wait.stdout)["status"] == "stored"


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["ingest", "notes.txt", "--project", "Bad Name"], 2, "invalid project name"),
        (["ingest", "missing.txt", "--project", "demo"], 2, "does not exist"),
        (["ingest", "notes.txt", "--project", "demo", "--meta", "novalue"], 2, "key=value"),
        (["files", "show", "01a1ffc4-0000-7000-8000-000000000000"], 3, "does not exist"),
        (["files", "list"], 2, "--project"),
        (["events", "redeliver"], 2, "--all"),
    ],
)
def test_errors_have_exit_codes_and_messages(
    tmp_path: Path, args: list[str], code: int, needle: str
) -> None:
    (tmp_path / "notes.txt").write_text("x\n")
    result = aecflow(tmp_path, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_configuration_errors_exit_78(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[processing]\ntimeout_s = 'soon'\n")
    result = aecflow(tmp_path, "--config", "bad.toml", "files", "list", "-p", "demo")
    assert result.returncode == 78
    assert "processing.timeout_s" in result.stderr


def test_db_upgrade_and_dead_letters(tmp_path: Path) -> None:
    result = aecflow(tmp_path, "db", "upgrade")
    from aecflow.db.engine import head_revision

    assert result.returncode == 0 and f"revision {head_revision()}" in result.stdout
    dead = json.loads(aecflow(tmp_path, "events", "dead", "--json").stdout)
    assert dead == {"items": [], "next_cursor": None}
    result = aecflow(tmp_path, "events", "redeliver", "--all")
    assert result.returncode == 0 and "0 event(s)" in result.stdout


def start_serving(cwd: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    """``aecflow serve --port 0``; returns the process, its URL and what it printed first."""
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "aecflow", "serve", "--port", "0"],
        cwd=cwd,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    lines: list[str] = []
    while not lines or "listening on" not in lines[-1]:
        assert time.monotonic() < deadline and process.poll() is None, lines
        lines.append(process.stderr.readline())
    return process, lines[-1].rsplit(" ", 1)[1].strip(), lines


def stop_serving(process: subprocess.Popen[str]) -> None:
    import signal

    process.send_signal(signal.SIGTERM)
    process.wait(30)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see why it ended
    assert process.returncode in (0, -signal.SIGTERM)


def test_serve_prints_where_it_listens_and_an_admin_token_once(tmp_path: Path) -> None:
    import httpx

    process, url, lines = start_serving(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:")
        [token] = [line.split("=", 1)[1].strip() for line in lines if "AECFLOW_TOKEN=" in line]
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        refused = httpx.post(f"{url}/v1/projects/demo/files?filename=a.txt", content=b"a b\n")
        assert refused.status_code == 401
        uploaded = httpx.post(
            f"{url}/v1/projects/demo/files?filename=a.txt",
            content=b"a b\n",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert uploaded.status_code == 201
    finally:
        stop_serving(process)
    process, url, lines = start_serving(tmp_path)
    try:
        assert not any("AECFLOW_TOKEN" in line for line in lines), "shown once only"
    finally:
        stop_serving(process)


def test_serve_refuses_no_auth_on_a_public_address(tmp_path: Path) -> None:
    result = aecflow(
        tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", env={"AECFLOW_AUTH__MODE": "none"}
    )
    assert result.returncode == 78
    assert "loopback" in result.stderr


def test_plugins_load_for_their_own_commands_only(tmp_path: Path, fake_dists) -> None:
    """A core command starts without importing plugins (its flow loads them if it needs
    them); a plugin's command is found."""
    marker = tmp_path / "imported"
    fake_dists.add(
        "aecflow-hello",
        "hello",
        "aecflow_hello",
        f"""
        import pathlib

        import click

        import aecflow

        pathlib.Path({str(marker)!r}).touch()


        @aecflow.hookimpl
        def register_commands(cli):
            @cli.command()
            def hello():
                click.echo("hello from a plugin")
        """,
    )
    env = {"PYTHONPATH": str(fake_dists.root), "AECFLOW_LOAD_PLUGINS": "hello"}
    core = aecflow(tmp_path, "--log-level", "INFO", "status", "--help", env=env)
    assert core.returncode == 0, core.stderr
    assert not marker.exists()
    plugin = aecflow(tmp_path, "--log-level", "INFO", "hello", env=env)
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.strip() == "hello from a plugin"
    assert marker.exists()


def test_files_show_prints_the_warnings_of_a_partial_read(tmp_path: Path) -> None:
    from .conftest import SAMPLES

    broken = SAMPLES / "edge" / "errorfile.ifc"
    if not broken.exists():
        pytest.skip(f"no samples at {SAMPLES}")
    result = aecflow(tmp_path, "ingest", str(broken), "--project", "demo", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["processing"]["outcome"] == "succeeded"
    (warning,) = record["processing"]["warnings"]
    assert "read only 7 of them" in warning
    human = aecflow(tmp_path, "files", "show", record["id"]).stdout
    assert f"warning       {warning}" in human


def test_config_is_accepted_after_the_command(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[processing]\ntimeout_s = 'soon'\n")
    for args in (
        ["files", "list", "-p", "demo", "--config", "bad.toml"],
        ["files", "list", "-c", "bad.toml", "-p", "demo"],
        ["serve", "--config=bad.toml"],
    ):
        result = aecflow(tmp_path, *args)
        assert result.returncode == 78, (args, result.stderr)
        assert "processing.timeout_s" in result.stderr


def test_tokens_revoke_by_unique_name(tmp_path: Path) -> None:
    def create(name: str) -> None:
        result = aecflow(
            tmp_path, "tokens", "create", "--name", name, "--role", "admin", "--all-projects"
        )
        assert result.returncode == 0, result.stderr

    create("ci")
    create("twin")
    create("twin")
    revoked = aecflow(tmp_path, "tokens", "revoke", "ci", "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout)["revoked_at"]
    ambiguous = aecflow(tmp_path, "tokens", "revoke", "twin")
    assert ambiguous.returncode == 4 and "revoke one by its id" in ambiguous.stderr
    unknown = aecflow(tmp_path, "tokens", "revoke", "nobody")
    assert unknown.returncode == 3 and "nobody" in unknown.stderr
    listed = json.loads(aecflow(tmp_path, "tokens", "list", "--json").stdout)["items"]
    assert {i["name"]: bool(i["revoked_at"]) for i in listed if i["name"] == "ci"} == {"ci": True}
    assert not any(i["revoked_at"] for i in listed if i["name"] == "twin")
