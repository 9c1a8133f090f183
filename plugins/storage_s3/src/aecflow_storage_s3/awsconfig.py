"""The AWS documents that make a bucket safe for aecflow, derived from its configuration.

Each document has the shape the S3 or IAM API takes, so a team can apply it with the AWS CLI
(``aws s3api put-bucket-policy --policy file://...``), through ``aecflow s3 config --apply``,
or as the CloudFormation template built from the same documents.

On "deny unencrypted puts": a bucket policy cannot require the encryption header on every
``s3:PutObject`` request, because ``UploadPart`` and ``CompleteMultipartUpload`` are authorised
as ``s3:PutObject`` but cannot carry that header (botocore issue #471: such a policy makes
every multipart upload fail). So the policy denies puts that *ask for* any other encryption
(``StringNotEqualsIfExists``), and default encryption encrypts every request that asks for
none. aecflow itself sends the header on every PUT and CreateMultipartUpload anyway.
"""

from __future__ import annotations

from typing import Any

from aecflow_storage_s3.config import S3StorageConfig

POLICY_VERSION = "2012-10-17"
#: Statement ids, rule ids and names aecflow owns; ``--apply`` replaces only these.
SID_PREFIX = "Aecflow"
LIFECYCLE_RULE_ID = "aecflow-housekeeping"
CORS_RULE_ID = "aecflow-browser-uploads"
DOCUMENTS = (
    "bucket_policy",
    "encryption",
    "public_access_block",
    "versioning",
    "lifecycle",
    "cors",
    "iam_policy",
    "iam_read_only_policy",
)


def partition(region: str | None) -> str:
    """The ARN partition of ``region``: ``aws``, ``aws-cn`` or ``aws-us-gov``."""
    if region and region.startswith("cn-"):
        return "aws-cn"
    if region and region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class Arns:
    """The ARNs the documents refer to."""

    def __init__(self, config: S3StorageConfig) -> None:
        self.partition = partition(config.region)
        self.bucket = f"arn:{self.partition}:s3:::{config.bucket}"
        self.objects = f"{self.bucket}/*"
        self.ours = f"{self.bucket}/{config.prefix}/*" if config.prefix else self.objects
        key = config.sse_kms_key_id
        self.kms_key = key if key and key.startswith("arn:") else None


def _list_condition(config: S3StorageConfig) -> dict[str, Any]:
    if not config.prefix:
        return {}
    return {"Condition": {"StringLike": {"s3:prefix": [f"{config.prefix}/*", config.prefix]}}}


def bucket_policy(config: S3StorageConfig) -> dict[str, Any]:
    """TLS only (1.2 or newer), and no put that asks for another encryption than ours."""
    arns = Arns(config)
    statements: list[dict[str, Any]] = [
        {
            "Sid": f"{SID_PREFIX}DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arns.bucket, arns.objects],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": f"{SID_PREFIX}DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [arns.bucket, arns.objects],
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
        {
            "Sid": f"{SID_PREFIX}DenyOtherEncryption",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:PutObject",
            "Resource": arns.objects,
            "Condition": {
                "StringNotEqualsIfExists": {
                    "s3:x-amz-server-side-encryption": config.server_side_encryption
                }
            },
        },
    ]
    if arns.kms_key:
        statements.append(
            {
                "Sid": f"{SID_PREFIX}DenyOtherKmsKey",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": arns.objects,
                "Condition": {
                    "StringNotEqualsIfExists": {
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": arns.kms_key
                    }
                },
            }
        )
    return {"Version": POLICY_VERSION, "Statement": statements}


def encryption(config: S3StorageConfig) -> dict[str, Any]:
    """Default encryption (``put-bucket-encryption``): what S3 applies when a put names none."""
    default: dict[str, str] = {"SSEAlgorithm": config.server_side_encryption}
    if config.sse_kms_key_id:
        default["KMSMasterKeyID"] = config.sse_kms_key_id
    return {
        "Rules": [
            {
                "ApplyServerSideEncryptionByDefault": default,
                # One data key per bucket instead of per object: far fewer KMS calls.
                "BucketKeyEnabled": config.server_side_encryption == "aws:kms",
            }
        ]
    }


def public_access_block(config: S3StorageConfig) -> dict[str, bool]:
    """Nothing in the bucket can be made public, by ACL or by policy."""
    return {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }


def versioning(config: S3StorageConfig) -> dict[str, str]:
    """Versioning: an overwrite or a stolen key's delete can be undone for a while."""
    return {"Status": "Enabled"}


def lifecycle(config: S3StorageConfig) -> dict[str, Any]:
    """Abort abandoned multipart uploads; erase noncurrent versions after a grace period.

    With versioning, a purge leaves the bytes as a noncurrent version; this rule is what makes
    a GDPR erasure final, after ``noncurrent_version_days``.
    """
    return {
        "Rules": [
            {
                "ID": LIFECYCLE_RULE_ID,
                "Status": "Enabled",
                "Filter": {"Prefix": f"{config.prefix}/" if config.prefix else ""},
                "AbortIncompleteMultipartUpload": {
                    "DaysAfterInitiation": config.abort_incomplete_multipart_days
                },
                "NoncurrentVersionExpiration": {"NoncurrentDays": config.noncurrent_version_days},
                "Expiration": {"ExpiredObjectDeleteMarker": True},
            }
        ]
    }


def cors(config: S3StorageConfig) -> dict[str, Any] | None:
    """Browser uploads and downloads from ``cors_origins``; ``None`` when there are none."""
    if not config.cors_origins:
        return None
    return {
        "CORSRules": [
            {
                "ID": CORS_RULE_ID,
                "AllowedOrigins": list(config.cors_origins),
                "AllowedMethods": ["GET", "HEAD", "PUT", "POST"],
                "AllowedHeaders": ["*"],
                # Browsers need the part ETags to complete a multipart upload.
                "ExposeHeaders": ["ETag", "x-amz-version-id"],
                "MaxAgeSeconds": 3600,
            }
        ]
    }


def iam_policy(config: S3StorageConfig) -> dict[str, Any]:
    """Least privilege for the role aecflow runs as: its prefix, nothing more.

    No ``s3:DeleteObjectVersion``: a stolen key can hide objects but not destroy the versions
    that the lifecycle rule keeps for ``noncurrent_version_days``.
    """
    arns = Arns(config)
    statements: list[dict[str, Any]] = [
        {
            "Sid": f"{SID_PREFIX}Objects",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:DeleteObject",
                "s3:AbortMultipartUpload",
                "s3:ListMultipartUploadParts",
            ],
            "Resource": arns.ours,
        },
        {
            "Sid": f"{SID_PREFIX}List",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": arns.bucket,
            **_list_condition(config),
        },
        {
            "Sid": f"{SID_PREFIX}Bucket",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            "Resource": arns.bucket,
        },
    ]
    kms = _kms_statement(config, ["kms:GenerateDataKey", "kms:Decrypt"])
    if kms:
        statements.append(kms)
    return {"Version": POLICY_VERSION, "Statement": statements}


def iam_read_only_policy(config: S3StorageConfig) -> dict[str, Any]:
    """For other AWS services (analytics, Lambda, Athena) that read what aecflow stored."""
    arns = Arns(config)
    statements: list[dict[str, Any]] = [
        {
            "Sid": f"{SID_PREFIX}ReadObjects",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": arns.ours,
        },
        {
            "Sid": f"{SID_PREFIX}ReadList",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": arns.bucket,
            **_list_condition(config),
        },
        {
            "Sid": f"{SID_PREFIX}ReadBucket",
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": arns.bucket,
        },
    ]
    kms = _kms_statement(config, ["kms:Decrypt"])
    if kms:
        statements.append(kms)
    return {"Version": POLICY_VERSION, "Statement": statements}


def _kms_statement(config: S3StorageConfig, actions: list[str]) -> dict[str, Any] | None:
    """KMS use for SSE-KMS: the configured key, or any key but only through S3."""
    if config.server_side_encryption != "aws:kms":
        return None
    arns = Arns(config)
    statement: dict[str, Any] = {"Sid": f"{SID_PREFIX}Kms", "Effect": "Allow", "Action": actions}
    if arns.kms_key:
        statement["Resource"] = arns.kms_key
    else:
        region = config.region or "*"
        statement["Resource"] = "*"
        statement["Condition"] = {"StringLike": {"kms:ViaService": f"s3.{region}.amazonaws.com"}}
    return statement


def documents(config: S3StorageConfig) -> dict[str, Any]:
    """Every document, by name (``cors`` is ``None`` without ``cors_origins``)."""
    return {
        "bucket": config.bucket,
        "bucket_policy": bucket_policy(config),
        "encryption": encryption(config),
        "public_access_block": public_access_block(config),
        "versioning": versioning(config),
        "lifecycle": lifecycle(config),
        "cors": cors(config),
        "iam_policy": iam_policy(config),
        "iam_read_only_policy": iam_read_only_policy(config),
    }
