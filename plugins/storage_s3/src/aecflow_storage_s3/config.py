"""Settings of the S3 storage backend (the ``[storage]`` table when ``backend = "s3"``).

Everything that can be checked without the network is checked here, so a typo or an unsafe
endpoint stops start-up with a message naming the key: plain HTTP to a non-loopback host,
half a key pair, a KMS key id without SSE-KMS, a part size S3 would refuse.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

import pydantic
from pydantic import ConfigDict, Field, SecretStr

from aecflow_storage_s3.keys import normalize_prefix

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
DAY_S = 24 * 60 * 60

#: S3's limits on multipart uploads: every part but the last at least 5 MiB, at most 5 GiB.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * GIB
#: SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN_EXPIRY_S = 7 * DAY_S

_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ``::1``: traffic that never leaves the box."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class S3StorageConfig(pydantic.BaseModel):
    """Where objects live, how they are written and who may sign for them.

    Unknown keys are an error so that a typo (``partsize``) is reported, not ignored.
    """

    model_config = ConfigDict(extra="forbid")

    bucket: str = Field(description="Bucket name (3-63 lower-case letters, digits, '.', '-').")
    prefix: str = Field(
        default="",
        description="Key prefix inside the bucket for every object, e.g. 'aecflow/prod'.",
    )
    region: str | None = Field(
        default=None,
        description="Region requests are signed for; default: the bucket's own region, "
        "discovered at start-up.",
    )
    pin_region: bool = Field(
        default=False,
        description="Data residency: refuse to start unless the bucket really is in `region`.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible server (MinIO, Ceph, a test server); default: AWS.",
    )
    addressing_style: Literal["auto", "path", "virtual"] = Field(
        default="auto",
        description="auto: virtual-hosted on AWS, path-style for a custom endpoint_url.",
    )
    allow_http: bool = Field(
        default=False,
        description="Allow plain HTTP to a non-loopback endpoint_url (loopback is always allowed).",
    )
    profile: str | None = Field(
        default=None, description="Named profile of the shared AWS config files."
    )
    access_key_id: SecretStr | None = Field(
        default=None, description="Explicit key (by reference: { env = ... }); default: AWS chain."
    )
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    server_side_encryption: Literal["AES256", "aws:kms"] = Field(
        default="AES256", description="SSE-S3 (AES256) or SSE-KMS (aws:kms) on every object."
    )
    sse_kms_key_id: str | None = Field(
        default=None, description="KMS key id or ARN for aws:kms; default: the aws/s3 key."
    )
    part_size: int = Field(
        default=8 * MIB,
        ge=MIN_PART_SIZE,
        le=MAX_PART_SIZE,
        description="Bytes per multipart part; an upload holds about (concurrency + 1) parts.",
    )
    max_concurrency: int = Field(
        default=4, ge=1, le=64, description="Parts of one upload in flight at once."
    )
    max_url_expiry_s: int = Field(
        default=MAX_PRESIGN_EXPIRY_S,
        ge=1,
        le=MAX_PRESIGN_EXPIRY_S,
        description="Longest lifetime of a presigned download URL; longer requests are clamped.",
    )
    max_retries: int = Field(
        default=5, ge=0, le=20, description="Retries of one request or part (obstore)."
    )
    retry_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=300,
        description="No retry of a request starts later than this after its first attempt.",
    )
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(
        default=60.0, gt=0, description="A response that sends nothing for this long has failed."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed by the CORS rule that `aecflow s3 config` emits.",
    )
    abort_incomplete_multipart_days: int = Field(
        default=1, ge=1, description="Lifecycle: abort multipart uploads left this many days."
    )
    noncurrent_version_days: int = Field(
        default=30,
        ge=1,
        description="Lifecycle: delete overwritten or deleted versions after this many days.",
    )

    # -- field checks --------------------------------------------------------------------

    @pydantic.field_validator("bucket")
    @classmethod
    def _bucket_name(cls, value: str) -> str:
        if not _BUCKET_RE.match(value) or ".." in value:
            raise ValueError(
                "must be 3-63 lower-case letters, digits, '.' or '-', starting and ending "
                "with a letter or digit"
            )
        return value

    @pydantic.field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return normalize_prefix(value)

    @pydantic.field_validator("region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is not None and not _REGION_RE.match(value):
            raise ValueError("must look like 'eu-central-1'")
        return value

    @pydantic.field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError("must be scheme://host[:port] without path, query or credentials")
        return value.rstrip("/")

    @pydantic.field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        # An environment override arrives as one string: "https://a.example,https://b.example".
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @pydantic.field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return value

    # -- combinations --------------------------------------------------------------------

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> S3StorageConfig:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("access_key_id and secret_access_key must be given together")
        if self.session_token is not None and self.access_key_id is None:
            raise ValueError("session_token needs access_key_id and secret_access_key")
        if self.profile is not None and self.access_key_id is not None:
            raise ValueError("give either profile or explicit keys, not both")
        if self.pin_region and self.region is None:
            raise ValueError("pin_region needs region: the region the data must stay in")
        if self.sse_kms_key_id is not None and self.server_side_encryption != "aws:kms":
            raise ValueError('sse_kms_key_id needs server_side_encryption = "aws:kms"')
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            host = parts.hostname or ""
            if parts.scheme == "http" and not self.allow_http and not is_loopback_host(host):
                raise ValueError(
                    f"endpoint_url {self.endpoint_url!r} is plain HTTP to a non-loopback host: "
                    "credentials and data would cross the network unencrypted; use https:// "
                    "or set allow_http = true if this network is trusted"
                )
        return self

    # -- derived -------------------------------------------------------------------------

    @property
    def uses_http(self) -> bool:
        return self.endpoint_url is not None and self.endpoint_url.startswith("http://")

    @property
    def is_loopback(self) -> bool:
        """The endpoint is on this machine (its traffic never crosses a network)."""
        if self.endpoint_url is None:
            return False
        return is_loopback_host(urlsplit(self.endpoint_url).hostname or "")

    @property
    def path_style(self) -> bool:
        """Path-style addressing: asked for, or ``auto`` with a custom endpoint."""
        if self.addressing_style == "auto":
            return self.endpoint_url is not None
        return self.addressing_style == "path"
