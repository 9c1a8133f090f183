"""Processor isolation with real child processes and real limits.

Every failure case is followed by a succeeding run, to show that the parent lives on.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import psutil
import pydantic
import pytest

from aecflow.isolation import MAX_ERROR_CHARS, Limits, ProcessorSpec, RunReport, run_isolated
from aecflow.processing import Outcome, ProcessingContext
from aecflow.registry import ProcessorRegistry

from .isolation_processors import (
    Buggy,
    Exits,
    Hog,
    LeavesGrandchild,
    NativeOutOfMemory,
    NoConfig,
    Picky,
    PickyButTells,
    PidFileConfig,
    QuotesItsInput,
    SecretConfig,
    SecretEcho,
    Segfault,
    Sleeper,
    Spinner,
    Unserialisable,
    WordCount,
)

GENEROUS = Limits(timeout_s=60, memory_mb=None)


def spec_for(factory: object, config: pydantic.BaseModel) -> ProcessorSpec:
    """Go through a real registry, as the core does."""
    registry = ProcessorRegistry()
    registry.add("under-test", factory, config=type(config))  # type: ignore[arg-type]
    registration = registry.get("under-test")
    assert registration is not None
    return ProcessorSpec.from_registration(registration, config)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "model.ifc"
    path.write_text("ISO-10303-21; HEADER; ENDSEC;\n")
    return path


@pytest.fixture
def context(sample: Path) -> ProcessingContext:
    return ProcessingContext(
        file_id="f-1",
        project="demo",
        filename="model.ifc",
        size=sample.stat().st_size,
        metadata={"discipline": "arch"},
    )


async def run(
    factory: object,
    config: pydantic.BaseModel,
    path: Path,
    context: ProcessingContext,
    limits: Limits,
) -> RunReport:
    return await run_isolated(spec_for(factory, config), path, context, limits)


async def assert_still_works(sample: Path, context: ProcessingContext) -> None:
    report = await run(WordCount, NoConfig(), sample, context, GENEROUS)
    assert report.outcome is Outcome.SUCCEEDED, report


def read_pids(pid_file: Path, limit_s: float = 10) -> tuple[int, int, Path]:
    """The (child pid, grandchild pid, child's working directory) a processor recorded."""
    deadline = time.monotonic() + limit_s
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the processor never recorded its pids"
        time.sleep(0.02)
    child, grandchild, cwd = pid_file.read_text().split(" ", 2)
    return int(child), int(grandchild), Path(cwd)


def assert_gone(pid: int, limit_s: float = 10) -> None:
    """Dead: no such process, or a zombie (orphans wait for init, which may never reap them)."""
    deadline = time.monotonic() + limit_s
    while True:
        try:
            status = psutil.Process(pid).status()
        except psutil.NoSuchProcess:
            return
        if status == psutil.STATUS_ZOMBIE:
            return
        assert time.monotonic() < deadline, f"process {pid} is still {status}"
        time.sleep(0.02)


async def test_success_returns_data_from_the_file(sample: Path, context: ProcessingContext):
    report = await run(WordCount, NoConfig(), sample, context, GENEROUS)

    assert report.outcome is Outcome.SUCCEEDED
    assert report.error is None
    assert report.result == {
        "words": 3,
        "first": "ISO-10303-21;",
        "filename": "model.ifc",
        "metadata": {"discipline": "arch"},
    }
    assert report.peak_rss_mb is not None and report.peak_rss_mb > 0
    assert report.duration_s > 0


async def test_secret_config_reaches_the_child_unmasked(sample: Path, context: ProcessingContext):
    config = SecretConfig(token=pydantic.SecretStr("s3cr3t-value"))
    report = await run(SecretEcho, config, sample, context, GENEROUS)

    assert report.outcome is Outcome.SUCCEEDED, report
    assert report.result == {"token": "s3cr3t-value"}


@pytest.mark.parametrize(
    ("factory", "limits", "outcome", "message"),
    [
        pytest.param(
            Picky, GENEROUS, Outcome.INVALID_INPUT, "model.ifc does not start with", id="invalid"
        ),
        pytest.param(
            Hog,
            Limits(timeout_s=60, memory_mb=200),
            Outcome.OUT_OF_MEMORY,
            "exceeded the memory limit of 200 MB (MemoryError",
            id="memory",
        ),
        pytest.param(Segfault, GENEROUS, Outcome.CRASHED, "killed by signal SIGSEGV", id="segv"),
        pytest.param(
            NativeOutOfMemory,
            Limits(timeout_s=60, memory_mb=200),
            Outcome.OUT_OF_MEMORY,
            "exceeded the memory limit of 200 MB (killed by signal SIGABRT)",
            id="native-memory",
        ),
        pytest.param(
            Exits, GENEROUS, Outcome.CRASHED, "exited with code 3: fatal: cannot", id="exit"
        ),
        pytest.param(
            Spinner,
            Limits(timeout_s=60, memory_mb=None, cpu_s=1),
            Outcome.TIMED_OUT,
            "exceeded the CPU time limit of 1 s",
            id="cpu",
        ),
        pytest.param(
            Buggy, GENEROUS, Outcome.CRASHED, "ZeroDivisionError: division by zero", id="raises"
        ),
        pytest.param(
            Unserialisable,
            GENEROUS,
            Outcome.CRASHED,
            "the processor's result is not JSON-serialisable: TypeError: Object of type set",
            id="not-json",
        ),
    ],
)
async def test_failures_are_classified_and_the_parent_lives_on(
    sample: Path,
    context: ProcessingContext,
    factory: object,
    limits: Limits,
    outcome: Outcome,
    message: str,
):
    report = await run(factory, NoConfig(), sample, context, limits)

    assert report.outcome is outcome, report
    assert report.error is not None and message in report.error, report
    assert report.result is None
    await assert_still_works(sample, context)


async def test_a_refusal_keeps_what_could_be_read(sample: Path, context: ProcessingContext):
    report = await run(PickyButTells, NoConfig(), sample, context, GENEROUS)
    assert (report.outcome, report.error) == (Outcome.INVALID_INPUT, "unsupported variant")
    assert report.result == {"first": "ISO-10303-21;", "warnings": ["read the first word only"]}
    # A result JSON cannot hold costs the result, not the refusal.
    bad = dataclasses.replace(context, metadata={"bad": "1"})
    report = await run(PickyButTells, NoConfig(), sample, bad, GENEROUS)
    assert (report.outcome, report.error, report.result) == (
        Outcome.INVALID_INPUT,
        "unsupported variant",
        None,
    )


async def test_a_huge_error_is_cut_to_a_few_kilobytes_and_says_so(
    sample: Path, context: ProcessingContext
):
    """The error lands in the record, list pages and event payloads: 900 KB of it must not."""
    report = await run(QuotesItsInput, NoConfig(), sample, context, GENEROUS)
    assert report.outcome is Outcome.INVALID_INPUT
    assert report.error is not None and len(report.error) == MAX_ERROR_CHARS
    assert report.error.startswith("unsupported schema XXX")
    kept = report.error.index(" [... cut: ")
    assert report.error.endswith(f" [... cut: {900_019 - kept:,} more characters]")


async def test_an_exception_leaves_its_traceback_in_the_log(
    sample: Path, context: ProcessingContext
):
    report = await run(Buggy, NoConfig(), sample, context, GENEROUS)

    assert "Traceback" in report.log_tail
    assert "ZeroDivisionError" in report.log_tail


async def test_wall_clock_timeout_kills_the_whole_process_group(
    sample: Path, context: ProcessingContext, tmp_path: Path
):
    pid_file = tmp_path / "pids"
    # 3 s, not 1: on a loaded machine the child may need more than a second just to start
    # and record its pids, and then this test would not see the group it must kill.
    limits = Limits(timeout_s=3, memory_mb=None)
    report = await run(Sleeper, PidFileConfig(pid_file=str(pid_file)), sample, context, limits)

    assert report.outcome is Outcome.TIMED_OUT, report
    assert report.error == "exceeded the wall-clock limit of 3 s"
    child, grandchild, workdir = read_pids(pid_file)
    assert_gone(child)
    assert_gone(grandchild)
    assert not workdir.exists()
    await assert_still_works(sample, context)


async def test_a_successful_run_leaves_no_process_behind(
    sample: Path, context: ProcessingContext, tmp_path: Path
):
    pid_file = tmp_path / "pids"
    config = PidFileConfig(pid_file=str(pid_file))
    report = await run(LeavesGrandchild, config, sample, context, GENEROUS)

    assert report.outcome is Outcome.SUCCEEDED, report
    _, grandchild, workdir = read_pids(pid_file)
    assert_gone(grandchild)
    assert not workdir.exists()


async def test_cancelling_the_run_kills_the_child(
    sample: Path, context: ProcessingContext, tmp_path: Path
):
    pid_file = tmp_path / "pids"
    config = PidFileConfig(pid_file=str(pid_file))
    task = asyncio.create_task(run(Sleeper, config, sample, context, GENEROUS))
    child, grandchild, workdir = await asyncio.to_thread(read_pids, pid_file)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert_gone(child)
    assert_gone(grandchild)
    assert not workdir.exists()
    await assert_still_works(sample, context)


def module_level_factory(config: NoConfig) -> WordCount:
    return WordCount(config)


def test_spec_records_import_paths():
    spec = spec_for(module_level_factory, NoConfig())

    assert spec.factory == f"{__name__}:module_level_factory"
    assert spec.config_model == f"{NoConfig.__module__}:NoConfig"
    assert spec.config_model.endswith("isolation_processors:NoConfig")


@pytest.mark.parametrize(
    "factory",
    [pytest.param(lambda config: WordCount(config), id="lambda"), pytest.param(None, id="local")],
)
def test_spec_refuses_factories_a_child_cannot_import(factory: object):
    if factory is None:

        def local_factory(config: NoConfig) -> WordCount:
            return WordCount(config)

        factory = local_factory

    with pytest.raises(ValueError, match="cannot be imported by name") as caught:
        spec_for(factory, NoConfig())
    assert "processor 'under-test'" in str(caught.value)


def test_spec_refuses_a_config_of_the_wrong_model():
    registry = ProcessorRegistry()
    registry.add("under-test", WordCount, config=NoConfig)
    registration = registry.get("under-test")
    assert registration is not None

    with pytest.raises(TypeError, match="not a NoConfig"):
        ProcessorSpec.from_registration(registration, PidFileConfig(pid_file="x"))


def test_cpu_limit_defaults_to_the_timeout():
    assert Limits(timeout_s=30, memory_mb=None).cpu_s == 30
    assert Limits(timeout_s=30, memory_mb=None, cpu_s=2.5).cpu_rlimit == (3, 8)
    with pytest.raises(ValueError):
        Limits(timeout_s=0, memory_mb=None)
