"""Plugin discovery, isolation and validation through real entry points."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aecflow.errors import ConfigError, PluginError
from aecflow.flow import Flow
from aecflow.loading.plugins import PluginHost

from .conftest import make_settings

BROKEN = "raise ImportError('this plugin needs libfoo, which is missing')\n"

MARKER_SOURCE = """
from pathlib import Path
Path({marker!r}).write_text("imported")
"""

DUPLICATE_LOCAL = """
import aecflow
from aecflow_storage_local.storage import LocalStorage
from aecflow_storage_local.config import LocalStorageConfig

@aecflow.hookimpl
def register_storage(registry):
    registry.add("local", LocalStorage, config=LocalStorageConfig)
"""

MISSPELLED = """
import aecflow

@aecflow.hookimpl
def register_storag(registry):
    pass
"""

FAILS_TO_REGISTER = """
import aecflow

class Config:
    pass

@aecflow.hookimpl
def register_processors(registry):
    registry.add("half", object)
    raise RuntimeError("registration blew up")
"""

BAD_MONITORS = """
import asyncio
import aecflow

CALLS = []

@aecflow.hookimpl
def observe(observation):
    raise RuntimeError("monitor broke")

@aecflow.hookimpl
def startup(flow):
    raise RuntimeError("startup hook broke")
"""

ASYNC_MONITOR = """
import aecflow

SEEN = []

@aecflow.hookimpl
async def observe(observation):
    SEEN.append(observation.name)
"""


def by_name(host: PluginHost) -> dict:
    return {info.name: info for info in host.plugins}


def test_example_plugin_is_found_through_its_entry_point() -> None:
    host = PluginHost(environ={}).load()
    info = by_name(host)["example"]
    assert info.status == "loaded"
    assert info.distribution == "aecflow-example-plugin"
    assert info.version == "0.1.0"
    assert info.hooks == ["observe", "register_processors"]
    assert host.registries.processors.get("textstats").plugin == "example"
    assert "local" in host.registries.storage.names()


def test_broken_plugin_is_reported_and_skipped(fake_dists) -> None:
    fake_dists.add("aecflow-broken", "broken", "broken_plugin", BROKEN)
    host = PluginHost(environ={}).load()
    info = by_name(host)["broken"]
    assert info.status == "error"
    assert "libfoo" in info.error and "ImportError" in info.error
    assert by_name(host)["example"].status == "loaded", "others still load"


def test_strict_mode_makes_a_broken_plugin_fatal(fake_dists) -> None:
    fake_dists.add("aecflow-broken", "broken", "broken_plugin", BROKEN)
    with pytest.raises(PluginError, match=r"broken.*libfoo"):
        PluginHost(environ={"AECFLOW_STRICT_PLUGINS": "1"}).load()


def test_disabled_plugin_is_never_imported(fake_dists, tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    fake_dists.add(
        "aecflow-marker", "marker", "marker_plugin", MARKER_SOURCE.format(marker=str(marker))
    )
    host = PluginHost(environ={"AECFLOW_DISABLE_PLUGINS": "marker, example"}).load()
    assert by_name(host)["marker"].status == "disabled"
    assert by_name(host)["example"].status == "disabled"
    assert not marker.exists()
    assert "textstats" not in host.registries.processors.names()


def test_allowlist_loads_only_named_plugins(fake_dists, tmp_path: Path) -> None:
    marker = tmp_path / "imported.txt"
    fake_dists.add(
        "aecflow-marker", "marker", "marker_plugin", MARKER_SOURCE.format(marker=str(marker))
    )
    host = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": "storage_local"}).load()
    statuses = {name: info.status for name, info in by_name(host).items()}
    assert statuses["storage_local"] == "loaded"
    assert statuses["marker"] == statuses["example"] == "disabled"
    assert not marker.exists()
    none = PluginHost(environ={"AECFLOW_LOAD_PLUGINS": ""}).load()
    assert none.registries.storage.names() == []
    assert none.registries.notifiers.names() == ["log"], "builtins stay"


def test_misspelled_hook_is_caught(fake_dists) -> None:
    fake_dists.add("aecflow-typo", "typo", "typo_plugin", MISSPELLED)
    info = by_name(PluginHost(environ={}).load())["typo"]
    assert info.status == "error"
    assert "register_storag" in info.error


def test_failed_registration_is_rolled_back(fake_dists) -> None:
    fake_dists.add("aecflow-half", "half", "half_plugin", FAILS_TO_REGISTER)
    host = PluginHost(environ={}).load()
    assert by_name(host)["half"].status == "error"
    assert "registration blew up" in by_name(host)["half"].error
    assert "half" not in host.registries.processors.names()


def test_duplicate_backend_names_name_both_plugins(fake_dists) -> None:
    fake_dists.add("aecflow-dup", "zz_dup", "dup_plugin", DUPLICATE_LOCAL)
    with pytest.raises(PluginError) as caught:
        PluginHost(environ={}).load()
    assert "'storage_local'" in caught.value.message and "'zz_dup'" in caught.value.message


async def test_raising_and_async_monitors_never_break_operations(
    fake_dists, tmp_path: Path, database_url: str
) -> None:
    fake_dists.add("aecflow-badmon", "badmon", "badmon_plugin", BAD_MONITORS)
    fake_dists.add("aecflow-asyncmon", "asyncmon", "asyncmon_plugin", ASYNC_MONITOR)
    from aecflow.streams import aiter_bytes

    async with Flow.open(make_settings(tmp_path, database_url), environ={}) as flow:
        record = await flow.ingest("p1", "a.bin", aiter_bytes(b"data"))
        assert (await flow.get(record.id)).size == 4
        await flow.plugins.drain()
    import asyncmon_plugin

    assert "flow.ingest" in asyncmon_plugin.SEEN


async def test_config_errors_name_the_plugin_and_key(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(
        tmp_path, database_url, storage={"backend": "local", "chunk_size": "big"}
    )
    with pytest.raises(ConfigError) as caught:
        async with Flow.open(settings):
            pass
    assert "storage_local" in caught.value.message
    assert "chunk_size" in caught.value.message
    assert "big" not in caught.value.message, "values (possibly secrets) are never echoed"

    settings = make_settings(tmp_path, database_url, storage={"backend": "nope"})
    with pytest.raises(ConfigError, match="'nope' is not registered"):
        async with Flow.open(settings):
            pass


async def test_secrets_are_resolved_for_the_plugin_and_never_listed(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-" + "x" * 24
    monkeypatch.setenv("TEST_SIGNING_SECRET", secret)
    settings = make_settings(
        tmp_path,
        database_url,
        storage={
            "backend": "local",
            "root": str(tmp_path / "objects"),
            "signing_secret": {"env": "TEST_SIGNING_SECRET"},
        },
    )
    async with Flow.open(settings) as flow:
        assert flow.storage.config.signing_secret.get_secret_value() == secret
        assert secret not in repr(flow.storage.config)
        listing = json.dumps([info.as_dict() for info in flow.plugins.plugins])
    assert secret not in listing
    assert secret not in settings.model_dump_json()
    monkeypatch.delenv("TEST_SIGNING_SECRET")
    with pytest.raises(ConfigError, match="TEST_SIGNING_SECRET"):
        async with Flow.open(settings):
            pass


def test_cli_plugin_listing_never_shows_settings() -> None:
    secret = "s3cr3t-" + "y" * 24
    out = subprocess.run(
        [sys.executable, "-m", "aecflow", "plugins", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={"AECFLOW_STORAGE__SIGNING_SECRET": secret, "PATH": ""},
    )
    assert secret not in out.stdout + out.stderr
    assert any(p["name"] == "storage_local" for p in json.loads(out.stdout))


async def test_a_table_for_a_processor_no_plugin_registers_is_a_warning(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from aecflow.config import load_settings

    config = tmp_path / "aecflow.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[database]\nurl = "{database_url}"\n'
        f'[storage]\nroot = "{tmp_path / "objects"}"\n[worker]\nembedded = false\n'
        '[processing.processors.textstats]\nencoding = "latin-1"\n'
        "[processing.processors.gone]\nenabled = false\n"
    )
    settings = load_settings(config, environ={"AECFLOW_PROCESSING__PROCESSORS__GCS__X": "1"})
    with caplog.at_level("WARNING", logger="aecflow.loading.components"):
        async with Flow.open(settings, environ={"AECFLOW_DISABLE_PLUGINS": "example"}) as flow:
            assert "textstats" not in flow.processors
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 2, warned
    assert warned[0].startswith(
        "[processing.processors.gcs] in AECFLOW_PROCESSING__PROCESSORS__GCS__X: no loaded plugin"
    )
    assert warned[1].startswith(
        f"[processing.processors.textstats] in {config}: no loaded plugin registers processor "
        "'textstats' (not installed, left out by AECFLOW_LOAD_PLUGINS/AECFLOW_DISABLE_PLUGINS"
    )
