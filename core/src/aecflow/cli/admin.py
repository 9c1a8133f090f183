"""Admin commands: ``plugins``, ``events dead|redeliver``, ``tokens``, ``audit`` and ``db``."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from typing import Any

import click

from aecflow.cli import cli, exitcodes
from aecflow.cli.common import open_flow, quiet_settings, root_settings, run_async
from aecflow.cli.output import print_json
from aecflow.errors import NotFound
from aecflow.loading.plugins import PluginHost


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List installed plugins: name, version, hooks, status and error (never settings)."""
    host = PluginHost().load()
    rows = [info.as_dict() for info in host.plugins]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(
            f"{row['name']:24} {row['version'] or '-':10} {row['status']:8} "
            f"{','.join(row['hooks'])}"
        )
        if row["error"]:
            click.echo(f"  error: {row['error']}")


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
    async with open_flow(quiet_settings(ctx)) as flow:
        page = await flow.dead_letters(limit=limit, cursor=cursor, destination=destination)
    if as_json:
        print_json(page)
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
    async with open_flow(quiet_settings(ctx)) as flow:
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
    async with open_flow(quiet_settings(ctx)) as flow:
        info, token = await flow.create_token(
            name=name,
            role=Role.parse(role),
            projects=["*"] if all_projects else projects,
            expires_in=parse_duration(expires) if expires else None,
        )
    if as_json:
        print_json(info.as_dict() | {"token": token})
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
    async with open_flow(quiet_settings(ctx)) as flow:
        infos = [info.as_dict() for info in await flow.list_tokens()]
    if as_json:
        print_json({"items": infos, "next_cursor": None})
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

    async with open_flow(quiet_settings(ctx)) as flow:
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
        print_json(info.as_dict())
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
    async with open_flow(quiet_settings(ctx)) as flow:
        page = await flow.audit.search(limit=limit, cursor=cursor, **filters)
    if as_json:
        print_json(page)
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
    settings = quiet_settings(ctx)
    if not settings.audit.hash_chain:
        click.echo(
            "error: the audit hash chain is off ([audit] hash_chain = false): nothing verified",
            err=True,
        )
        sys.exit(exitcodes.CHAIN_OFF)
    async with open_flow(settings) as flow:
        result = await flow.audit.verify()
    if result["ok"]:
        click.echo(f"audit chain intact: {result['checked']} rows verified")
    else:
        click.echo(
            f"audit chain broken at row {result['broken_at']} after {result['checked']} good rows",
            err=True,
        )
        sys.exit(exitcodes.FAILURE)


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

    settings = root_settings(ctx)
    engine = db_engine.create_engine(settings.database_url())
    try:
        await db_engine.upgrade(engine, revision)
        async with engine.connect() as conn:
            current = await db_engine.current_revision(conn)
    finally:
        await engine.dispose()
    click.echo(f"database at revision {current}")
