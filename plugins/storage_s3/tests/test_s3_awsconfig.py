"""``aecflow s3 config``: the documents, the CloudFormation template, and ``--apply``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner
from s3_support import Bucket, chunked, started, storage_config

from aecflow.errors import ConfigError, StorageAccessDenied
from aecflow_storage_s3 import S3StorageConfig, awsconfig
from aecflow_storage_s3.plugin import register_commands

KMS_ARN = "arn:aws:kms:eu-central-1:123456789012:key/11111111-2222-3333-4444-555555555555"


def write_config(tmp_path: Path, bucket: Bucket | None = None, **storage: Any) -> Path:
    table: dict[str, Any] = {"backend": "s3", "bucket": "models-eu", "region": "eu-central-1"}
    if bucket is not None:
        table |= {"bucket": bucket.name, "endpoint_url": bucket.moto.endpoint}
    table |= storage
    lines = ["[storage]"]
    for key, value in table.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = tmp_path / "aecflow.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run(config: Path, *args: str) -> Any:
    cli = click.Group()
    register_commands(cli)
    result = CliRunner().invoke(
        cli, ["s3", "config", *args], env={"AECFLOW_CONFIG": str(config)}, catch_exceptions=False
    )
    return result


def statements(policy: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in policy["Statement"]}


# -- the documents -------------------------------------------------------------------------


def test_json_output_has_every_document(tmp_path: Path) -> None:
    config = write_config(tmp_path, prefix="aecflow/prod", cors_origins=["https://app.example"])
    result = run(config)
    assert result.exit_code == 0, result.output
    docs = json.loads(result.output)
    assert set(docs) == {"bucket", *awsconfig.DOCUMENTS}

    policy = statements(docs["bucket_policy"])
    tls = policy["AecflowDenyInsecureTransport"]
    assert tls["Effect"] == "Deny" and tls["Condition"] == {
        "Bool": {"aws:SecureTransport": "false"}
    }
    assert tls["Resource"] == ["arn:aws:s3:::models-eu", "arn:aws:s3:::models-eu/*"]
    encryption = policy["AecflowDenyOtherEncryption"]
    assert encryption["Action"] == "s3:PutObject" and encryption["Effect"] == "Deny"
    assert encryption["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption": "AES256"}
    }
    assert docs["encryption"]["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    assert all(docs["public_access_block"].values()) and len(docs["public_access_block"]) == 4
    assert docs["versioning"] == {"Status": "Enabled"}
    (rule,) = docs["lifecycle"]["Rules"]
    assert rule["Filter"] == {"Prefix": "aecflow/prod/"}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    (cors,) = docs["cors"]["CORSRules"]
    assert cors["AllowedOrigins"] == ["https://app.example"] and "PUT" in cors["AllowedMethods"]
    assert "ETag" in cors["ExposeHeaders"]

    iam = statements(docs["iam_policy"])
    assert iam["AecflowObjects"]["Resource"] == "arn:aws:s3:::models-eu/aecflow/prod/*"
    assert set(iam["AecflowObjects"]["Action"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
        "s3:ListMultipartUploadParts",
    }
    assert iam["AecflowList"]["Condition"] == {
        "StringLike": {"s3:prefix": ["aecflow/prod/*", "aecflow/prod"]}
    }
    everything = json.dumps(docs["iam_policy"])
    assert '"s3:*"' not in everything and "DeleteObjectVersion" not in everything
    read_only = statements(docs["iam_read_only_policy"])
    actions = {a for s in read_only.values() for a in _list(s["Action"])}
    assert actions == {"s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"}


def _list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_sse_kms_documents_name_the_key(tmp_path: Path) -> None:
    config = S3StorageConfig(
        bucket="models-eu", server_side_encryption="aws:kms", sse_kms_key_id=KMS_ARN
    )
    docs = awsconfig.documents(config)
    assert docs["encryption"]["Rules"][0] == {
        "ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": KMS_ARN,
        },
        "BucketKeyEnabled": True,
    }
    policy = statements(docs["bucket_policy"])
    assert policy["AecflowDenyOtherKmsKey"]["Condition"] == {
        "StringNotEqualsIfExists": {"s3:x-amz-server-side-encryption-aws-kms-key-id": KMS_ARN}
    }
    kms = statements(docs["iam_policy"])["AecflowKms"]
    assert kms["Resource"] == KMS_ARN and "kms:GenerateDataKey" in kms["Action"]
    assert statements(docs["iam_read_only_policy"])["AecflowKms"]["Action"] == ["kms:Decrypt"]
    assert docs["cors"] is None


def test_only_prints_one_document(tmp_path: Path) -> None:
    result = run(write_config(tmp_path), "--only", "lifecycle")
    assert result.exit_code == 0, result.output
    assert list(json.loads(result.output)) == ["Rules"]
    missing = run(write_config(tmp_path), "--only", "cors")
    assert missing.exit_code == 2 and "cors_origins" in missing.output


@pytest.mark.parametrize("kms", [False, True], ids=["sse-s3", "sse-kms"])
def test_cloudformation_template_is_valid(tmp_path: Path, kms: bool) -> None:
    extra: dict[str, Any] = {"prefix": "aecflow", "cors_origins": ["https://app.example"]}
    if kms:
        extra |= {"server_side_encryption": "aws:kms", "sse_kms_key_id": KMS_ARN}
    result = run(write_config(tmp_path, **extra), "--format", "cloudformation")
    assert result.exit_code == 0, result.output
    template = json.loads(result.output)
    if kms:  # the superset template (KMS, CORS, prefix); linting costs seconds, so once
        cfnlint_api = pytest.importorskip("cfnlint.api")
        # Errors and warnings; informational rules are style advice, as on cfn-lint's CLI.
        matches = cfnlint_api.lint(result.output, regions=["eu-central-1"])
        problems = [p for p in matches if p.rule.id[0] in "EW"]
        assert problems == [], [str(p) for p in problems]

    docs = awsconfig.documents(S3StorageConfig.model_validate(extra | {"bucket": "models-eu"}))
    resources = template["Resources"]
    bucket = resources["Bucket"]["Properties"]
    assert bucket["BucketName"] == "models-eu"
    assert resources["BucketPolicy"]["Properties"]["PolicyDocument"] == docs["bucket_policy"]
    assert resources["AecflowPolicy"]["Properties"]["PolicyDocument"] == docs["iam_policy"]
    assert (
        resources["ReadOnlyPolicy"]["Properties"]["PolicyDocument"]
        == (docs["iam_read_only_policy"])
    )
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["PublicAccessBlockConfiguration"] == docs["public_access_block"]
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert bucket["CorsConfiguration"]["CorsRules"][0]["AllowedOrigins"] == ["https://app.example"]
    assert resources["Bucket"]["DeletionPolicy"] == "Retain"


# -- --apply -------------------------------------------------------------------------------


async def test_apply_leaves_the_bucket_with_those_settings(tmp_path: Path, bucket: Bucket) -> None:
    s3 = bucket.s3
    # Settings of another team on the same bucket must survive.
    foreign_rule = {
        "ID": "other-team",
        "Status": "Enabled",
        "Filter": {"Prefix": "other/"},
        "Expiration": {"Days": 90},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket.name, LifecycleConfiguration={"Rules": [foreign_rule]}
    )
    foreign_statement = {
        "Sid": "OtherTeamRead",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket.name}/other/*",
    }
    s3.put_bucket_policy(
        Bucket=bucket.name,
        Policy=json.dumps({"Version": "2012-10-17", "Statement": [foreign_statement]}),
    )
    config = write_config(tmp_path, bucket, prefix="aecflow", cors_origins=["https://app.example"])

    for _ in range(2):  # idempotent: a second run changes nothing and does not fail
        result = await _run_in_thread(config, "--apply")
        assert result.exit_code == 0, result.output
        assert "applied to bucket" in result.stderr

    docs = json.loads(result.stdout)
    assert s3.get_bucket_versioning(Bucket=bucket.name)["Status"] == "Enabled"
    encryption = s3.get_bucket_encryption(Bucket=bucket.name)["ServerSideEncryptionConfiguration"]
    assert encryption["Rules"][0]["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    block = s3.get_public_access_block(Bucket=bucket.name)["PublicAccessBlockConfiguration"]
    assert block == docs["public_access_block"]
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket.name)["Rules"]}
    assert set(rules) == {"other-team", awsconfig.LIFECYCLE_RULE_ID}
    ours = rules[awsconfig.LIFECYCLE_RULE_ID]
    assert ours["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert ours["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    cors = s3.get_bucket_cors(Bucket=bucket.name)["CORSRules"]
    assert [r["AllowedOrigins"] for r in cors] == [["https://app.example"]]
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket.name)["Policy"])
    sids = [statement["Sid"] for statement in policy["Statement"]]
    assert sids == ["OtherTeamRead", *[s["Sid"] for s in docs["bucket_policy"]["Statement"]]]

    iam = bucket.moto.client("iam")
    listed = iam.list_policies(Scope="Local", PathPrefix="/aecflow/")["Policies"]
    names = {p["PolicyName"]: p for p in listed}
    assert set(names) == {f"aecflow-{bucket.name}", f"aecflow-{bucket.name}-read-only"}
    arn = names[f"aecflow-{bucket.name}"]["Arn"]
    default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    stored = iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]
    document = stored["Document"]
    if isinstance(document, str):
        document = json.loads(document)
    assert document == docs["iam_policy"]

    # moto evaluates the bucket policy: plain HTTP is now refused, as the policy says.
    async with started(storage_config(bucket, prefix="aecflow")) as storage:
        with pytest.raises(StorageAccessDenied):
            await storage.put("p/k", chunked(b"over plain HTTP", 4))


async def _run_in_thread(config: Path, *args: str) -> Any:
    """The command runs its own event loop (asyncio.run), so not on the test's loop."""
    import asyncio

    cli = click.Group()
    register_commands(cli)
    runner = CliRunner()
    return await asyncio.to_thread(
        runner.invoke,
        cli,
        ["s3", "config", *args],
        env={"AECFLOW_CONFIG": str(config)},
        catch_exceptions=False,
    )


# -- the real command line -----------------------------------------------------------------


def test_aecflow_s3_config_through_the_entry_point(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "aecflow", "-c", str(config), "s3", "config", "--format", "json"],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["bucket"] == "models-eu"


def test_another_backend_is_a_configuration_error(tmp_path: Path) -> None:
    local = tmp_path / "local.toml"
    local.write_text('[storage]\nbackend = "local"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match='needs backend = "s3"') as refused:
        run(local)
    assert refused.value.exit_code == 78
