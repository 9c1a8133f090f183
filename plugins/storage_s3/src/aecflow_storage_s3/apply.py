"""Apply the AWS documents to the bucket and IAM (``aecflow s3 config --apply``).

Every step is idempotent, so a run can be repeated, and each is retried on its own when S3 or
IAM is briefly unavailable. Settings a bucket may share with other teams are merged, not
overwritten: only aecflow's own policy statements (``Sid`` starting with ``Aecflow``), its
lifecycle rule and its CORS rule are replaced. Encryption, versioning and the public access
block are bucket-wide and are set outright.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import botocore.exceptions

from aecflow.errors import StorageUnavailable
from aecflow_storage_s3 import awsconfig, clients, residency
from aecflow_storage_s3.config import S3StorageConfig
from aecflow_storage_s3.errors import translated
from aecflow_storage_s3.retries import whole_operation

log = logging.getLogger(__name__)

IAM_PATH = "/aecflow/"
#: IAM keeps at most five versions of a managed policy.
MAX_POLICY_VERSIONS = 5


def policy_names(config: S3StorageConfig) -> dict[str, str]:
    return {
        "iam_policy": f"aecflow-{config.bucket}",
        "iam_read_only_policy": f"aecflow-{config.bucket}-read-only",
    }


async def _step(what: str, call: Callable[[], Awaitable[Any]]) -> Any:
    async for attempt in whole_operation():
        with attempt, translated(what, missing_is_down=True):
            return await call()
    raise StorageUnavailable(f"{what}: gave up")  # pragma: no cover - stamina re-raises


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


async def _current(call: Callable[[], Awaitable[Any]], missing: str) -> Any | None:
    """The bucket's current setting, or ``None`` when S3 says there is none (``missing``)."""
    try:
        return await call()
    except botocore.exceptions.ClientError as exc:
        if _code(exc) == missing:
            return None
        raise


async def apply_bucket(config: S3StorageConfig, s3: Any) -> list[str]:
    """Apply the bucket documents; returns the names applied, in order."""
    docs = awsconfig.documents(config)
    bucket = config.bucket
    applied: list[str] = []

    await _step(
        "set the public access block",
        lambda: s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=docs["public_access_block"]
        ),
    )
    applied.append("public_access_block")
    await _step(
        "set default encryption",
        lambda: s3.put_bucket_encryption(
            Bucket=bucket, ServerSideEncryptionConfiguration=docs["encryption"]
        ),
    )
    applied.append("encryption")
    await _step(
        "enable versioning",
        lambda: s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=docs["versioning"]),
    )
    applied.append("versioning")

    async def lifecycle() -> None:
        current = await _current(
            lambda: s3.get_bucket_lifecycle_configuration(Bucket=bucket),
            "NoSuchLifecycleConfiguration",
        )
        rules = [
            rule
            for rule in (current or {}).get("Rules", [])
            if rule.get("ID") != awsconfig.LIFECYCLE_RULE_ID
        ]
        rules += docs["lifecycle"]["Rules"]
        await s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": rules}
        )

    await _step("set the lifecycle rule", lifecycle)
    applied.append("lifecycle")

    async def cors() -> None:
        current = await _current(
            lambda: s3.get_bucket_cors(Bucket=bucket), "NoSuchCORSConfiguration"
        )
        rules = [
            rule
            for rule in (current or {}).get("CORSRules", [])
            if rule.get("ID") != awsconfig.CORS_RULE_ID
        ]
        rules += (docs["cors"] or {}).get("CORSRules", [])
        if rules:
            await s3.put_bucket_cors(Bucket=bucket, CORSConfiguration={"CORSRules": rules})
        elif current is not None:
            await s3.delete_bucket_cors(Bucket=bucket)

    await _step("set the CORS rule", cors)
    if docs["cors"] is not None:
        applied.append("cors")

    async def policy() -> None:
        current = await _current(lambda: s3.get_bucket_policy(Bucket=bucket), "NoSuchBucketPolicy")
        statements = []
        if current is not None:
            statements = [
                statement
                for statement in json.loads(current["Policy"]).get("Statement", [])
                if not str(statement.get("Sid", "")).startswith(awsconfig.SID_PREFIX)
            ]
        document = dict(docs["bucket_policy"])
        document["Statement"] = statements + document["Statement"]
        await s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))

    await _step("set the bucket policy", policy)
    applied.append("bucket_policy")
    return applied


async def apply_iam(config: S3StorageConfig, iam: Any, sts: Any, region: str) -> dict[str, str]:
    """Create or update both managed policies; returns their ARNs by document name."""
    docs = awsconfig.documents(config)
    identity = await _step("ask which account this is", sts.get_caller_identity)
    account = identity["Account"]
    arns: dict[str, str] = {}
    for document, name in policy_names(config).items():
        arn = f"arn:{awsconfig.partition(region)}:iam::{account}:policy{IAM_PATH}{name}"
        body = json.dumps(docs[document])

        async def upsert(name: str = name, arn: str = arn, body: str = body) -> None:
            try:
                await iam.create_policy(
                    PolicyName=name,
                    Path=IAM_PATH,
                    PolicyDocument=body,
                    Description=f"aecflow storage in bucket {config.bucket}",
                )
                return
            except botocore.exceptions.ClientError as exc:
                if _code(exc) != "EntityAlreadyExists":
                    raise
            versions = (await iam.list_policy_versions(PolicyArn=arn))["Versions"]
            if len(versions) >= MAX_POLICY_VERSIONS:
                oldest = min(
                    (v for v in versions if not v["IsDefaultVersion"]),
                    key=lambda v: v["CreateDate"],
                )
                await iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
            await iam.create_policy_version(PolicyArn=arn, PolicyDocument=body, SetAsDefault=True)

        await _step(f"create or update IAM policy {name}", upsert)
        arns[document] = arn
    return arns


async def apply_all(config: S3StorageConfig, *, iam: bool = True) -> dict[str, Any]:
    """Apply everything to the configured bucket (and IAM); returns what was done."""
    session = clients.control_session(config)
    first_region = clients.default_region(config)
    async with session.client("s3", **clients.control_client_args(config, first_region)) as s3:
        region = await residency.discover(config, s3)
    summary: dict[str, Any] = {"bucket": config.bucket, "region": region}
    async with session.client("s3", **clients.control_client_args(config, region)) as s3:
        summary["applied"] = await apply_bucket(config, s3)
    if iam:
        args = clients.control_client_args(config, region)
        async with (
            session.client("iam", **args) as iam_client,
            session.client("sts", **args) as sts,
        ):
            summary["iam_policies"] = await apply_iam(config, iam_client, sts, region)
    return summary
