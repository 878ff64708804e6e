"""`barlake universe list|show|add|remove|import|export`: named, dated symbol lists.

Kept apart from cli.py (registered there with one add_typer line). Universes live in the state
store of the lake the settings name: the embedded SQLite by default, Firestore with
BARLAKE_STATE=firestore. Exit codes are cli.py's: 2 bad input, 4 no such universe.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from barlake.config import App
from barlake.core.universe import InvalidUniverseError, validate_name
from barlake.services.universes import UniverseNotFoundError

# cli.py registers this group when it is imported, so its helpers are imported lazily (below)
# rather than at the top: `python -m barlake.cli` would otherwise import cli.py twice in a cycle.
EXIT_NOT_FOUND = 4
LakeOption = Annotated[
    str | None, typer.Option("--lake", help="Lake folder (default: $BARLAKE_LAKE_DIR or ./lake).")
]


def fail(message: str, code: int = 2) -> NoReturn:
    from barlake.cli import fail

    fail(message, code)


def parse_date(value: str | None, name: str) -> date | None:
    from barlake.cli import parse_date

    return parse_date(value, name)


def parse_symbols(values: list[str]) -> list[str]:
    from barlake.cli import parse_symbols

    return parse_symbols(values)


def out() -> Console:
    from barlake.cli import out

    return out


universe_app = typer.Typer(
    no_args_is_help=True,
    help="Named symbol lists with dated membership (point-in-time: --as-of).",
)

NameArg = Annotated[str, typer.Argument(help="Universe name, e.g. sp500 (a-z 0-9 . _ -).")]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="Members on this day (YYYY-MM-DD); default today.")
]


def _name(value: str) -> str:
    try:
        return validate_name(value)
    except InvalidUniverseError as exc:
        fail(str(exc))


def _lake(lake: str | None, *, existing: bool = False) -> App:
    from barlake.cli import open_lake, settings

    return open_lake(settings(lake), existing=existing)


def members_for_run(app_: App, name: str, day: date | None) -> list[str]:
    """The members a `barlake run --universe NAME` covers (exit 4 if unknown, 2 if empty)."""
    named = app_.universes.members_on(name, day or app_.universes.today())
    if named is None:
        fail(f"no universe named {name!r} and no such file (barlake universe list)", EXIT_NOT_FOUND)
    if not named:
        fail(f"universe {name!r} has no members on {day or app_.universes.today()}")
    return named


@universe_app.command("list")
def list_(as_of: AsOfOption = None, lake: LakeOption = None) -> None:
    """Every universe: tags, source, members today (or --as-of) and ever."""
    day = parse_date(as_of, "--as-of")
    rows = _lake(lake).universes.summaries(day)
    table = Table(title=f"universes (members on {day or 'today'})", title_justify="left")
    for col in ("name", "tags", "source", "members", "ever"):
        table.add_column(col, justify="right" if col in ("members", "ever") else "left")
    for r in rows:
        table.add_row(
            r["name"], ",".join(r["tags"]), r["source"], str(r["members"]), str(r["ever_members"])
        )
    out().print(table if rows else "no universes yet: barlake universe import NAME FILE.csv")


@universe_app.command()
def show(
    name: NameArg,
    as_of: AsOfOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lake: LakeOption = None,
) -> None:
    """The members of a universe on a day (default today)."""
    day = parse_date(as_of, "--as-of")
    try:
        shown = _lake(lake).universes.show(_name(name), day)
    except UniverseNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    if as_json:
        out().print_json(json.dumps(shown))
        return
    tags = f" [{', '.join(shown['tags'])}]" if shown["tags"] else ""
    out().print(
        f"{shown['name']}{tags} · source {shown['source'] or '-'} · "
        f"{shown['count']} members on {shown['as_of']}"
    )
    out().print(" ".join(shown["symbols"]), soft_wrap=True)


@universe_app.command()
def add(
    name: NameArg,
    symbols: Annotated[list[str], typer.Argument(help="Symbols that join.")],
    since: Annotated[
        str | None, typer.Option(help="First day of membership (YYYY-MM-DD); default today.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag the universe (repeatable).")] = None,
    lake: LakeOption = None,
) -> None:
    """Add members (creating the universe if new); earlier history is never rewritten."""
    wanted = parse_symbols(symbols)
    day = parse_date(since, "--since")
    app_ = _lake(lake)
    try:
        if tag:
            app_.universes.create(_name(name), tag)
        app_.universes.add(_name(name), wanted, day)
        now = app_.universes.show(name)["symbols"]
    except InvalidUniverseError as exc:
        fail(str(exc))
    out().print(f"{name}: {len(now)} members today")


@universe_app.command()
def remove(
    name: NameArg,
    symbols: Annotated[list[str], typer.Argument(help="Symbols that leave.")],
    on: Annotated[
        str | None, typer.Option(help="First day out (YYYY-MM-DD); default today.")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """End members' membership on a day; their past membership (and data) stays."""
    wanted = parse_symbols(symbols)
    day = parse_date(on, "--on")
    app_ = _lake(lake)
    try:
        app_.universes.remove(_name(name), wanted, day)
        now = app_.universes.show(name)["symbols"]
    except UniverseNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except InvalidUniverseError as exc:
        fail(str(exc))
    out().print(f"{name}: {len(now)} members today")


@universe_app.command("import")
def import_(
    name: NameArg,
    file: Annotated[str, typer.Argument(help="CSV with header symbol[,from][,to]; - = stdin.")],
    tag: Annotated[list[str] | None, typer.Option(help="Tag the universe (repeatable).")] = None,
    source: Annotated[str | None, typer.Option(help="Where the list comes from.")] = None,
    description: Annotated[str, typer.Option(help="One line about the list.")] = "",
    lake: LakeOption = None,
) -> None:
    """Replace a universe's membership with a CSV's (creating the universe if new)."""
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror}")
    except UnicodeDecodeError:
        fail(f"{file} is not UTF-8 text")
    try:
        n = _lake(lake).universes.import_csv(
            _name(name),
            text,
            tags=tag or (),
            source=source or ("csv:stdin" if file == "-" else f"csv:{file}"),
            description=description,
        )
    except InvalidUniverseError as exc:
        fail(f"{file}: {exc}")
    out().print(f"{name}: imported {n} membership periods from {file}")


@universe_app.command()
def export(
    name: NameArg,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Write a universe's membership as CSV (what `import` reads back)."""
    try:
        text = _lake(lake).universes.export_csv(_name(name))
    except UniverseNotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output}: {exc.strerror}")
