"""The same documents as one CloudFormation template (``--format cloudformation``).

CloudFormation spells the bucket settings differently from the S3 API (``CorsRules`` vs
``CORSRules``, ``ServerSideEncryptionByDefault`` vs ``ApplyServerSideEncryptionByDefault``),
so each is translated from the API document rather than written twice.
"""

from __future__ import annotations

from typing import Any

from aecflow_storage_s3 import awsconfig
from aecflow_storage_s3.config import S3StorageConfig


def _encryption(document: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in document["Rules"]:
        rules.append(
            {
                "ServerSideEncryptionByDefault": dict(rule["ApplyServerSideEncryptionByDefault"]),
                "BucketKeyEnabled": rule["BucketKeyEnabled"],
            }
        )
    return {"ServerSideEncryptionConfiguration": rules}


def _lifecycle(document: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in document["Rules"]:
        cfn: dict[str, Any] = {"Id": rule["ID"], "Status": rule["Status"]}
        prefix = rule["Filter"].get("Prefix")
        if prefix:
            cfn["Prefix"] = prefix
        cfn["AbortIncompleteMultipartUpload"] = dict(rule["AbortIncompleteMultipartUpload"])
        cfn["NoncurrentVersionExpiration"] = dict(rule["NoncurrentVersionExpiration"])
        cfn["ExpiredObjectDeleteMarker"] = rule["Expiration"]["ExpiredObjectDeleteMarker"]
        rules.append(cfn)
    return {"Rules": rules}


def _cors(document: dict[str, Any]) -> dict[str, Any]:
    rules = []
    for rule in document["CORSRules"]:
        rules.append(
            {
                "Id": rule["ID"],
                "AllowedOrigins": rule["AllowedOrigins"],
                "AllowedMethods": rule["AllowedMethods"],
                "AllowedHeaders": rule["AllowedHeaders"],
                "ExposedHeaders": rule["ExposeHeaders"],
                "MaxAge": rule["MaxAgeSeconds"],
            }
        )
    return {"CorsRules": rules}


def template(config: S3StorageConfig) -> dict[str, Any]:
    """A template creating the bucket with every setting, its policy and both IAM policies.

    The bucket is retained when the stack is deleted: it holds the data.
    """
    docs = awsconfig.documents(config)
    bucket: dict[str, Any] = {
        "BucketName": config.bucket,
        "BucketEncryption": _encryption(docs["encryption"]),
        "PublicAccessBlockConfiguration": docs["public_access_block"],
        "VersioningConfiguration": docs["versioning"],
        "LifecycleConfiguration": _lifecycle(docs["lifecycle"]),
    }
    if docs["cors"] is not None:
        bucket["CorsConfiguration"] = _cors(docs["cors"])
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"aecflow storage: bucket {config.bucket}, its policy and IAM policies",
        "Resources": {
            "Bucket": {
                "Type": "AWS::S3::Bucket",
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": bucket,
            },
            "BucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": docs["bucket_policy"],
                },
            },
            "AecflowPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": f"What aecflow needs on {config.bucket} (attach to its role)",
                    "PolicyDocument": docs["iam_policy"],
                },
            },
            "ReadOnlyPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "Description": f"Read-only access to aecflow's objects in {config.bucket}",
                    "PolicyDocument": docs["iam_read_only_policy"],
                },
            },
        },
        "Outputs": {
            "BucketName": {"Value": {"Ref": "Bucket"}},
            "AecflowPolicyArn": {"Value": {"Ref": "AecflowPolicy"}},
            "ReadOnlyPolicyArn": {"Value": {"Ref": "ReadOnlyPolicy"}},
        },
    }
