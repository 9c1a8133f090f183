"""Settings of the local storage backend (the ``[storage]`` table when ``backend = "local"``)."""

from __future__ import annotations

from pathlib import Path

import pydantic
from pydantic import ConfigDict, Field

KIB = 1024
MIB = 1024 * KIB
DAY_S = 24 * 60 * 60

#: Smallest secret we accept: a shorter one could be guessed offline from one signed URL.
MIN_SECRET_BYTES = 16


class LocalStorageConfig(pydantic.BaseModel):
    """Where objects live and how they are written and signed.

    Unknown keys are an error so that a typo (``chunksize``) is reported, not ignored.
    """

    model_config = ConfigDict(extra="forbid")

    root: Path = Field(
        default=Path("aecflow-data/storage"),
        description="Directory holding objects/, tmp/ and .signing-key; relative paths resolve "
        "against the current directory when the backend starts.",
    )
    chunk_size: int = Field(
        default=1 * MIB,
        ge=64 * KIB,
        le=64 * MIB,
        description="Bytes per disk write and per read chunk; memory per upload is ~3x this.",
    )
    min_free_bytes: int = Field(
        default=1024 * MIB,
        ge=0,
        description="Free space kept on the filesystem: a streamed upload or session part that "
        "would leave less is refused (507 insufficient_storage) before the write that would.",
    )
    fsync: bool = Field(
        default=True,
        description="fsync each object and its directory before put() returns (durability).",
    )
    signing_secret: pydantic.SecretStr | None = Field(
        default=None,
        description="HMAC key for download URLs; None generates one in <root>/.signing-key.",
    )
    public_base_url: str = Field(
        default="/v1/storage/local",
        min_length=1,
        description="Base URL under which the host serves signed downloads; the default is a "
        "path on whichever host answered, so redirects work on any address and port.",
    )
    max_url_expiry_s: int = Field(
        default=7 * DAY_S,
        ge=1,
        description="Longest lifetime a download URL may have; longer requests are clamped.",
    )

    @pydantic.field_validator("signing_secret")
    @classmethod
    def _secret_long_enough(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes long")
        return value

    @pydantic.field_validator("public_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")
