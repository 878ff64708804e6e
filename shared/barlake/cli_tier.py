"""`barlake tier show|set|clear|recompute`: symbols' tiers and an admin's pins.

Registered from cli.py with one add_typer line; helpers imported lazily (see cli_universe.py).
A tier's members are the universe `tier-N`: `barlake universe show tier-1 [--as-of D]`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from barlake.cli_universe import LakeOption, _lake, fail, out, parse_symbols

tier_app = typer.Typer(no_args_is_help=True, help="Tiers (1 busiest … 3) and admin pins.")


def _print(rows: list[dict], as_json: bool) -> None:
    if as_json:
        out().print_json(json.dumps(rows))
        return
    for r in rows:
        pin = f" (pinned; computed {r['computed']})" if r["override"] else ""
        mdv = r["median_dollar_volume"]
        volume = f"{mdv:,.0f}" if mdv is not None else "no bars"
        out().print(f"{r['symbol']}: tier {r['tier']}{pin} · median dollar volume {volume}")


@tier_app.command()
def show(
    symbols: Annotated[list[str], typer.Argument(help="Symbols.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    lake: LakeOption = None,
) -> None:
    """Each symbol's tier now (recomputed from its stored bars), and its pin if any."""
    app_ = _lake(lake)
    _print([app_.tiers.refresh(s) for s in parse_symbols(symbols)], as_json)


@tier_app.command("set")
def set_(
    symbol: Annotated[str, typer.Argument(help="Symbol.")],
    tier: Annotated[int, typer.Argument(help="1, 2 or 3.")],
    lake: LakeOption = None,
) -> None:
    """Pin a symbol to a tier (admin override): it stays there whatever its volume."""
    if tier not in (1, 2, 3):
        fail(f"tier must be 1, 2 or 3, got {tier}")
    _print([_lake(lake).tiers.pin(parse_symbols([symbol])[0], tier)], False)


@tier_app.command()
def clear(
    symbol: Annotated[str, typer.Argument(help="Symbol.")],
    lake: LakeOption = None,
) -> None:
    """Remove a symbol's pin: its computed tier applies again."""
    _print([_lake(lake).tiers.pin(parse_symbols([symbol])[0], None)], False)


@tier_app.command()
def recompute(lake: LakeOption = None) -> None:
    """Recompute every active registry symbol's tier from its stored bars."""
    app_ = _lake(lake)
    rows = [app_.tiers.refresh(r.symbol) for r in app_.state.list_symbols()]
    counts = {t: sum(r["tier"] == t for r in rows) for t in (1, 2, 3)}
    out().print(f"{len(rows)} symbols: " + " · ".join(f"tier {t} {n}" for t, n in counts.items()))
