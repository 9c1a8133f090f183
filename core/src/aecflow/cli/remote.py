"""Commands over HTTP: ``upload`` and ``status`` talk to a running server only (aecflow.client)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from aecflow.cli import cli, exitcodes
from aecflow.cli.common import pairs
from aecflow.cli.output import print_json, print_record_data
from aecflow.errors import InvalidInput

if TYPE_CHECKING:
    from aecflow.client import Progress

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Processing outcomes that are not a failure.
_GOOD_OUTCOMES = frozenset({"succeeded", "skipped"})


def _server_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--token",
        envvar="AECFLOW_TOKEN",
        help="Bearer token (default: $AECFLOW_TOKEN; not needed with [auth] mode = none).",
    )(func)
    return click.option(
        "--server",
        envvar="AECFLOW_SERVER",
        default=DEFAULT_SERVER,
        show_default=True,
        help="The aecflow server's URL (default: $AECFLOW_SERVER, else the local one).",
    )(func)


def _client_exit_code(exc: Exception) -> int:
    """The exit code for a failed call: the conventions of :mod:`aecflow.cli.exitcodes`."""
    from aecflow.client import ClientError

    if isinstance(exc, InvalidInput):  # refused before sending, as the server's 400 would be
        return exc.exit_code
    if not isinstance(exc, ClientError):
        # a local file that cannot be read
        return exitcodes.USAGE if isinstance(exc, OSError) else exitcodes.FAILURE
    if exc.status is None:
        return exitcodes.UNAVAILABLE if exc.code == "unreachable" else exitcodes.FAILURE
    if exc.status == 404:
        return exitcodes.NOT_FOUND
    if exc.status in (409, 410):
        return exitcodes.CONFLICT
    if exc.status == 429 or exc.status >= 500:
        return exitcodes.UNAVAILABLE
    if exc.status in (401, 403):
        return exitcodes.NOPERM  # as for the core's Forbidden
    return exitcodes.USAGE


class _FileBar(tqdm):
    """One file's progress bar, fed by the client's progress callback (``bar.on_progress``)."""

    def __init__(self, path: Path, position: int) -> None:
        name = path.name if len(path.name) <= 32 else path.name[:29] + "..."
        self.phase = "queued"
        self.resumed = 0
        self.started = self.stopped = 0.0
        super().__init__(
            total=path.stat().st_size,
            desc=name,
            unit="B",
            unit_scale=True,
            unit_divisor=1000,  # MB like the summary's MB/s, not MiB
            position=position,
            leave=True,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        self.set_postfix_str("queued")

    @property
    def format_dict(self) -> dict[str, Any]:
        """The clock stops when the file is done, so the final line keeps the file's own rate."""
        shown = super().format_dict
        if self.stopped:
            shown["elapsed"] = self.stopped - self.start_t
        return shown

    def on_progress(self, progress: Progress) -> None:
        if progress.phase != self.phase:
            if progress.phase in ("hashing", "uploading") and self.phase in ("queued", "hashing"):
                # rate and ETA count this run's bytes, not those already on the server
                self.reset(total=progress.total)
                self.initial = self.n = self.last_print_n = self.resumed = progress.sent
                self.started = self._time()
                if progress.resumed_parts:
                    self.write(
                        f"{progress.filename}: resuming, {progress.resumed_parts} of "
                        f"{progress.parts} parts already on the server",
                        file=sys.stderr,
                    )
            elif progress.phase == "done":
                self.stopped = self._time()
            self.phase = progress.phase
        if progress.phase == "hashing":
            percent = progress.hashed * 100 // max(progress.total, 1)
            self.set_postfix_str(f"hashing {percent}%", refresh=False)
        else:
            self.set_postfix_str(progress.phase, refresh=False)
        self.update(progress.sent - self.n)

    def rate(self) -> float:
        """MB/s of the bytes this run sent."""
        return (self.total - self.resumed) / max(self.stopped - self.started, 1e-6) / 1e6


@cli.command()
@click.argument(
    "paths",
    metavar="FILE...",
    nargs=-1,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--project", "-p", required=True, help="Project the files belong to.")
@_server_options
@click.option(
    "--meta", "-m", multiple=True, metavar="KEY=VALUE", help="User metadata (repeatable)."
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Large files go in parts through an upload session that stays open on the server "
    "when an upload is interrupted; uploading the same file again (same content, name and "
    "metadata) then sends only the parts that are missing. --no-resume always starts over.",
)
@click.option(
    "--parallel",
    "-j",
    default=4,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Parts of a large file sent at once.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@click.option("--wait", is_flag=True, help="Then wait until each file's processing has finished.")
def upload(
    paths: tuple[Path, ...],
    project: str,
    server: str,
    token: str | None,
    meta: tuple[str, ...],
    resume: bool,
    parallel: int,
    as_json: bool,
    wait: bool,
) -> None:
    """Upload FILEs to PROJECT on an aecflow server, with a progress bar per file.

    Small files go in one streamed request, large ones in parts, in parallel and resumable:
    after an interruption run the same command again. Exit code 0 when every file was
    uploaded, else the code of the first failure (69: server unreachable); with --wait, 1
    when a file's processing failed.
    """
    metadata = pairs(meta, "--meta")
    try:
        code = asyncio.run(
            _upload_files(paths, project, server, token, metadata, resume, parallel, as_json, wait)
        )
    except KeyboardInterrupt:
        click.echo("\ninterrupted: run the same command again to resume", err=True)
        sys.exit(exitcodes.INTERRUPTED)
    sys.exit(code)


async def _upload_files(
    paths: tuple[Path, ...],
    project: str,
    server: str,
    token: str | None,
    metadata: dict[str, str],
    resume: bool,
    parallel: int,
    as_json: bool,
    wait: bool,
) -> int:
    from tqdm.contrib.logging import logging_redirect_tqdm

    from aecflow.client import AsyncClient

    bars = [_FileBar(path, position) for position, path in enumerate(paths)]
    records: list[dict[str, Any] | None] = [None] * len(paths)
    failures: list[dict[str, Any]] = []
    exit_code = exitcodes.OK
    async with AsyncClient(server, token, part_concurrency=parallel) as client:
        try:
            with logging_redirect_tqdm():  # log lines (retries) above the bars, not in them
                for index, (path, bar) in enumerate(zip(paths, bars, strict=True)):
                    try:
                        records[index] = await client.upload(
                            path, project, metadata, resume=resume, progress=bar.on_progress
                        )
                    except Exception as exc:
                        bar.set_postfix_str("failed")
                        failures.append({"file": str(path), "error": _error_dict(exc)})
                        exit_code = exit_code or _client_exit_code(exc)
                        if failures[-1]["error"]["code"] == "unreachable":
                            # the others would wait out the same retries for the same reason
                            failures += _not_attempted(paths[index + 1 :])
                            break
        finally:
            for bar in bars:
                bar.close()
        for failure in failures:
            click.echo(f"error: {failure['file']}: {failure['error']['message']}", err=True)
        unprocessed = 0  # with --wait: files whose processing failed or could not be awaited
        if wait:
            for index, record in enumerate(records):
                if record is None:
                    continue
                try:
                    records[index] = record = await client.wait(record["id"])
                except Exception as exc:
                    click.echo(f"error: waiting for {record['id']}: {exc}", err=True)
                    exit_code = exit_code or _client_exit_code(exc)
                    unprocessed += 1
                    continue
                processing = record["processing"]
                if processing["outcome"] not in _GOOD_OUTCOMES:
                    click.echo(
                        f"error: {paths[index]}: processing {processing['outcome']}: "
                        f"{processing.get('error') or 'no reason given'}",
                        err=True,
                    )
                    exit_code = exit_code or exitcodes.FAILURE
                    unprocessed += 1
    uploaded = [(bar, record) for bar, record in zip(bars, records, strict=True) if record]
    if as_json:
        print_json({"uploaded": [record for _, record in uploaded], "failed": failures})
        return exit_code
    for bar, record in uploaded:
        click.echo(
            f"{record['id']}  {record['status']:10} {record['size']:>12}  "
            f"{record['sha256'][:12]}  {bar.rate():8.1f} MB/s  {record['filename']}"
        )
    summary = f"{len(uploaded)} uploaded, {len(paths) - len(uploaded)} failed"
    click.echo(summary + (f", {unprocessed} failed processing" if wait else ""))
    return exit_code


def _error_dict(exc: Exception) -> dict[str, str]:
    return {
        "code": getattr(exc, "code", None) or type(exc).__name__,
        "message": getattr(exc, "message", None) or str(exc),
    }


def _not_attempted(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    error = {"code": "not_attempted", "message": "not attempted: the server is unreachable"}
    return [{"file": str(path), "error": error} for path in paths]


@cli.command("status")
@click.argument("file_id")
@_server_options
@click.option("--wait", is_flag=True, help="Poll until the file's processing has finished.")
@click.option(
    "--timeout", type=float, metavar="SECONDS", help="Give up waiting after SECONDS (exit 75)."
)
@click.option("--json", "as_json", is_flag=True)
def status_command(
    file_id: str, server: str, token: str | None, wait: bool, timeout: float | None, as_json: bool
) -> None:
    """Show a file's record from an aecflow server; --wait polls until processing finished.

    Exit code 0, or 1 when the processing outcome is a failure (3: no such file, 69: server
    unreachable, 75: still processing after --timeout).
    """
    from aecflow.client import AsyncClient

    async def fetch() -> tuple[dict[str, Any], bool]:
        async with AsyncClient(server, token) as client:
            if not wait:
                return await client.status(file_id), False
            try:
                return await client.wait(file_id, timeout=timeout), False
            except TimeoutError:
                return await client.status(file_id), True

    try:
        record, timed_out = asyncio.run(fetch())
    except Exception as exc:
        click.echo(f"error: {getattr(exc, 'message', None) or exc}", err=True)
        sys.exit(_client_exit_code(exc))
    print_record_data(record, as_json)
    if timed_out:
        click.echo(f"error: processing not finished after {timeout:g} s", err=True)
        sys.exit(exitcodes.TEMPFAIL)
    outcome = record["processing"]["outcome"]
    if outcome is not None and outcome not in _GOOD_OUTCOMES:
        sys.exit(exitcodes.FAILURE)
