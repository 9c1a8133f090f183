"""The plugin as the core sees it: entry point, registration, acceptance, resource needs."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest
from ifc_support import TINY

from aecflow.loading.plugins import PluginHost
from aecflow.processing import ResourceNeeds
from aecflow_processor_ifc import IfcProcessor, IfcProcessorConfig


def test_registered_through_its_entry_point() -> None:
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "processor_ifc"}).load()
    (info,) = [p for p in host.plugins if p.name == "processor_ifc"]
    assert (info.status, info.distribution, info.hooks) == (
        "loaded", "aecflow-processor-ifc", ["register_processors"]
    )  # fmt: skip
    registration = host.registries.processors.get("ifc")
    assert registration is not None
    assert registration.factory is IfcProcessor
    assert registration.config is IfcProcessorConfig
    assert registration.plugin == "processor_ifc"


def test_the_child_can_rebuild_it() -> None:
    """The core rebuilds processors by import path in its child; that must round-trip."""
    from aecflow.isolation import ProcessorSpec

    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "processor_ifc"}).load()
    spec = ProcessorSpec.from_registration(
        host.registries.processors.get("ifc"), IfcProcessorConfig()
    )
    assert spec.factory == "aecflow_processor_ifc.processor:IfcProcessor"
    assert spec.config_model == "aecflow_processor_ifc.config:IfcProcessorConfig"


def test_loading_the_plugin_does_not_load_ifcopenshell() -> None:
    """The host loads plugins; only the isolated child should map IfcOpenShell (~230 MB)."""
    code = (
        "import sys, aecflow_processor_ifc.plugin as p; "
        "p.IfcProcessor().accepts('a.ifc', None, b'ISO-10303-21;'); "
        "p.IfcProcessor().resources(10); "
        "[s().accepts('a.ifc', None, b'') and s().resources(10) for s in "
        "(p.ValidateStep, p.IdsStep, p.CsvStep)]; "
        "print(sorted({'ifcopenshell', 'ifctester'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("filename", "content_type", "head", "accepted"),
    [
        ("model.ifc", None, TINY, True),
        ("MODEL.IFC", None, b"\xef\xbb\xbf" + TINY, True),
        ("model.ifczip", None, b"PK\x03\x04rest", True),
        ("upload.bin", "application/x-step", TINY, True),
        ("upload.bin", "model/ifc; charset=utf-8", TINY, True),
        # .ifc files are always taken, so a broken one is reported as invalid input
        ("model.ifc", None, b"<html>", True),
        ("model.ifc", None, b"", True),
        ("upload.bin", "model/ifc", b"<html>", False),
        ("notes.txt", None, TINY, False),
        ("model.ifcxml", None, b"<?xml", False),
    ],
)
def test_accepts(filename: str, content_type: str | None, head: bytes, accepted: bool) -> None:
    assert IfcProcessor().accepts(filename, content_type, head[:4096]) is accepted


def test_resources_grow_with_size() -> None:
    processor = IfcProcessor()
    assert processor.resources(0) == ResourceNeeds()  # unknown: the core's global limit
    assert processor.resources(1) == ResourceNeeds(memory_mb=321)
    # 320 MB for the libraries and headroom, then 1.75 MB per MB of IFC.
    assert processor.resources(100 << 20) == ResourceNeeds(memory_mb=495)
    assert processor.resources(1 << 30) == ResourceNeeds(memory_mb=2112)
    custom = IfcProcessor(IfcProcessorConfig(memory_base_mb=300, memory_per_mb=2.0))
    assert custom.resources(100 << 20) == ResourceNeeds(memory_mb=500)


def test_config_is_validated() -> None:
    assert IfcProcessorConfig().zip_max_ratio == 200.0
    with pytest.raises(pydantic.ValidationError):
        IfcProcessorConfig(zip_max_ratio=0.5)
    with pytest.raises(pydantic.ValidationError):
        IfcProcessorConfig(unknown_key=1)  # type: ignore[call-arg]
