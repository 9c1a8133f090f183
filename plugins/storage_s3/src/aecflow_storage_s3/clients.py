"""Build the two clients from the configuration: obstore (data plane) and aioboto3 (control).

Both take credentials from the same place: explicit keys when configured, otherwise botocore's
standard chain (environment, shared profile, SSO, web identity, container and instance roles).
obstore's own chain has no shared profiles, so it is handed botocore's credentials through a
credential provider instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import aioboto3
import botocore.credentials
import botocore.session
from botocore.config import Config as BotoConfig

from aecflow_storage_s3.config import S3StorageConfig

if TYPE_CHECKING:
    from obstore.store import S3Store

#: How long obstore keeps one set of chain credentials before asking botocore again; botocore
#: itself refreshes temporary credentials well before they expire.
CREDENTIAL_TTL = dt.timedelta(minutes=5)
#: "No overall limit" for obstore requests: a 5 GB download to a slow client takes long;
#: stalls are caught by the read timeout instead.
NO_TOTAL_TIMEOUT = dt.timedelta(days=7)
#: A readiness probe that has not answered within this many seconds has failed.
PROBE_TIMEOUT_S = 4.0
#: Region used to ask where a bucket is when none is configured (any region can answer).
DISCOVERY_REGION = "us-east-1"


class ChainCredentials:
    """obstore credential provider backed by botocore's standard credential chain."""

    def __init__(self, credentials: botocore.credentials.Credentials) -> None:
        self._credentials = credentials

    def __call__(self) -> dict[str, Any]:
        frozen = self._credentials.get_frozen_credentials()
        refreshable = isinstance(self._credentials, botocore.credentials.RefreshableCredentials)
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": dt.datetime.now(dt.UTC) + CREDENTIAL_TTL if refreshable else None,
        }


def chain_credentials(config: S3StorageConfig) -> botocore.credentials.Credentials | None:
    """Resolve the standard chain (may touch the network: call it in a thread)."""
    session = botocore.session.Session(profile=config.profile)
    return session.get_credentials()


def default_region(config: S3StorageConfig) -> str:
    """The region to sign discovery requests for: configured, else the profile's, else AWS's."""
    if config.region:
        return config.region
    session = botocore.session.Session(profile=config.profile)
    return session.get_config_variable("region") or DISCOVERY_REGION


def _explicit_keys(config: S3StorageConfig) -> dict[str, str]:
    keys: dict[str, str] = {}
    if config.access_key_id is not None and config.secret_access_key is not None:
        keys["access_key_id"] = config.access_key_id.get_secret_value()
        keys["secret_access_key"] = config.secret_access_key.get_secret_value()
        if config.session_token is not None:
            keys["session_token"] = config.session_token.get_secret_value()
    return keys


def _virtual_endpoint(endpoint_url: str, bucket: str) -> str:
    """``https://host`` -> ``https://bucket.host``: obstore wants the bucket in the host."""
    parts = urlsplit(endpoint_url)
    return urlunsplit(parts._replace(netloc=f"{bucket}.{parts.netloc}"))


def build_store(
    config: S3StorageConfig,
    region: str,
    credentials: botocore.credentials.Credentials | None,
    *,
    probe: bool = False,
) -> S3Store:
    """The obstore client for ``config.bucket`` under ``config.prefix``.

    A ``probe`` store never retries and gives up quickly: readiness checks must answer fast.
    """
    from obstore.store import S3Store

    s3: dict[str, Any] = {
        "region": region,
        "server_side_encryption": config.server_side_encryption,
        "virtual_hosted_style_request": not config.path_style,
        # Signing the payload hashes every part a second time (we already hash every byte for
        # the core). TLS protects the bytes in transit, and loopback traffic never leaves the
        # machine; only plain HTTP across a network needs the signed payload for integrity.
        "unsigned_payload": not config.uses_http or config.is_loopback,
    }
    if config.sse_kms_key_id:
        s3["sse_kms_key_id"] = config.sse_kms_key_id
    if config.endpoint_url:
        s3["endpoint"] = (
            config.endpoint_url
            if config.path_style
            else _virtual_endpoint(config.endpoint_url, config.bucket)
        )
    explicit = _explicit_keys(config)
    s3.update(explicit)
    provider = None
    if not explicit:
        if credentials is None:
            raise ValueError("no AWS credentials")
        provider = ChainCredentials(credentials)
    client_options: dict[str, Any] = {
        "allow_http": config.uses_http,
        "connect_timeout": dt.timedelta(seconds=config.connect_timeout_s),
        "read_timeout": dt.timedelta(seconds=config.read_timeout_s),
        "timeout": NO_TOTAL_TIMEOUT,
    }
    retry_config: dict[str, Any] = {
        "max_retries": config.max_retries,
        "retry_timeout": dt.timedelta(seconds=config.retry_timeout_s),
    }
    if probe:
        client_options["connect_timeout"] = dt.timedelta(seconds=min(config.connect_timeout_s, 2))
        client_options["timeout"] = dt.timedelta(seconds=PROBE_TIMEOUT_S)
        retry_config = {"max_retries": 0, "retry_timeout": dt.timedelta(seconds=PROBE_TIMEOUT_S)}
    return S3Store(
        config.bucket,
        prefix=config.prefix or None,
        config=s3,  # type: ignore[arg-type]
        client_options=client_options,  # type: ignore[arg-type]
        retry_config=retry_config,  # type: ignore[arg-type]
        credential_provider=provider,  # type: ignore[arg-type]
    )


#: Sessions by credential source. A session caches the service models it has loaded (parsing
#: S3's takes a few hundred milliseconds), so each source gets one per process.
_SESSIONS: dict[tuple[str | None, ...], aioboto3.Session] = {}


def control_session(config: S3StorageConfig) -> aioboto3.Session:
    """An aioboto3 session with the configured keys or profile (else the standard chain)."""
    keys = _explicit_keys(config)
    source = (
        config.profile,
        keys.get("access_key_id"),
        keys.get("secret_access_key"),
        keys.get("session_token"),
    )
    session = _SESSIONS.get(source)
    if session is None:
        session = _SESSIONS[source] = aioboto3.Session(
            profile_name=config.profile,
            aws_access_key_id=keys.get("access_key_id"),
            aws_secret_access_key=keys.get("secret_access_key"),
            aws_session_token=keys.get("session_token"),
        )
    return session


def control_client_args(config: S3StorageConfig, region: str) -> Mapping[str, Any]:
    """Keyword arguments for ``session.client("s3", ...)``.

    botocore's own retries are off: whole control-plane operations are retried with stamina
    where that is safe.
    """
    boto_config = BotoConfig(
        signature_version="s3v4",
        region_name=region,
        s3={"addressing_style": "path" if config.path_style else "virtual"},
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=config.connect_timeout_s,
        read_timeout=config.read_timeout_s,
    )
    return {"region_name": region, "endpoint_url": config.endpoint_url, "config": boto_config}
