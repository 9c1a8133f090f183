"""Settings: TOML, environment overrides, secret references and clear errors."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from aecflow.config import Settings, load_settings, resolve_secrets
from aecflow.errors import ConfigError

TOML = """
[database]
url = "postgresql+asyncpg://aecflow@db/aecflow"

[storage]
backend = "s3"
bucket = "models"

[processing]
timeout_s = 600

[processing.processors.ifc]
memory_limit_mb = 8192

[[notifiers]]
backend = "webhook"
url = "https://example.com/hook"
secret = { env = "HOOK_SECRET" }

[[notifiers]]
backend = "webhook"
url = "https://example.org/hook"
"""


def test_defaults_are_the_embedded_setup() -> None:
    settings = load_settings(environ={})
    assert settings.database_url() == "sqlite+aiosqlite:///aecflow-data/aecflow.db"
    assert settings.storage.backend == "local"
    assert [n.backend for n in settings.notifiers] == ["log"]
    assert settings.uploads.max_size == 5 * 1024**3


def test_toml_and_environment_overrides(tmp_path: Path) -> None:
    path = tmp_path / "aecflow.toml"
    path.write_text(TOML)
    settings = load_settings(
        path,
        environ={
            "AECFLOW_STORAGE__BUCKET": "other",
            "AECFLOW_STORAGE__REGION": "eu-central-1",
            "AECFLOW_PROCESSING__TIMEOUT_S": "30",
            "AECFLOW_NOTIFIERS__1__URL": "https://example.net/hook",
            "AECFLOW_LOAD_PLUGINS": "ignored: not a setting",
        },
    )
    assert settings.storage.options() == {"bucket": "other", "region": "eu-central-1"}
    assert settings.processing.timeout_s == 30
    assert settings.processing.processors["ifc"].memory_limit_mb == 8192
    assert settings.notifiers[1].options()["url"] == "https://example.net/hook"
    assert settings.notifier_names() == ["webhook", "webhook-2"]
    # the reference, not the secret, is what settings hold
    assert settings.notifiers[0].options()["secret"] == {"env": "HOOK_SECRET"}


def test_config_file_from_environment(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    path.write_text("[uploads]\nmax_size = 1024\n")
    assert load_settings(environ={"AECFLOW_CONFIG": str(path)}).uploads.max_size == 1024


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[processing]\ntimeout_s = -1\n", "processing.timeout_s"),
        ("this is = = not toml", "not valid TOML"),
    ],
)
def test_invalid_settings_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "aecflow.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert needle in caught.value.message


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_secret_references(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-a-file\n")
    monkeypatch.setenv("A_SECRET", "from-env")
    raw = {"a": {"env": "A_SECRET"}, "b": [{"file": str(secret_file)}], "c": {"d": 1}}
    resolved = resolve_secrets(raw, "[test]")
    assert resolved == {"a": "from-env", "b": ["from-a-file"], "c": {"d": 1}}
    assert raw["a"] == {"env": "A_SECRET"}, "resolution makes a copy"
    with pytest.raises(ConfigError, match=r"\[test\]\.x.*NOPE"):
        resolve_secrets({"x": {"env": "NOPE"}}, "[test]")
    with pytest.raises(ConfigError, match="cannot read"):
        resolve_secrets({"x": {"file": str(tmp_path / "missing")}}, "[test]")


def test_settings_model_round_trips() -> None:
    assert Settings.model_validate(Settings().model_dump()).database_url().startswith("sqlite")


def test_aecflow_toml_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "aecflow.toml").write_text("[processing]\ntimeout_s = 'soon'\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"processing\.timeout_s"):
        load_settings(environ={})


def test_unknown_keys_are_warned_with_their_source_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "aecflow.toml"
    path.write_text("[processing]\ntimeut_s = 1\nconcurrency = 3\n\n[nonsense]\na = 1\n")
    env = {
        "AECFLOW_UPLOADS__MAX_SIZ": "1",
        "AECFLOW_STORAGE_ROOT": "/srv/models",
        "AECFLOW_DATA_DIR": str(tmp_path / "data"),
        "AECFLOW_WEBHOOK_SECRET": "a secret by reference, not a setting",
    }
    with caplog.at_level("WARNING", logger="aecflow.config"):
        settings = load_settings(path, environ=env)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"unknown setting 'processing.timeut_s' in {path}: ignored" in warned
    assert f"unknown setting 'nonsense' in {path}: ignored" in warned
    assert "unknown setting 'uploads.max_siz' in AECFLOW_UPLOADS__MAX_SIZ: ignored" in warned
    assert (
        "unknown environment variable AECFLOW_STORAGE_ROOT: ignored "
        "(did you mean AECFLOW_STORAGE__ROOT?)" in warned
    )
    assert len(warned) == 4, warned
    assert settings.processing.concurrency == 3, "the known keys beside them still apply"
    assert settings.storage.options() == {}
    assert settings.data_dir == tmp_path / "data", "a top-level key needs no section"
    with pytest.raises(pydantic.ValidationError):
        Settings(nonsense=1)  # type: ignore[call-arg]  # settings made in code stay strict
