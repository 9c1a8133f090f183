"""The example plugin, tested the way a third-party plugin would be: only ``aecflow.testing``
(its fixtures come from the ``pytest11`` entry point), no conftest, no paths into the
repository. Run with ``pytest examples/aecflow-example-plugin``."""

from __future__ import annotations

from pathlib import Path

import pytest

from aecflow.flow import Flow
from aecflow.processing import InvalidInput, ProcessingContext
from aecflow.testing import MemoryStorage, recording_notifier, run_until_settled
from aecflow_example_plugin import SEEN, TextStats, TextStatsConfig

TEXT = "one two three\nfour\n"
CONTEXT = ProcessingContext("f1", "demo", "notes.txt", len(TEXT))


def test_counts_lines_words_and_characters(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text(TEXT, encoding="utf-8")
    result = TextStats(TextStatsConfig()).process(path, CONTEXT)
    assert result.data == {"lines": 2, "words": 4, "characters": len(TEXT)}


def test_sniff_refuses_binary_heads() -> None:
    stats = TextStats(TextStatsConfig())
    assert stats.sniff(b"plain text")
    assert not stats.sniff(b"PK\x03\x04\x00\x00")


def test_text_in_another_encoding_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="not utf-8 text"):
        TextStats(TextStatsConfig()).process(path, CONTEXT)


async def test_an_ingested_text_file_is_processed_and_notified(flow: Flow, tmp_path: Path) -> None:
    path = tmp_path / "notes.md"
    path.write_text(TEXT, encoding="utf-8")
    record = await flow.ingest_file("demo", path)
    assert isinstance(flow.storage, MemoryStorage)
    await run_until_settled(flow)
    done = await flow.get(record.id)
    assert (done.status, done.processing["processor"]) == ("processed", "textstats")
    assert done.processing["result"]["words"] == 4
    assert recording_notifier(flow).types() == [
        "file.stored",
        "file.step_succeeded",
        "file.processed",
    ]
    assert "flow.ingest" in {observation.name for observation in SEEN}  # observe ran


async def test_invalid_text_fails_the_file_not_the_flow(flow: Flow, tmp_path: Path) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("café\n".encode("latin-1"))
    record = await flow.ingest_file("demo", path)
    await run_until_settled(flow)
    done = await flow.get(record.id)
    assert done.status == "failed"
    assert "not utf-8 text" in str(done.processing["error"])
