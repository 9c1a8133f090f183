"""The long-running commands: ``worker`` (jobs, events, upload sweeps) and ``serve`` (HTTP).

``worker`` runs exactly what an embedded flow runs (:meth:`Flow.background`), with this
command's concurrency, dispatch and grace; ``serve`` runs the host, and the host's flow runs
the same background work unless ``--no-worker``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
from typing import TYPE_CHECKING, Any

import click

from aecflow.cli import cli, exitcodes, logs
from aecflow.cli.common import (
    open_flow,
    quiet_settings,
    root_settings,
    run_async,
    without_worker,
)
from aecflow.errors import ConfigError

if TYPE_CHECKING:
    from aecflow.config import Settings

log = logging.getLogger("aecflow.cli")


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
    from aecflow.telemetry.sdk import configure

    logs.serving(ctx)
    settings = quiet_settings(ctx)  # the worker runs below, with this command's options
    flush_telemetry = configure(settings.telemetry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with (
        open_flow(settings) as flow,
        flow.background(concurrency=concurrency, dispatch=dispatch, grace_s=grace) as tasks,
    ):
        assert flow.worker is not None
        owner = flow.worker.owner
        log.warning("worker %s started: concurrency %d", owner, flow.worker.concurrency)
        await _until_stopped(stop, tasks)
    flush_telemetry()
    for task in tasks:  # a loop that died is this command's error, as before
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    log.warning("worker %s stopped", owner)


async def _until_stopped(stop: asyncio.Event, tasks: list[asyncio.Task[None]]) -> None:
    """Until ``stop`` is set or one of the background loops ends (it only ends by failing)."""
    waiter = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()


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

    from aecflow.host import create_app
    from aecflow.host.server import uvicorn_config

    logs.serving(ctx)
    settings = root_settings(ctx)
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
            failure.exit_code = exitcodes.UNAVAILABLE if in_use else exitcodes.CONFIG  # type: ignore[misc]
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

    async with open_flow(without_worker(settings)) as flow:
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
