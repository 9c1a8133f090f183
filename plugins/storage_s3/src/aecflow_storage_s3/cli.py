"""``aecflow s3 config``: print (and optionally apply) the bucket's AWS configuration."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import click

from aecflow.config import Settings, load_settings, resolve_secrets, validate
from aecflow.errors import ConfigError
from aecflow_storage_s3 import awsconfig, cloudformation
from aecflow_storage_s3.config import S3StorageConfig


def storage_config(settings: Settings) -> S3StorageConfig:
    """The validated ``[storage]`` table; ``ConfigError`` unless the backend is ``s3``."""
    if settings.storage.backend != "s3":
        raise ConfigError(
            f'[storage] backend is {settings.storage.backend!r}; `aecflow s3` needs backend = "s3"'
        )
    where = "[storage] storage backend 's3'"
    options = resolve_secrets(settings.storage.options(), where)
    return validate(S3StorageConfig, options, where=where)


@click.group("s3")
def s3() -> None:
    """S3 storage: the AWS configuration that keeps the bucket safe."""


@s3.command("config")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["json", "cloudformation"]),
    default="json",
    show_default=True,
    help="json: every document by name; cloudformation: one template with all of them.",
)
@click.option(
    "--only",
    type=click.Choice(awsconfig.DOCUMENTS),
    help="Print one JSON document, as `aws s3api ... file://doc.json` takes it.",
)
@click.option("--apply", is_flag=True, help="Apply the documents to the bucket and IAM.")
@click.option("--skip-iam", is_flag=True, help="With --apply: leave IAM alone.")
@click.pass_context
def config_command(
    ctx: click.Context, output_format: str, only: str | None, apply: bool, skip_iam: bool
) -> None:
    """Print the bucket policy, default encryption, public access block, versioning,
    lifecycle rule, CORS rule and IAM policies for the configured bucket.

    The bucket policy denies plain HTTP and puts that ask for another encryption; the
    lifecycle rule aborts incomplete multipart uploads and expires noncurrent versions; the
    IAM policies are least privilege for aecflow's role and read-only for other services.
    """
    config = storage_config(load_settings(ctx.find_root().params.get("config")))
    output: Any
    if output_format == "cloudformation":
        if only:
            raise click.UsageError("--only is for --format json")
        output = cloudformation.template(config)
    elif only:
        output = awsconfig.documents(config)[only]
        if output is None:
            raise click.UsageError(f"there is no {only} document: set [storage] cors_origins")
    else:
        output = awsconfig.documents(config)
    click.echo(json.dumps(output, indent=2))
    if apply:
        from aecflow_storage_s3.apply import apply_all

        summary = asyncio.run(apply_all(config, iam=not skip_iam))
        click.echo(
            f"applied to bucket {summary['bucket']} ({summary['region']}): "
            + ", ".join(summary["applied"]),
            err=True,
        )
        for document, arn in summary.get("iam_policies", {}).items():
            click.echo(f"{document}: {arn} (attach it to the role)", err=True)
