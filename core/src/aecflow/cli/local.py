"""Commands that work on a local flow, in this process: ``ingest`` and ``files list|show``."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import Any

import click

from aecflow.cli import cli, exitcodes
from aecflow.cli.common import open_flow, pairs, quiet_settings, root_settings, run_async
from aecflow.cli.output import artifact_lines, print_json, print_record


@cli.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--project", "-p", required=True, help="Project the file belongs to.")
@click.option(
    "--meta", "-m", multiple=True, metavar="KEY=VALUE", help="User metadata (repeatable)."
)
@click.option("--content-type", help="Media type of the file.")
@click.option("--filename", help="Name to record (default: the file's own name).")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until processing has finished and its events are delivered.",
)
@click.option("--wait-timeout", default=3600.0, show_default=True, metavar="SECONDS")
@click.pass_context
@run_async
async def ingest(
    ctx: click.Context,
    file: Path,
    project: str,
    meta: tuple[str, ...],
    content_type: str | None,
    filename: str | None,
    as_json: bool,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Store FILE in PROJECT (in this process, no server needed) and print its record.

    By default the command waits for processing and notification (done by the worker embedded
    in this process, or by `aecflow worker` processes) and prints the final record. Exit code
    75 when it gave up waiting, 76 when an event of the file was dead-lettered (not delivered).
    """
    dead: list[dict[str, Any]] = []
    async with open_flow(root_settings(ctx)) as flow:
        record = await flow.ingest_file(
            project,
            file,
            filename=filename or file.name,
            content_type=content_type,
            metadata=pairs(meta, "--meta"),
        )
        if wait:
            try:
                record = await flow.wait_until_settled(record.id, timeout_s=wait_timeout)
            except TimeoutError:
                print_record(await flow.get(record.id), as_json)
                click.echo(
                    f"error: not settled after {wait_timeout:g} s; the file is stored, "
                    f"check `aecflow files show {record.id}`",
                    err=True,
                )
                sys.exit(exitcodes.TEMPFAIL)
            dead = await flow.undelivered(record.id)
    print_record(record, as_json)
    if dead:
        for letter in dead:
            click.echo(
                f"error: event {letter['event_type']} to {letter['destination']} was not "
                f"delivered after {letter['attempts']} attempt(s): {letter['last_error']}",
                err=True,
            )
        click.echo(
            f"error: {len(dead)} event(s) dead-lettered; the file is stored, see "
            "`aecflow events dead` and `aecflow events redeliver`",
            err=True,
        )
        sys.exit(exitcodes.UNDELIVERED)


@cli.group()
def files() -> None:
    """List and inspect stored files."""


@files.command("list")
@click.option("--project", "-p", required=True)
@click.option("--status", type=click.Choice(["stored", "processing", "processed", "failed"]))
@click.option("--filename", "filename_contains", help="Filename substring (case-insensitive).")
@click.option(
    "--meta", "-m", multiple=True, metavar="KEY=VALUE", help="Metadata filter (repeatable)."
)
@click.option("--created-after", type=click.DateTime(), help="UTC time, inclusive.")
@click.option("--created-before", type=click.DateTime(), help="UTC time, exclusive.")
@click.option(
    "--deleted",
    type=click.Choice(["exclude", "include", "only"]),
    default="exclude",
    show_default=True,
    help="Whether to list soft-deleted files.",
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", help="next_cursor from the previous page.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def files_list(
    ctx: click.Context,
    project: str,
    status: str | None,
    filename_contains: str | None,
    meta: tuple[str, ...],
    created_after: dt.datetime | None,
    created_before: dt.datetime | None,
    deleted: str,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """List a project's files, newest first."""
    from aecflow.store.files import FileQuery

    query = FileQuery(
        project=project,
        status=status,
        filename_contains=filename_contains,
        metadata=pairs(meta, "--meta"),
        created_after=created_after.replace(tzinfo=dt.UTC) if created_after else None,
        created_before=created_before.replace(tzinfo=dt.UTC) if created_before else None,
        deleted=deleted,
        limit=limit,
        cursor=cursor,
    )
    async with open_flow(quiet_settings(ctx)) as flow:
        page = await flow.list(query)
    if as_json:
        print_json(page.as_dict())
        return
    for item in page.items:
        click.echo(f"{item.id}  {item.status:10} {item.size:>12}  {item.filename}")
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}", err=True)


@files.command("show")
@click.argument("file_id")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def files_show(ctx: click.Context, file_id: str, as_json: bool) -> None:
    """Show one file's record: metadata, status, processing outcome, steps and artifacts."""
    async with open_flow(quiet_settings(ctx)) as flow:
        record = await flow.get(file_id)
        found = [] if record.deleted or record.purged else await flow.artifacts(file_id)
    print_record(record, as_json)  # --json: the record, the same shape as the API's
    if as_json:
        return
    from aecflow.files.pipeline import artifact_dict  # SQL-side module: not for every start-up

    for text in artifact_lines([artifact_dict(row) for row in found]):
        click.echo(text)


@files.command("artifact")
@click.argument("file_id")
@click.argument("name")
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the artifact ('-': standard output).",
)
@click.pass_context
@run_async
async def files_artifact(ctx: click.Context, file_id: str, name: str, output: Path) -> None:
    """Write artifact NAME of a file (as `files show` lists them) to --output, streamed."""
    async with open_flow(quiet_settings(ctx)) as flow:
        row = await flow.artifact(file_id, name)
        if str(output) == "-":
            async for chunk in flow.storage.open(row.storage_key):
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
            return
        partial = output.with_name(output.name + ".partial")
        with partial.open("wb") as handle:
            async for chunk in flow.storage.open(row.storage_key):
                handle.write(chunk)
        partial.replace(output)
    click.echo(f"{row.name}: {row.size} bytes, sha256 {row.sha256} -> {output}", err=True)


@files.command("reprocess")
@click.argument("file_id")
@click.option("--step", help="Run only this step again (as `files show` lists them).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def files_reprocess(
    ctx: click.Context, file_id: str, step: str | None, as_json: bool
) -> None:
    """Queue a file's processing again; with --step only that step (a worker runs it)."""
    async with open_flow(quiet_settings(ctx)) as flow:
        record = await flow.reprocess(file_id, step)
    print_record(record, as_json)
