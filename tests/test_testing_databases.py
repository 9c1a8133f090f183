"""The kit's database fixtures and delivery helpers, as a plugin author meets them: a bare
test directory (pytester) with nothing but ``aecflow.testing``'s pytest plugin."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aecflow.streams import aiter_bytes
from aecflow.testing import (
    all_delivered,
    deliver_until,
    open_test_flow,
    outbox_rows,
    recording_notifier,
)

pytest_plugins = ["pytester"]

PLUGIN_TEST = """
from aecflow.streams import aiter_bytes
from aecflow.testing import flow_settings, open_flow, run_until_settled, recording_notifier


async def test_a_flow_on_each_database(tmp_path, database_url):
    settings = flow_settings(tmp_path, database={"url": database_url})
    async with open_flow(settings) as flow:
        record = await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        await run_until_settled(flow)
        assert recording_notifier(flow).types() == ["file.stored"]
        assert (await flow.get(record.id)).status == "stored"
        assert flow.engine.dialect.name in database_url
"""
UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/postgres"


def run(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_plugin=PLUGIN_TEST)
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    return pytester.runpytest_inprocess("-p", "no:cacheprovider", "-v", "-rs")


def test_database_url_runs_a_test_on_sqlite_and_postgresql(pytester: pytest.Pytester) -> None:
    if os.environ.get("AECFLOW_REQUIRE_POSTGRES") != "1":
        pytest.skip("needs PostgreSQL (AECFLOW_REQUIRE_POSTGRES=1)")
    result = run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*test_a_flow_on_each_database*sqlite*PASSED*"], consecutive=False)


def test_without_a_server_the_postgres_half_is_skipped_loudly(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AECFLOW_TEST_DATABASE_URL", UNREACHABLE)
    monkeypatch.delenv("AECFLOW_REQUIRE_POSTGRES", raising=False)
    result = run(pytester)
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPING POSTGRESQL TESTS: PostgreSQL not reachable at*:1/*"])


def test_required_postgres_that_is_missing_fails(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AECFLOW_TEST_DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("AECFLOW_REQUIRE_POSTGRES", "1")
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*AECFLOW_REQUIRE_POSTGRES=1 but PostgreSQL not reachable*"])


async def test_deliver_until_settles_a_flaky_destination_or_says_what_is_left(
    tmp_path: Path,
) -> None:
    quick = {"backoff_base_s": 0.01, "backoff_max_s": 0.02, "max_attempts": 50}
    flaky = [{"backend": "recording", "fail_times": 2}]
    async with open_test_flow(tmp_path / "a", notifiers=flaky, outbox=quick) as flow:
        record = await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        await deliver_until(flow, all_delivered)
        [row] = await outbox_rows(flow, "recording")
        assert (row["status"], row["attempts"]) == ("delivered", 3)
        assert row["payload"]["file"]["id"] == record.id
        assert recording_notifier(flow).calls == 3

    down = [{"backend": "recording", "fail_times": 10_000}]
    async with open_test_flow(tmp_path / "b", notifiers=down, outbox=quick) as flow:
        await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        with pytest.raises(AssertionError, match=r"not settled within 0\.2s.*told to fail"):
            await deliver_until(flow, all_delivered, timeout_s=0.2)
        assert await outbox_rows(flow, "elsewhere") == []
