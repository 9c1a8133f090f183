"""Where the bucket really is, and whether that is where the data may be (GDPR residency).

Asked once at start-up with ``GetBucketLocation``. With ``pin_region`` a different region, or
no answer at all, stops start-up: data must not be written to a bucket that may be in another
jurisdiction. Without it, the bucket's real region is used for signing and a different
configured region only earns a warning.
"""

from __future__ import annotations

import logging
from typing import Any

import botocore.exceptions

from aecflow.errors import ConfigError, StorageAccessDenied, StorageInvalid
from aecflow_storage_s3.config import S3StorageConfig
from aecflow_storage_s3.errors import translated

log = logging.getLogger(__name__)

#: GetBucketLocation's legacy answers: no constraint is us-east-1, "EU" is eu-west-1.
_LEGACY = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}


async def bucket_region(client: Any, bucket: str) -> str:
    """The region ``bucket`` is in, as S3 reports it; ``ConfigError`` if there is no bucket."""
    with translated(f"get the location of bucket {bucket!r}", missing_is_down=True):
        try:
            answer = await client.get_bucket_location(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                raise ConfigError(
                    f"[storage] bucket {bucket!r} does not exist; create it (see `aecflow s3 "
                    "config --format cloudformation`) or fix the bucket name"
                ) from None
            raise
    constraint = answer.get("LocationConstraint")
    return _LEGACY.get(constraint, constraint)


def settle_region(config: S3StorageConfig, actual: str | None, problem: str | None) -> str:
    """The region to use, or ``ConfigError`` when residency is pinned and not met.

    ``actual`` is the bucket's region (``None`` if it could not be asked, with ``problem``
    saying why).
    """
    if config.pin_region:
        if actual is None:
            raise ConfigError(
                f"[storage] pin_region is set but the region of bucket {config.bucket!r} "
                f"could not be verified ({problem}); refusing to start"
            )
        if actual != config.region:
            raise ConfigError(
                f"[storage] bucket {config.bucket!r} is in region {actual!r}, but data must stay "
                f"in {config.region!r} (pin_region = true); refusing to start. Use a bucket in "
                f"{config.region!r}, or change region if the data may live in {actual!r}"
            )
        return actual
    if actual is None:
        region = config.region or "us-east-1"
        log.warning(
            "could not ask where bucket %s is (%s); signing for %s", config.bucket, problem, region
        )
        return region
    if config.region and config.region != actual:
        log.warning(
            "bucket %s is in %s, not in the configured region %s; using %s",
            config.bucket,
            actual,
            config.region,
            actual,
        )
    return actual


async def discover(config: S3StorageConfig, client: Any) -> str:
    """Ask the bucket's region and settle which one to use (see :func:`settle_region`)."""
    actual: str | None = None
    problem: str | None = None
    try:
        actual = await bucket_region(client, config.bucket)
    except (StorageAccessDenied, StorageInvalid) as exc:  # S3 answered, but not with a region
        problem = exc.message
    return settle_region(config, actual, problem)
