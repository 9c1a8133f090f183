"""The command line as a script sees it: output, JSON and exit codes.

Most tests run ``python -m aecflow`` as a real process. Those that only read help, argument
and configuration errors, or a command's printed result and exit code run the same ``main()``
in this process (:func:`aecflow_here`): a subprocess adds nothing there but start-up time.
Whatever depends on the process itself (what it imports, logging set up from scratch, signals,
a server's lifetime, isolated processing) stays a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import SAMPLES

COMMANDS = [
    [],
    ["ingest"],
    ["files"],
    ["files", "list"],
    ["files", "show"],
    ["files", "reprocess"],
    ["plugins"],
    ["plugin"],
    ["plugin", "new"],
    ["db"],
    ["db", "upgrade"],
    ["worker"],
    ["events"],
    ["events", "dead"],
    ["events", "redeliver"],
    ["upload"],
    ["status"],
    ["serve"],
    ["tokens"],
    ["tokens", "create"],
    ["tokens", "list"],
    ["tokens", "revoke"],
    ["audit"],
    ["audit", "verify"],
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


@pytest.fixture
def aecflow_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Like :func:`aecflow`, but ``aecflow.cli.main()`` in this process: the same argv, working
    directory and environment, stdout and stderr captured, ``sys.exit``'s code as the return
    code (0 when ``main`` returns). Log records are not in ``stderr`` (pytest owns logging)."""
    from aecflow.cli import main

    def run(
        cwd: Path, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            patch.chdir(cwd)
            for name, value in (env or {}).items():
                patch.setenv(name, value)
            patch.setattr(sys, "argv", ["aecflow", *args])
            capsys.readouterr()
            code: int = 0
            try:
                main()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            captured = capsys.readouterr()
        return subprocess.CompletedProcess(["aecflow", *args], code, captured.out, captured.err)

    return run


def test_the_real_process_prints_help_and_exits_0(tmp_path: Path) -> None:
    result = aecflow(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "ingest" in result.stdout


def test_a_usage_error_exits_2_from_the_real_process(tmp_path: Path) -> None:
    result = aecflow(tmp_path, "files", "list")
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--project" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "aecflow")
def test_every_command_has_help(
    tmp_path: Path,
    command: list[str],
    aecflow_here: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    result = aecflow_here(tmp_path, *command, "--help")
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
    tmp_path: Path,
    args: list[str],
    code: int,
    needle: str,
    aecflow_here: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    (tmp_path / "notes.txt").write_text("x\n")
    result = aecflow_here(tmp_path, *args)
    assert result.returncode == code, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr


def test_files_reprocess_one_step_and_its_errors(
    tmp_path: Path, aecflow_here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "notes.txt").write_text("one two\n")
    ingested = aecflow_here(tmp_path, "ingest", "notes.txt", "-p", "demo", "--json")
    assert ingested.returncode == 0, ingested.stderr
    record = json.loads(ingested.stdout)
    step = next(iter(record["steps"]))

    again = aecflow_here(tmp_path, "files", "reprocess", record["id"], "--step", step, "--json")
    assert again.returncode == 0, again.stderr
    queued = json.loads(again.stdout)
    assert queued["id"] == record["id"]
    assert queued["steps"][step]["outcome"] != record["steps"][step]["outcome"]

    unknown_step = aecflow_here(tmp_path, "files", "reprocess", record["id"], "--step", "nope")
    assert unknown_step.returncode == 2, (unknown_step.stdout, unknown_step.stderr)
    assert "'nope'" in unknown_step.stderr and "Traceback" not in unknown_step.stderr
    missing = "01a1ffc4-0000-7000-8000-000000000000"
    unknown_file = aecflow_here(tmp_path, "files", "reprocess", missing)
    assert unknown_file.returncode == 3, (unknown_file.stdout, unknown_file.stderr)
    assert "does not exist" in unknown_file.stderr


def test_configuration_errors_exit_78(tmp_path: Path) -> None:
    """A real process: exit code 78 (EX_CONFIG) as a supervisor sees it."""
    (tmp_path / "bad.toml").write_text("[processing]\ntimeout_s = 'soon'\n")
    result = aecflow(tmp_path, "--config", "bad.toml", "files", "list", "-p", "demo")
    assert result.returncode == 78
    assert "processing.timeout_s" in result.stderr


def test_db_upgrade_and_dead_letters(
    tmp_path: Path, aecflow_here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    aecflow = aecflow_here  # printed results and exit codes only
    result = aecflow(tmp_path, "db", "upgrade")
    from aecflow.store.engine import head_revision

    assert result.returncode == 0 and f"revision {head_revision()}" in result.stdout
    dead = json.loads(aecflow(tmp_path, "events", "dead", "--json").stdout)
    assert dead == {"items": [], "next_cursor": None}
    human = aecflow(tmp_path, "events", "dead")
    assert human.returncode == 0 and human.stdout == "" and "no dead letters" in human.stderr
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


def test_ingest_show_and_json_give_the_model_summary(tmp_path: Path) -> None:
    sample = SAMPLES / "AC20-FZK-Haus.ifc"
    result = aecflow(tmp_path, "ingest", str(sample), "-p", "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for expected in (
        "outcome       succeeded",
        "schema        IFC4",
        "model         Projekt-FZK-Haus",
        "storeys       2: Erdgeschoss, Dachgeschoss",
        "materials     11",
    ):
        assert expected in lines, result.stdout
    [elements] = [line for line in lines if line.startswith("elements ")]
    assert elements.split(None, 1)[1].startswith("IfcMember 42, IfcOpeningElement 17,")
    assert elements.endswith("(+5 classes)")
    assert any(line.startswith("entities      ") for line in lines)
    assert any(line.startswith("duration      ") and "attempt 1" in line for line in lines)
    file_id = lines[0].split()[1]
    shown = aecflow(tmp_path, "files", "show", file_id)
    assert shown.stdout == result.stdout
    record = json.loads(aecflow(tmp_path, "files", "show", file_id, "--json").stdout)
    assert record["processing"]["result"]["storeys"] == ["Erdgeschoss", "Dachgeschoss"]
    assert record["processing"]["result"]["element_counts"]["IfcMember"] == 42


def test_the_summary_of_other_processors_and_of_warnings() -> None:
    from aecflow.cli.output import record_lines

    text = {
        "id": "f1",
        "status": "processed",
        "processing": {
            "processor": "textstats",
            "outcome": "succeeded",
            "duration_s": 0.25,
            "attempts": 2,
            "result": {"lines": 2},
        },
    }
    assert record_lines(text) == [
        "id            f1",
        "status        processed",
        "processor     textstats",
        "outcome       succeeded",
        "duration      0.25 s, attempt 2",
    ]
    partial = {
        "processing": {
            "processor": "ifc",
            "outcome": "succeeded",
            "warnings": ["2 quantities were not numbers"],
            "result": {
                "schema": "IFC2X3",
                "element_counts": {},
                "parse": {"warnings": 3, "errors": 1, "partial": True},
                "notes": ["the spatial tree is cut at 500 nodes"],
            },
        }
    }
    lines = record_lines(partial)
    assert "parse         partial read, 1 errors, 3 warnings" in lines
    assert lines[-2:] == [
        "warning       2 quantities were not numbers",
        "warning       the spatial tree is cut at 500 nodes",
    ]
    failed = {"processing": {"outcome": "invalid_input", "error": "not an IFC file"}}
    assert record_lines(failed) == [
        "processor     -",
        "outcome       invalid_input",
        "error         not an IFC file",
    ]


def test_ingest_exits_76_when_its_events_are_dead_lettered(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "hooks.toml").write_text(
        f"""
        [outbox]
        max_attempts = 1

        [[notifiers]]
        backend = "webhook"
        url = "http://127.0.0.1:{port}/hook"
        secret = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]
        """
    )
    (tmp_path / "notes.txt").write_text("one two\n")
    result = aecflow(tmp_path, "-c", "hooks.toml", "ingest", "notes.txt", "-p", "demo", "--json")
    assert result.returncode == 76, result.stderr
    assert json.loads(result.stdout)["processing"]["outcome"] == "succeeded"
    assert "event file.stored to webhook was not delivered after 1 attempt(s)" in result.stderr
    # file.stored, file.step_succeeded (its one step) and file.processed
    assert "3 event(s) dead-lettered; the file is stored" in result.stderr
    dead = json.loads(aecflow(tmp_path, "-c", "hooks.toml", "events", "dead", "--json").stdout)
    assert sorted(item["event_type"] for item in dead["items"]) == [
        "file.processed",
        "file.step_succeeded",
        "file.stored",
    ]

    stored = aecflow(tmp_path, "-c", "hooks.toml", "ingest", "notes.txt", "-p", "demo", "--no-wait")
    assert stored.returncode == 0, stored.stderr


def test_audit_verify_says_when_the_chain_is_off(
    tmp_path: Path, aecflow_here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    aecflow = aecflow_here  # printed results and exit codes only
    (tmp_path / "notes.txt").write_text("one\n")
    off = aecflow(tmp_path, "audit", "verify")
    assert off.returncode == 78 and off.stdout == ""
    assert "hash chain is off ([audit] hash_chain = false)" in off.stderr
    chained = {"AECFLOW_AUDIT__HASH_CHAIN": "true"}
    assert aecflow(tmp_path, "ingest", "notes.txt", "-p", "demo", env=chained).returncode == 0
    on = aecflow(tmp_path, "audit", "verify", env=chained)
    assert on.returncode == 0, on.stderr
    assert on.stdout.startswith("audit chain intact: ") and " 0 rows" not in on.stdout


def test_serve_on_an_address_in_use_exits_69(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = aecflow(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 69, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr


def test_serve_logs_one_line_per_request_and_processed_file(tmp_path: Path) -> None:
    import httpx

    process, url, lines = start_serving(tmp_path)
    try:
        [token] = [line.split("=", 1)[1].strip() for line in lines if "AECFLOW_TOKEN=" in line]
        uploaded = httpx.post(
            f"{url}/v1/projects/demo/files?filename=a.txt",
            content=b"a b\n",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-7"},
        )
        assert uploaded.status_code == 201
        file_id = uploaded.json()["id"]
        while "aecflow.events: file.processed" not in lines[-1]:  # ends when the log says so
            assert process.poll() is None, lines
            lines.append(process.stderr.readline())
    finally:
        stop_serving(process)
    logged = "".join(lines)
    assert 'INFO aecflow.access: 127.0.0.1 "POST /v1/projects/demo/files" 201 ' in logged
    assert logged.count("req-7") == 1
    assert f"INFO aecflow.worker: processed demo/a.txt {file_id} with textstats: succeeded" in (
        logged
    )
    assert f"INFO aecflow.events: file.processed demo/a.txt {file_id} succeeded" in logged
    assert "alembic" not in logged and "Context impl" not in logged


def test_an_explicit_info_level_leaves_out_the_migration_chatter(tmp_path: Path) -> None:
    quiet = aecflow(tmp_path, "--log-level", "INFO", "files", "list", "-p", "demo")
    assert quiet.returncode == 0, quiet.stderr
    assert "alembic" not in quiet.stderr and "Context impl" not in quiet.stderr
    chatty = aecflow(tmp_path, "--log-level", "DEBUG", "files", "list", "-p", "demo")
    assert "alembic" in chatty.stderr


def test_config_is_accepted_after_the_command(
    tmp_path: Path, aecflow_here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    (tmp_path / "bad.toml").write_text("[processing]\ntimeout_s = 'soon'\n")
    for args in (
        ["files", "list", "-p", "demo", "--config", "bad.toml"],
        ["files", "list", "-c", "bad.toml", "-p", "demo"],
        ["serve", "--config=bad.toml"],
    ):
        result = aecflow_here(tmp_path, *args)
        assert result.returncode == 78, (args, result.stderr)
        assert "processing.timeout_s" in result.stderr


def test_tokens_revoke_by_unique_name(
    tmp_path: Path, aecflow_here: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    aecflow = aecflow_here  # printed results and exit codes only: no process behaviour here

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
