"""The ``aecflow`` command line: the group, its global options and ``main``.

The commands live beside this module: :mod:`.local` (a flow in this process), :mod:`.runners`
(``worker``, ``serve``), :mod:`.admin` (plugins, events, tokens, audit, db), :mod:`.remote`
(``upload``, ``status`` over HTTP) and :mod:`.scaffold` (``plugin new``). Exit codes scripts
can rely on are named in :mod:`.exitcodes`. Every command that prints a record or a list
takes ``--json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from aecflow.cli import exitcodes
from aecflow.errors import AecflowError
from aecflow.loading.plugins import PluginHost


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
    from aecflow.cli import logs

    logs.configure(log_level)


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
        sys.exit(exitcodes.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exitcodes.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except AecflowError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(exc.exit_code)


# The commands register themselves on ``cli``: imported after it exists.
from aecflow.cli import admin, local, remote, runners, scaffold  # noqa: E402, F401
