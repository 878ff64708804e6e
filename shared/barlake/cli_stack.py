"""`barlake stack up|down|env`: the local cloud stack (emulators + functions) from the shell.

Kept apart from cli.py: it is a developer tool that needs gcloud and the functions-framework,
while the rest of the CLI works on a bare laptop.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from barlake import stack
from barlake.config import ConfigError
from barlake.emulators import EmulatorUnavailable

stack_app = typer.Typer(
    no_args_is_help=True,
    help="The local cloud stack: fake-gcs-server, Pub/Sub and Firestore emulators, functions.",
)
out = Console(width=120)
err = Console(stderr=True)

DirOption = Annotated[
    Path, typer.Option("--dir", help="Where the stack keeps its data, logs and stack.json.")
]
DEFAULT_DIR = Path(".stack")


def _fail(message: str) -> None:
    one_line = " ".join(message.split())  # emulator and client errors span lines; ours do not
    err.print(f"barlake: error: {one_line}", highlight=False, markup=False, soft_wrap=True)
    raise typer.Exit(2)


@stack_app.command("up")
def stack_up(
    directory: DirOption = DEFAULT_DIR,
    provider: Annotated[
        str | None, typer.Option(help="Bar source for ingest: yahoo or replay:DIR.")
    ] = None,
) -> None:
    """Start the emulators and every function; print where everything is."""
    env = {"BARLAKE_PROVIDER": provider} if provider else {}
    if provider and provider.startswith("replay:"):
        folder = Path(provider.removeprefix("replay:")).resolve()
        if not folder.is_dir():
            _fail(f"replay folder not found: {folder}")
        env["BARLAKE_PROVIDER"] = f"replay:{folder}"
    try:
        info = stack.up(directory, env)
    except (EmulatorUnavailable, ConfigError) as exc:
        _fail(str(exc))
    except Exception as exc:  # an emulator or client error: one line, the logs say more
        _fail(f"{exc or type(exc).__name__} (logs in {directory / 'logs'})")
    table = Table(title=f"local cloud stack ({info.project})", title_justify="left")
    for col in ("component", "pid", "url", "log"):
        table.add_column(col)
    for c in info.components:
        table.add_row(c.name, str(c.pid), c.url, c.log)
    out.print(table)
    out.print(
        f'environment for clients and the CLI:  eval "$(barlake stack env --dir {directory})"'
    )
    out.print(f"stop it:  barlake stack down --dir {directory}")


@stack_app.command("down")
def stack_down(directory: DirOption = DEFAULT_DIR) -> None:
    """Stop exactly the processes `stack up` started (by process group)."""
    stopped = stack.down(directory)
    if not stopped:
        out.print(f"nothing running from {directory}")
    for c in stopped:
        out.print(f"stopped {c.name} (pid {c.pid})")


@stack_app.command("env")
def stack_env(directory: DirOption = DEFAULT_DIR) -> None:
    """Print `export` lines pointing clients and the CLI at the running stack."""
    info = stack.StackInfo.load(directory.resolve())
    if info is None:
        _fail(f"no stack running from {directory} (barlake stack up)")
        return
    for key, value in sorted(info.env.items()):
        print(f"export {key}={shlex.quote(value)}")
