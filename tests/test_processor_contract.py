"""The processor contract suite fails deliberately broken processors in the tests that name
what they broke (run through pytest's own ``pytester``), without taking the test process down
when a processor kills its own process."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

BROKEN = r'''
import datetime as dt
import os

import pytest

from aecflow.processing import Artifact, InvalidInput, ProcessingResult, Processor
from aecflow.testing import ProcessorContract


class Chars(Processor):
    """A correct processor: counts the characters of UTF-8 text."""

    suffixes = (".txt",)

    def sniff(self, head):
        return b"\x00" not in head

    def read(self, path):
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("not UTF-8 text") from None

    def process(self, path, context):
        return ProcessingResult({"chars": len(self.read(path))})


class NonJson(Chars):
    def process(self, path, context):
        return ProcessingResult({"chars": len(self.read(path)), "at": dt.datetime.now()})


class TupleResult(Chars):
    def process(self, path, context):
        return ProcessingResult({"span": (0, len(self.read(path)))})


class MissingArtifact(Chars):
    def process(self, path, context):
        return ProcessingResult({"chars": len(self.read(path))}, (Artifact("summary.json"),))


class Greedy(Chars):
    def accepts(self, filename, content_type, head):
        return True


class AbortsOnMalformed(Chars):
    def read(self, path):
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            os.abort()  # what a crashing native library does to its process


class Base(ProcessorContract):
    @pytest.fixture
    def accepted_file(self, tmp_path):
        path = tmp_path / "notes.txt"
        path.write_text("text", encoding="utf-8")
        return path

    @pytest.fixture
    def malformed_file(self, tmp_path):
        path = tmp_path / "latin1.txt"
        path.write_bytes(b"caf\xe9")
        return path


def contract_for(cls):
    class Contract(Base):
        @pytest.fixture
        def processor(self):
            return cls()

    Contract.__name__ = f"Test{cls.__name__}"
    return Contract


TestChars = contract_for(Chars)
TestNonJson = contract_for(NonJson)
TestTupleResult = contract_for(TupleResult)
TestMissingArtifact = contract_for(MissingArtifact)
TestGreedy = contract_for(Greedy)
TestAbortsOnMalformed = contract_for(AbortsOnMalformed)
'''


def test_broken_processors_fail_the_contract_where_they_break_it(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_broken=BROKEN)
    # Child processes only where they show something: they cost a second each.
    only = "not isolation or NonJson and accepted or AbortsOnMalformed and classified"

    recorder = pytester.inline_run("-p", "no:cacheprovider", "-k", only)

    failed: dict[str, set[str]] = {}
    messages: dict[str, str] = {}
    for report in recorder.getfailures():
        _, cls, name = report.nodeid.split("::")
        failed.setdefault(cls, set()).add(name)
        messages[f"{cls}::{name}"] = str(report.longrepr)
    assert failed == {
        "TestNonJson": {
            "test_result_is_a_json_object",
            "test_accepted_file_succeeds_in_isolation",
        },
        "TestTupleResult": {"test_result_is_a_json_object"},
        "TestMissingArtifact": {
            "test_declared_artifacts_exist",
            "test_no_artifacts_without_an_output_dir",
        },
        "TestGreedy": {"test_rejects_unrelated_files"},
        "TestAbortsOnMalformed": {"test_malformed_file_is_classified_in_isolation"},
    }
    # The child died of its own abort(); the run went on and said so.
    aborted = messages["TestAbortsOnMalformed::test_malformed_file_is_classified_in_isolation"]
    assert "outcome crashed" in aborted and "SIGABRT" in aborted
    assert (
        "not JSON-serialisable" in messages["TestNonJson::test_accepted_file_succeeds_in_isolation"]
    )
    passed, _, _ = recorder.listoutcomes()
    assert any("TestChars::test_result_is_a_json_object" in r.nodeid for r in passed)
