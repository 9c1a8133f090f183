"""Configuration and start-up: unsafe settings refused, residency enforced, credentials found."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

import pydantic
import pytest
from s3_support import Bucket, MotoServer, new_bucket, started, storage_config

from aecflow.config import Settings, load_settings
from aecflow.errors import ConfigError, StorageAccessDenied
from aecflow.flow import Flow
from aecflow_storage_s3 import S3Storage, S3StorageConfig
from aecflow_storage_s3.clients import build_store


def flow_settings(tmp_path: Path, storage: dict[str, Any]) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'aecflow.db'}"},
            "storage": {"backend": "s3", **storage},
            "notifiers": [],
            "worker": {"embedded": False},
        }
    )


# -- plain HTTP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "endpoint", ["http://s3.internal.example:9000", "http://10.0.0.5:9000", "http://[fd00::1]"]
)
def test_plain_http_to_a_non_loopback_endpoint_is_refused(endpoint: str) -> None:
    with pytest.raises(pydantic.ValidationError, match="plain HTTP to a non-loopback host"):
        S3StorageConfig(bucket="models", endpoint_url=endpoint)
    assert S3StorageConfig(bucket="models", endpoint_url=endpoint, allow_http=True).uses_http


@pytest.mark.parametrize(
    "endpoint",
    ["http://127.0.0.1:9000", "http://127.1.2.3", "http://localhost:9000", "http://[::1]:9000"],
)
def test_plain_http_to_loopback_and_https_anywhere_are_fine(endpoint: str) -> None:
    assert S3StorageConfig(bucket="models", endpoint_url=endpoint).uses_http
    assert not S3StorageConfig(bucket="models", endpoint_url="https://minio.example").uses_http


async def test_the_flow_refuses_to_start_with_plain_http_to_a_remote_host(
    tmp_path: Path,
) -> None:
    settings = flow_settings(
        tmp_path, {"bucket": "models", "endpoint_url": "http://s3.internal.example:9000"}
    )
    with pytest.raises(ConfigError) as refused:
        async with Flow.open(settings):
            pass
    assert "[storage]" in refused.value.message
    assert "plain HTTP to a non-loopback host" in refused.value.message


# -- other settings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"bucket": "Models_Bucket"}, "lower-case"),
        ({"bucket": "models", "access_key_id": "AKIA"}, "given together"),
        ({"bucket": "models", "session_token": "t"}, "session_token needs"),
        (
            {"bucket": "models", "profile": "p", "access_key_id": "a", "secret_access_key": "s"},
            "either profile or explicit keys",
        ),
        ({"bucket": "models", "pin_region": True}, "pin_region needs region"),
        ({"bucket": "models", "sse_kms_key_id": "k"}, "aws:kms"),
        ({"bucket": "models", "part_size": 1024 * 1024}, "greater than or equal"),
        ({"bucket": "models", "max_url_expiry_s": 8 * 24 * 3600}, "less than or equal"),
        ({"bucket": "models", "prefix": "a//b"}, "segments"),
        ({"bucket": "models", "endpoint_url": "https://h/path"}, "without path"),
        ({"bucket": "models", "cors_origins": ["https://a.example/app"]}, "not an origin"),
        ({"bucket": "models", "bukcet": "typo"}, "Extra inputs"),
    ],
)
def test_invalid_settings_are_refused(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=problem):
        S3StorageConfig.model_validate(raw)


def test_defaults() -> None:
    config = S3StorageConfig(bucket="models", prefix="/aecflow/prod/")
    assert config.prefix == "aecflow/prod"
    assert config.server_side_encryption == "AES256"
    assert config.part_size == 8 * 1024 * 1024 and config.max_concurrency == 4
    assert config.max_url_expiry_s == 7 * 24 * 3600
    assert config.region is None and not config.pin_region and not config.allow_http
    assert not config.path_style  # virtual-hosted on AWS
    assert S3StorageConfig(bucket="models", endpoint_url="http://127.0.0.1:9").path_style


def test_environment_overrides_reach_the_config(tmp_path: Path) -> None:
    toml = tmp_path / "aecflow.toml"
    toml.write_text('[storage]\nbackend = "s3"\nbucket = "models"\n', encoding="utf-8")
    settings = load_settings(
        toml,
        environ={
            "AECFLOW_STORAGE__PART_SIZE": str(16 * 1024 * 1024),
            "AECFLOW_STORAGE__PIN_REGION": "true",
            "AECFLOW_STORAGE__REGION": "eu-central-1",
            "AECFLOW_STORAGE__CORS_ORIGINS": "https://a.example, https://b.example",
        },
    )
    config = S3StorageConfig.model_validate(settings.storage.options())
    assert config.part_size == 16 * 1024 * 1024 and config.pin_region
    assert config.cors_origins == ["https://a.example", "https://b.example"]


def test_addressing_style_reaches_obstore() -> None:
    keys = {"access_key_id": "a", "secret_access_key": "s"}
    auto = S3StorageConfig(bucket="models", endpoint_url="https://s3.example", **keys)
    store = build_store(auto, "eu-central-1", None)  # a custom endpoint: path-style
    assert store.config["virtual_hosted_style_request"] == "false"
    assert store.config["endpoint"] == "https://s3.example"
    assert store.config["server_side_encryption"] == "AES256"
    virtual = auto.model_copy(update={"addressing_style": "virtual"})
    store = build_store(virtual, "eu-central-1", None)
    assert store.config["virtual_hosted_style_request"] == "true"
    assert store.config["endpoint"] == "https://models.s3.example"
    aws = S3StorageConfig(bucket="models", **keys)  # AWS itself: virtual-hosted
    assert build_store(aws, "eu-central-1", None).config["virtual_hosted_style_request"] == "true"


# -- residency -----------------------------------------------------------------------------


async def test_a_bucket_outside_the_pinned_region_refuses_to_start(
    tmp_path: Path, bucket: Bucket
) -> None:
    settings = flow_settings(
        tmp_path,
        {
            "bucket": bucket.name,
            "endpoint_url": bucket.moto.endpoint,
            "region": "us-west-2",
            "pin_region": True,
        },
    )
    with pytest.raises(ConfigError) as refused:
        async with Flow.open(settings):
            pass
    message = refused.value.message
    assert f"bucket {bucket.name!r} is in region 'eu-central-1'" in message
    assert "must stay in 'us-west-2'" in message and "refusing to start" in message
    assert bucket.object_keys() == []


async def test_the_pinned_region_starts_when_it_matches(bucket: Bucket) -> None:
    config = storage_config(bucket, region="eu-central-1", pin_region=True)
    async with started(config) as storage:
        assert storage.region == "eu-central-1"


async def test_without_a_pin_the_bucket_region_wins(
    bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        async with started(storage_config(bucket, region="us-west-2")) as storage:
            assert storage.region == "eu-central-1"
    assert "not in the configured region us-west-2" in caplog.text
    async with started(storage_config(bucket)) as storage:
        assert storage.region == "eu-central-1"


async def test_a_missing_bucket_refuses_to_start(moto: MotoServer) -> None:
    storage = S3Storage(
        S3StorageConfig(bucket="no-such-bucket-here", endpoint_url=moto.endpoint, max_retries=0)
    )
    with pytest.raises(ConfigError, match="bucket 'no-such-bucket-here' does not exist"):
        await storage.start()
    await storage.close()


# -- credentials ---------------------------------------------------------------------------


async def test_explicit_keys_by_secret_reference(
    tmp_path: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("S3_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("S3_SECRET", "not-a-real-secret")
    settings = flow_settings(
        tmp_path,
        {
            "bucket": bucket.name,
            "endpoint_url": bucket.moto.endpoint,
            "access_key_id": {"env": "S3_KEY_ID"},
            "secret_access_key": {"env": "S3_SECRET"},
        },
    )
    async with Flow.open(settings) as flow:
        record = await flow.ingest("p", "a.txt", _one(b"hello"))
        assert record.size == 5
        url = await flow.download_url(record.id)
    assert "AKIAEXAMPLE%2F" in url
    assert "not-a-real-secret" not in repr(settings.storage)


async def test_a_profile_from_the_shared_files_is_used(
    tmp_path: Path, bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    credentials = tmp_path / "credentials"
    credentials.write_text(
        "[aecflow]\naws_access_key_id = AKIAPROFILE\naws_secret_access_key = s\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    async with started(storage_config(bucket, profile="aecflow")) as storage:
        await storage.put("p/k", _one(b"via profile"))
        assert "AKIAPROFILE%2F" in await storage.download_url(
            "p/k", expires=dt.timedelta(minutes=1)
        )


async def test_no_credentials_anywhere_is_a_clear_refusal(
    bucket: Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    storage = S3Storage(storage_config(bucket))
    with pytest.raises(StorageAccessDenied, match="no AWS credentials found"):
        await storage.start()
    await storage.close()


async def test_another_region_than_the_first_guess(moto: MotoServer) -> None:
    bucket = new_bucket(moto, "ap-southeast-2")
    async with started(storage_config(bucket)) as storage:
        assert storage.region == "ap-southeast-2"
        await storage.put("p/k", _one(b"x"))
        url = await storage.download_url("p/k", expires=dt.timedelta(days=1))
    assert "%2Fap-southeast-2%2Fs3%2F" in url


async def _one(data: bytes):
    yield data
