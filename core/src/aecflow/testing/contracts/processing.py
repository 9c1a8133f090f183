"""``ProcessorContract``: what the core relies on from every processor, as tests.

Subclass it and provide three fixtures::

    class TestMyProcessor(ProcessorContract):
        @pytest.fixture
        def processor(self) -> Processor:
            return MyProcessor(MyConfig())

        @pytest.fixture
        def accepted_file(self, tmp_path) -> Path:  # a file it accepts and succeeds on
            ...

        @pytest.fixture
        def malformed_file(self, tmp_path) -> Path:  # accepted by name, but unreadable
            ...

Malformed input runs under the core's real isolation (:func:`aecflow.isolation.run_isolated`:
a child process with limits), so a processor that crashes on it fails a test, not the run.
The child rebuilds the processor by import path from ``processor_spec``, derived from the
fixture's class and its ``config`` attribute; override ``processor_spec`` for a factory
function. ``malformed_outcomes`` lists the outcomes accepted for malformed input (by default
``invalid_input`` only; document any other in your README).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pydantic
import pytest

from aecflow.isolation import Limits, ProcessorSpec, run_isolated
from aecflow.processing import (
    Outcome,
    ProcessingContext,
    ProcessingResult,
    Processor,
    ResourceNeeds,
)
from aecflow.registry import EmptyConfig, Registration

#: What ``Artifact.name`` may be (see :class:`aecflow.processing.Artifact`).
ARTIFACT_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
#: A suffix and media type no processor should claim.
UNRELATED_SUFFIX = ".aecflow-contract-unrelated"
UNRELATED_TYPE = "application/x-aecflow-contract-unrelated"
HEAD_BYTES = 4096


def head_of(path: Path) -> bytes:
    """The first bytes the core hands to ``sniff`` and ``accepts``."""
    with path.open("rb") as handle:
        return handle.read(HEAD_BYTES)


def context_for(path: Path, output_dir: Path | None = None) -> ProcessingContext:
    """A context like the worker's for ``path`` (project ``contract``)."""
    return ProcessingContext(
        file_id="0190b2d4-0000-7000-8000-00000000c0de",
        project="contract",
        filename=path.name,
        size=path.stat().st_size,
        output_dir=output_dir,
    )


def spec_for(processor: Processor) -> ProcessorSpec:
    """How the core's child rebuilds ``processor``: its class and its ``config`` attribute."""
    config = getattr(processor, "config", None)
    if not isinstance(config, pydantic.BaseModel):
        config = EmptyConfig()
    registration: Registration[Any] = Registration(
        "processor", processor.name or "contract", type(processor), type(config), "contract"
    )
    return ProcessorSpec.from_registration(registration, config)


class ProcessorContract:
    """Base class of a processor's contract tests (no ``Test`` prefix: collected via
    subclasses)."""

    #: Outcomes accepted for ``malformed_file`` under isolation.
    malformed_outcomes: frozenset[Outcome] = frozenset({Outcome.INVALID_INPUT})
    #: The isolated child's wall-clock limit in these tests.
    timeout_s: float = 120
    #: Its address-space cap: the core's default ``[processing] memory_limit_mb``.
    memory_limit_mb: int | None = 4096

    @pytest.fixture
    def processor(self) -> Processor:
        """The processor under test. Override it."""
        raise NotImplementedError(f"{type(self).__name__} must define a `processor` fixture")

    @pytest.fixture
    def accepted_file(self) -> Path:
        """A file the processor accepts and succeeds on. Override it."""
        raise NotImplementedError(f"{type(self).__name__} must define `accepted_file`")

    @pytest.fixture
    def malformed_file(self) -> Path:
        """A file the processor accepts by name but cannot read. Override it."""
        raise NotImplementedError(f"{type(self).__name__} must define `malformed_file`")

    @pytest.fixture
    def processor_spec(self, processor: Processor) -> ProcessorSpec:
        """How the isolated child rebuilds the processor (see :func:`spec_for`)."""
        return spec_for(processor)

    def limits_for(self, processor: Processor, path: Path) -> Limits:
        """The limits the worker would apply (its defaults, with the processor's own needs)."""
        needs = processor.resources(path.stat().st_size)
        timeout = min(self.timeout_s, needs.timeout_s or self.timeout_s)
        return Limits(timeout_s=timeout, memory_mb=self.memory_limit_mb)

    # -- accept rules ----------------------------------------------------------------------

    def test_declares_what_it_accepts(self, processor: Processor) -> None:
        assert processor.suffixes or processor.media_types, "accepts neither suffixes nor types"
        for suffix in processor.suffixes:
            assert suffix.startswith(".") and suffix == suffix.lower(), f"suffix {suffix!r}"
        for media_type in processor.media_types:
            assert "/" in media_type and media_type == media_type.lower(), media_type
        assert all(isinstance(name, str) and name for name in processor.after)

    def test_accepts_its_file(self, processor: Processor, accepted_file: Path) -> None:
        head = head_of(accepted_file)
        assert processor.sniff(head), "sniff refuses the head of the accepted file"
        assert processor.accepts(accepted_file.name, None, head)

    def test_suffixes_match_in_any_case(self, processor: Processor, accepted_file: Path) -> None:
        suffix = accepted_file.suffix
        if suffix.lower() not in processor.suffixes:
            pytest.skip(f"{accepted_file.name} is accepted by content type, not by suffix")
        head = head_of(accepted_file)
        assert processor.accepts(accepted_file.stem + suffix.upper(), None, head)

    def test_media_types_are_accepted(self, processor: Processor, accepted_file: Path) -> None:
        head = head_of(accepted_file)
        for media_type in processor.media_types:
            assert processor.accepts("upload", media_type, head), media_type
            assert processor.accepts("upload", f"{media_type}; charset=utf-8", head), media_type

    def test_malformed_file_is_accepted_by_name(
        self, processor: Processor, malformed_file: Path
    ) -> None:
        # The fixture's own promise: otherwise the isolation test below proves nothing.
        assert malformed_file.suffix.lower() in processor.suffixes, (
            f"malformed_file {malformed_file.name} must carry one of {processor.suffixes}"
        )

    def test_rejects_unrelated_files(self, processor: Processor, accepted_file: Path) -> None:
        head = head_of(accepted_file)
        assert not processor.accepts(f"notes{UNRELATED_SUFFIX}", None, head)
        assert not processor.accepts(f"notes{UNRELATED_SUFFIX}", UNRELATED_TYPE, head)
        assert not processor.accepts("noname", None, head)

    # -- results ---------------------------------------------------------------------------

    def test_result_is_a_json_object(
        self, processor: Processor, accepted_file: Path, tmp_path: Path
    ) -> None:
        output_dir = tmp_path / "contract-output"
        output_dir.mkdir()

        result = processor.process(accepted_file, context_for(accepted_file, output_dir))

        assert isinstance(result, ProcessingResult), f"process() returned {type(result)}"
        assert isinstance(result.data, dict)
        text = json.dumps(result.data, allow_nan=False)  # what the child writes
        assert json.loads(text) == result.data, "the result changes in a JSON round trip"

    def test_declared_artifacts_exist(
        self, processor: Processor, accepted_file: Path, tmp_path: Path
    ) -> None:
        output_dir = tmp_path / "contract-output"
        output_dir.mkdir()

        result = processor.process(accepted_file, context_for(accepted_file, output_dir))

        names = [artifact.name for artifact in result.artifacts]
        assert len(names) == len(set(names)), f"artifact names repeat: {names}"
        for artifact in result.artifacts:
            assert ARTIFACT_NAME.fullmatch(artifact.name), f"bad artifact name {artifact.name!r}"
            assert "/" in artifact.media_type, artifact.media_type
            assert (output_dir / artifact.name).is_file(), f"{artifact.name} was not written"

    def test_no_artifacts_without_an_output_dir(
        self, processor: Processor, accepted_file: Path
    ) -> None:
        result = processor.process(accepted_file, context_for(accepted_file, None))

        assert result.artifacts == (), "artifacts declared though output_dir is None"

    def test_resources_are_resource_needs(self, processor: Processor) -> None:
        for size in (0, 1, 10 * 1024 * 1024, 10 * 1024**3):
            needs = processor.resources(size)
            assert isinstance(needs, ResourceNeeds), f"resources({size}) gave {needs!r}"
            assert needs.memory_mb is None or needs.memory_mb > 0
            assert needs.timeout_s is None or needs.timeout_s > 0

    # -- under the core's isolation ----------------------------------------------------------

    @pytest.mark.asyncio
    async def test_accepted_file_succeeds_in_isolation(
        self, processor: Processor, processor_spec: ProcessorSpec, accepted_file: Path
    ) -> None:
        limits = self.limits_for(processor, accepted_file)

        report = await run_isolated(
            processor_spec, accepted_file, context_for(accepted_file), limits
        )

        assert report.outcome is Outcome.SUCCEEDED, f"{report.error}\n{report.log_tail}"
        assert isinstance(report.result, dict)

    @pytest.mark.asyncio
    async def test_malformed_file_is_classified_in_isolation(
        self, processor: Processor, processor_spec: ProcessorSpec, malformed_file: Path
    ) -> None:
        limits = self.limits_for(processor, malformed_file)

        report = await run_isolated(
            processor_spec, malformed_file, context_for(malformed_file), limits
        )

        expected = sorted(outcome.value for outcome in self.malformed_outcomes)
        assert report.outcome in self.malformed_outcomes, (
            f"outcome {report.outcome.value} (expected one of {expected}): {report.error}\n"
            f"{report.log_tail}"
        )
        assert report.error, "a refused file needs a message a person can read"
