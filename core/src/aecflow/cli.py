"""The ``aecflow`` command line.

Exit codes scripts can rely on: 0 success, 1 unexpected error, 2 invalid input or usage,
3 not found, 4 conflict, 69 a dependency unavailable (or `serve`'s address in use), 75 gave
up waiting, 76 `ingest`: events dead-lettered, 77 not permitted (a missing, unknown or
insufficient token), 78 configuration or plugin error (and `audit verify` with the chain off).
Every command that prints a record or a list takes ``--json``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import errno
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from tqdm import tqdm

from aecflow.errors import AecflowError, ConfigError, InvalidInput, NotFound
from aecflow.loading.plugins import PluginHost

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from aecflow.client import Progress
    from aecflow.config import Settings
    from aecflow.flow import Flow
    from aecflow.store.records import FileRecord

log = logging.getLogger("aecflow.cli")
#: ``ingest``: the file is stored and processed, but some of its events were dead-lettered.
EXIT_UNDELIVERED = 76
#: ``audit verify``: there is no chain to verify ([audit] hash_chain is off).
EXIT_CHAIN_OFF = 78


def _settings(ctx: click.Context) -> Settings:
    from aecflow.config import load_settings

    return load_settings(ctx.find_root().params.get("config"))


def _open_flow(settings: Settings) -> AbstractAsyncContextManager[Flow]:
    """``Flow.open``, imported on first use: ``upload`` and ``status`` start without the
    database layer."""
    from aecflow.flow import Flow

    return Flow.open(settings)


def _quiet_settings(ctx: click.Context) -> Settings:
    """Settings for commands that only read or edit records: no embedded worker."""
    settings = _settings(ctx)
    return settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"embedded": False})}
    )


def run_async(func: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """Run an async command body with ``asyncio.run``."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(func(*args, **kwargs))

    return wrapper


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep:
            raise InvalidInput(f"{option} expects key=value, got {value!r}")
        pairs[key] = item
    return pairs


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _print_record(record: FileRecord, as_json: bool) -> None:
    _print_record_data(record.as_dict(), as_json)


def _print_record_data(data: dict[str, Any], as_json: bool) -> None:
    """A record as JSON or as aligned lines; also for records that came over HTTP."""
    if as_json:
        _print_json(data)
        return
    from aecflow.cli_output import record_lines

    for line in record_lines(data):
        click.echo(line)


def hoist_config(args: list[str]) -> list[str]:
    """Move ``--config FILE`` / ``-c FILE`` found after the command name to the front, so
    ``aecflow serve --config FILE`` works like ``aecflow --config FILE serve`` for every
    command (none of them has a ``-c`` or ``--config`` of its own); ``--`` ends the search."""
    front: list[str] = []
    rest: list[str] = []
    values = iter(args)
    for arg in values:
        if arg == "--":
            rest.append(arg)
            rest.extend(values)
        elif arg in ("--config", "-c"):
            front.extend([arg, *[v for v in [next(values, None)] if v is not None]])
        elif arg.startswith("--config="):
            front.append(arg)
        else:
            rest.append(arg)
    return [*front, *rest]


class _Cli(click.Group):
    """The ``aecflow`` group: accepts ``--config`` before or after the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_config(args))


@click.group(cls=_Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file, before or after the command "
    "(default: $AECFLOW_CONFIG, else the embedded defaults).",
)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.version_option(package_name="aecflow")
def cli(config: Path | None, log_level: str) -> None:
    """aecflow: ingest, store, process and announce building models and other large files."""
    from aecflow import cli_logging

    cli_logging.configure(log_level)


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
    async with _open_flow(_settings(ctx)) as flow:
        record = await flow.ingest_file(
            project,
            file,
            filename=filename or file.name,
            content_type=content_type,
            metadata=_pairs(meta, "--meta"),
        )
        if wait:
            try:
                record = await flow.wait_until_settled(record.id, timeout_s=wait_timeout)
            except TimeoutError:
                _print_record(await flow.get(record.id), as_json)
                click.echo(
                    f"error: not settled after {wait_timeout:g} s; the file is stored, "
                    f"check `aecflow files show {record.id}`",
                    err=True,
                )
                sys.exit(75)  # EX_TEMPFAIL
            dead = await flow.undelivered(record.id)
    _print_record(record, as_json)
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
        sys.exit(EXIT_UNDELIVERED)


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
        metadata=_pairs(meta, "--meta"),
        created_after=created_after.replace(tzinfo=dt.UTC) if created_after else None,
        created_before=created_before.replace(tzinfo=dt.UTC) if created_before else None,
        deleted=deleted,
        limit=limit,
        cursor=cursor,
    )
    async with _open_flow(_quiet_settings(ctx)) as flow:
        page = await flow.list(query)
    if as_json:
        _print_json(page.as_dict())
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
    """Show one file's record: metadata, status and processing outcome."""
    async with _open_flow(_quiet_settings(ctx)) as flow:
        record = await flow.get(file_id)
    _print_record(record, as_json)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List installed plugins: name, version, hooks, status and error (never settings)."""
    host = PluginHost().load()
    rows = [info.as_dict() for info in host.plugins]
    if as_json:
        _print_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['name']:24} {row['version'] or '-':10} {row['status']:8} "
            f"{','.join(row['hooks'])}"
        )
        if row["error"]:
            click.echo(f"  error: {row['error']}")


@cli.command()
@click.option(
    "--concurrency",
    "-n",
    type=click.IntRange(1, 256),
    help="Files processed at once (default: [processing] concurrency).",
)
@click.option(
    "--dispatch/--no-dispatch",
    default=True,
    show_default=True,
    help="Also deliver outbox events from this process.",
)
@click.option(
    "--grace",
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="On SIGTERM, how long running jobs may take before they are handed back.",
)
@click.pass_context
@run_async
async def worker(ctx: click.Context, concurrency: int | None, dispatch: bool, grace: float) -> None:
    """Process jobs (and deliver events) until SIGTERM or Ctrl-C.

    Run as many as you like, on as many machines as share the database: they claim work with
    leases. Workers also remove the parts of expired and aborted upload sessions. On SIGTERM
    a worker stops claiming, lets running jobs finish for up to --grace seconds, then hands
    the rest back to the queue. Logs one line per processed file (INFO) unless --log-level is
    given.
    """
    from aecflow import cli_logging
    from aecflow.jobs.worker import Worker
    from aecflow.outbox.dispatcher import Dispatcher
    from aecflow.telemetry.sdk import configure

    cli_logging.serving(ctx)
    settings = _quiet_settings(ctx)
    flush_telemetry = configure(settings.telemetry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with _open_flow(settings) as flow:
        runner = Worker(flow.runtime, concurrency=concurrency)
        log.warning("worker %s started: concurrency %d", runner.owner, runner.concurrency)
        tasks = [runner.run(stop, grace_s=grace), flow.uploads.run_sweeper(stop)]
        if dispatch:
            tasks.append(Dispatcher(flow.runtime).run(stop))
        await asyncio.gather(*tasks)
    flush_telemetry()
    log.warning("worker %s stopped", runner.owner)


@cli.command()
@click.option("--host", "-h", "host", help="Address to bind (default: [server] host, 127.0.0.1).")
@click.option(
    "--port",
    "-p",
    type=click.IntRange(0, 65535),
    help="Port (default: [server] port, 8000; 0 picks a free one).",
)
@click.option(
    "--worker/--no-worker",
    default=True,
    show_default=True,
    help="Run a worker and the event dispatcher in this process "
    "(--no-worker leaves them to `aecflow worker`).",
)
@click.pass_context
@run_async
async def serve(ctx: click.Context, host: str | None, port: int | None, worker: bool) -> None:
    """Run the HTTP host until SIGTERM or Ctrl-C.

    Logs one line per request and per processed file (INFO) unless --log-level is given.
    """
    import uvicorn

    from aecflow import cli_logging
    from aecflow.host import create_app
    from aecflow.host.server import uvicorn_config

    cli_logging.serving(ctx)
    settings = _settings(ctx)
    bind = host or settings.server.host
    if settings.auth.mode == "none" and not _is_loopback(bind):
        raise ConfigError(
            f'[auth] mode = "none" is refused on {bind!r}: without '
            "authentication the host may only listen on a loopback address"
        )
    if settings.auth.mode == "token":
        await _bootstrap_admin_token(settings)
    from aecflow.telemetry.sdk import configure

    flush_telemetry = configure(settings.telemetry)
    app = create_app(settings, worker=worker and settings.worker.embedded)
    config = uvicorn_config(
        app,
        settings,
        host=bind,
        port=settings.server.port if port is None else port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    bind_errors = _BindErrors()
    task = asyncio.create_task(_serve_until_done(server, bind_errors))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    if server.started:
        for sock in (s for srv in server.servers for s in srv.sockets):
            address, bound = sock.getsockname()[:2]
            shown = f"[{address}]" if ":" in address else address
            click.echo(f"aecflow listening on http://{shown}:{bound}", err=True)
    await task
    flush_telemetry()
    if not server.started:
        failure = click.ClickException("the server did not start; see the messages above")
        if bind_errors.error is not None:
            code = bind_errors.error.errno
            in_use = code == errno.EADDRINUSE
            failure = click.ClickException(
                f"cannot listen on {bind}:{config.port}: "
                + (os.strerror(code) if code else str(bind_errors.error))
                + ("; is another server running there? choose one with --port" if in_use else "")
            )
            # click types exit_code as a ClassVar, but reads it from the instance
            failure.exit_code = 69 if in_use else 78  # type: ignore[misc]  # EX_UNAVAILABLE, else EX_CONFIG
        raise failure


class _BindErrors(logging.Filter):
    """Keeps the OSError uvicorn logs when it cannot bind (it then exits with its own code)."""

    def __init__(self) -> None:
        super().__init__()
        self.error: OSError | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, OSError):
            self.error = record.msg
        return True


async def _serve_until_done(server: Any, bind_errors: _BindErrors) -> None:
    """``server.serve()``, without uvicorn's ``sys.exit(3)`` on a failed start: 3 is our
    not-found code, so ``serve`` reports the failure and its own exit code instead."""
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(bind_errors)
    try:
        await server.serve()
    except SystemExit:
        if server.started:
            raise
    finally:
        uvicorn_log.removeFilter(bind_errors)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _bootstrap_admin_token(settings: Settings) -> None:
    """First start: create an admin token and print it once, so a new install is usable."""
    from aecflow.actor import Role

    quiet = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"embedded": False})}
    )
    async with _open_flow(quiet) as flow:
        if await flow.list_tokens():
            return
        info, token = await flow.create_token(
            name="admin (created on first start)", role=Role.ADMIN, projects=["*"]
        )
    click.echo(
        f"created admin token {info.id}; it is shown once, store it now:\n\n"
        f"    export AECFLOW_TOKEN={token}\n",
        err=True,
    )


@cli.group()
def events() -> None:
    """Inspect and redeliver events that could not be delivered."""


@events.command("dead")
@click.option("--destination", help="Only this notifier destination.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def events_dead(
    ctx: click.Context, destination: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """List dead letters, newest first, with their last error."""
    async with _open_flow(_quiet_settings(ctx)) as flow:
        page = await flow.dead_letters(limit=limit, cursor=cursor, destination=destination)
    if as_json:
        _print_json(page)
        return
    if not page["items"]:
        click.echo("no dead letters" + (" after this cursor" if cursor else ""), err=True)
    for item in page["items"]:
        click.echo(
            f"{item['id']}  {item['destination']:12} {item['event_type']:24} "
            f"attempts={item['attempts']}  {item['last_error']}"
        )
    if page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


@events.command("redeliver")
@click.argument("ids", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Redeliver every dead letter.")
@click.pass_context
@run_async
async def events_redeliver(ctx: click.Context, ids: tuple[str, ...], everything: bool) -> None:
    """Put dead letters (by ID, or --all) back in the queue with fresh attempts."""
    if bool(ids) == everything:
        raise click.UsageError("give dead-letter IDs or --all")
    async with _open_flow(_quiet_settings(ctx)) as flow:
        count = await flow.redeliver(None if everything else list(ids))
    click.echo(f"{count} event(s) queued for redelivery")
    if ids and count < len(ids):
        raise NotFound(f"{len(ids) - count} of the given ids are not dead letters")


@cli.group("tokens")
def tokens_group() -> None:
    """Create, list and revoke API tokens (the token is shown once; only a hash is kept)."""


@tokens_group.command("create")
@click.option("--name", required=True, help="What the token is for.")
@click.option("--project", "projects", multiple=True, help="A project it may reach (repeatable).")
@click.option("--all-projects", is_flag=True, help="Every project, present and future.")
@click.option(
    "--role",
    type=click.Choice(["reader", "writer", "admin"]),
    required=True,
    help="reader: list, get, download; writer: + upload, delete, restore, reprocess; "
    "admin: + purge, dead letters, audit, plugins, tokens.",
)
@click.option("--expires", help="Lifetime, e.g. 90d, 12h (default: never).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def tokens_create(
    ctx: click.Context,
    name: str,
    projects: tuple[str, ...],
    all_projects: bool,
    role: str,
    expires: str | None,
    as_json: bool,
) -> None:
    """Create a token and print it once."""
    from aecflow.access.tokens import parse_duration
    from aecflow.actor import Role

    if bool(projects) == all_projects:
        raise click.UsageError("give --project P (repeatable) or --all-projects")
    async with _open_flow(_quiet_settings(ctx)) as flow:
        info, token = await flow.create_token(
            name=name,
            role=Role.parse(role),
            projects=["*"] if all_projects else projects,
            expires_in=parse_duration(expires) if expires else None,
        )
    if as_json:
        _print_json(info.as_dict() | {"token": token})
        return
    click.echo(token)
    click.echo(
        f"token {info.id} ({info.role}, projects {', '.join(info.projects)}): "
        "store it now, it is not shown again",
        err=True,
    )


@tokens_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def tokens_list(ctx: click.Context, as_json: bool) -> None:
    """List tokens (never the tokens themselves)."""
    async with _open_flow(_quiet_settings(ctx)) as flow:
        infos = [info.as_dict() for info in await flow.list_tokens()]
    if as_json:
        _print_json({"items": infos, "next_cursor": None})
        return
    for info in infos:
        state = "revoked" if info["revoked_at"] else "active"
        click.echo(
            f"{info['id']}  {info['role']:6} {state:7} {','.join(info['projects']):20} "
            f"{info['name']}  expires={info['expires_at'] or 'never'}"
        )


@tokens_group.command("revoke")
@click.argument("token")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
@run_async
async def tokens_revoke(ctx: click.Context, token: str, as_json: bool) -> None:
    """Revoke a token at once, named by its id or by its name when that is unique
    (exit 3 when nothing matches, 4 when several tokens share the name)."""
    from aecflow.errors import Conflict

    async with _open_flow(_quiet_settings(ctx)) as flow:
        infos = await flow.list_tokens()
        token_id = token
        if not any(info.id == token for info in infos):
            named = [info for info in infos if info.name == token]
            if not named:
                raise NotFound(f"no token has the id or name {token!r}", code="token_not_found")
            if len(named) > 1:
                ids = ", ".join(info.id for info in named)
                raise Conflict(
                    f"{len(named)} tokens are named {token!r} ({ids}): revoke one by its id",
                    code="token_name_ambiguous",
                )
            token_id = named[0].id
        info = await flow.revoke_token(token_id)
    if as_json:
        _print_json(info.as_dict())
    else:
        click.echo(f"token {info.id} revoked")


@cli.group("audit", invoke_without_command=True)
@click.option("--action")
@click.option("--actor")
@click.option("--project")
@click.option("--file", "file_id")
@click.option("--outcome", type=click.Choice(["ok", "error", "denied"]))
@click.option("--since", type=click.DateTime(), help="UTC time, inclusive.")
@click.option("--until", type=click.DateTime(), help="UTC time, exclusive.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_group(ctx: click.Context, **options: Any) -> None:
    """Read the audit log, newest first; `aecflow audit verify` checks its hash chain."""
    if ctx.invoked_subcommand is None:
        asyncio.run(_audit_list(ctx, **options))


async def _audit_list(
    ctx: click.Context,
    action,
    actor,
    project,
    file_id,
    outcome,
    since,
    until,
    limit,
    cursor,
    as_json,
) -> None:
    filters = {
        "action": action,
        "actor": actor,
        "project": project,
        "file_id": file_id,
        "outcome": outcome,
        "since": since.replace(tzinfo=dt.UTC) if since else None,
        "until": until.replace(tzinfo=dt.UTC) if until else None,
    }
    async with _open_flow(_quiet_settings(ctx)) as flow:
        page = await flow.audit.search(limit=limit, cursor=cursor, **filters)
    if as_json:
        _print_json(page)
        return
    for row in page["items"]:
        click.echo(
            f"{row['at']}  {row['action']:22} {row['outcome']:6} {row['actor']:44} "
            f"{row['project'] or '-':12} {row['file_id'] or '-'}"
        )
    if page["next_cursor"]:
        click.echo(f"more: --cursor {page['next_cursor']}", err=True)


@audit_group.command("verify")
@click.pass_context
@run_async
async def audit_verify(ctx: click.Context) -> None:
    """Walk the hash chain ([audit] hash_chain = true); exit 1 at the first broken row.

    Exit code 78 when the chain is off: there is nothing to verify.
    """
    settings = _quiet_settings(ctx)
    if not settings.audit.hash_chain:
        click.echo(
            "error: the audit hash chain is off ([audit] hash_chain = false): nothing verified",
            err=True,
        )
        sys.exit(EXIT_CHAIN_OFF)
    async with _open_flow(settings) as flow:
        result = await flow.audit.verify()
    if result["ok"]:
        click.echo(f"audit chain intact: {result['checked']} rows verified")
    else:
        click.echo(
            f"audit chain broken at row {result['broken_at']} after {result['checked']} good rows",
            err=True,
        )
        sys.exit(1)


@cli.group()
def db() -> None:
    """Manage the metadata store's schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
@run_async
async def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply migrations up to REVISION."""
    from aecflow.store import engine as db_engine

    settings = _settings(ctx)
    engine = db_engine.create_engine(settings.database_url())
    try:
        await db_engine.upgrade(engine, revision)
        async with engine.connect() as conn:
            current = await db_engine.current_revision(conn)
    finally:
        await engine.dispose()
    click.echo(f"database at revision {current}")


# --- Over HTTP: `aecflow upload` and `aecflow status` talk to a running server only. ---

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
    """The exit code for a failed call: the conventions at the top of this module."""
    from aecflow.client import ClientError

    if isinstance(exc, InvalidInput):  # refused before sending, as the server's 400 would be
        return exc.exit_code
    if not isinstance(exc, ClientError):
        return 2 if isinstance(exc, OSError) else 1  # a local file that cannot be read
    if exc.status is None:
        return 69 if exc.code == "unreachable" else 1
    if exc.status == 404:
        return 3
    if exc.status in (409, 410):
        return 4
    if exc.status == 429 or exc.status >= 500:
        return 69
    if exc.status in (401, 403):
        return 77  # EX_NOPERM, as for the core's Forbidden
    return 2


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
    metadata = _pairs(meta, "--meta")
    try:
        code = asyncio.run(
            _upload_files(paths, project, server, token, metadata, resume, parallel, as_json, wait)
        )
    except KeyboardInterrupt:
        click.echo("\ninterrupted: run the same command again to resume", err=True)
        sys.exit(130)
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
    exit_code = 0
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
                    exit_code = exit_code or 1
                    unprocessed += 1
    uploaded = [(bar, record) for bar, record in zip(bars, records, strict=True) if record]
    if as_json:
        _print_json({"uploaded": [record for _, record in uploaded], "failed": failures})
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
    _print_record_data(record, as_json)
    if timed_out:
        click.echo(f"error: processing not finished after {timeout:g} s", err=True)
        sys.exit(75)  # EX_TEMPFAIL
    outcome = record["processing"]["outcome"]
    if outcome is not None and outcome not in _GOOD_OUTCOMES:
        sys.exit(1)


#: Options of the ``aecflow`` group that take a value (the command name comes after them).
_GROUP_OPTIONS_WITH_VALUE = frozenset({"--config", "-c", "--log-level"})


def invoked_command(args: list[str]) -> str | None:
    """The command name on a command line (``aecflow -c x.toml files list`` -> ``files``)."""
    values = iter(args)
    for arg in values:
        if arg in _GROUP_OPTIONS_WITH_VALUE:
            next(values, None)
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> None:
    """Entry point: plugins may add commands; known errors become messages and exit codes.

    Plugins are loaded for their commands only when the command line does not name one of
    ours: the core's commands load plugins themselves when they open a flow (or need none, as
    ``upload`` and ``status``), so they start without loading every plugin twice.
    """
    try:
        if invoked_command(sys.argv[1:]) not in cli.commands:
            PluginHost().load().register_commands(cli)
    except AecflowError as exc:  # strict plugin loading failed
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    from aecflow.actor import Actor, acting_as

    try:
        with acting_as(Actor(id="cli")):
            cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except AecflowError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
