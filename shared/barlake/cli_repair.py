"""`barlake repair [SYMBOLS…|--all]`: make the lake whole again after a crash or a corruption.

- Named symbols: a daily object that cannot be decoded is set aside (kept, under `corrupt/` in
  the raw bucket) and the symbol's full history is fetched again (barlake.services.repair);
  then its weekly/monthly bars and profile are rebuilt if missing or behind.
- `--all`: the reconciliation over the whole lake (metadata only when all is well), plus the
  repair of every symbol whose profile marks its daily object corrupt.
Exit codes: 0 all healthy, 1 something could not be healed (listed), 2 bad input.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from barlake.messages import IngestRequest
from barlake.services.repair import RepairService

# barlake.cli registers this command, so its helpers are imported when the command runs.
LakeOption = Annotated[
    str | None, typer.Option("--lake", help="Lake folder (default: $BARLAKE_LAKE_DIR or ./lake).")
]


def repair(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols to check and heal.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Reconcile the whole lake (and heal corrupt objects).")
    ] = False,
    source: Annotated[str | None, typer.Option(help="yahoo (default) or replay:DIR")] = None,
    lake: LakeOption = None,
) -> None:
    """Heal the lake: corrupt daily objects set aside and refetched, derived outputs rebuilt."""
    from barlake.cli import (
        EXIT_FAILED,
        EXIT_OK,
        execute,
        fail,
        open_lake,
        out,
        parse_symbols,
        render_run,
        settings,
    )

    if bool(symbols) == all_:
        fail("give symbols (barlake repair AAPL) or --all, not both")
    wanted = parse_symbols(symbols) if symbols else None
    s = settings(lake, provider=source)
    app_ = open_lake(s, existing=True)
    candidates = wanted
    first = None
    if candidates is None:  # --all: what the sweep finds corrupt, and what profiles mark so
        first = app_.reconcile.reconcile(None)
        marked = {str(p["symbol"]) for p in app_.state.list_profiles() if p.get("corrupt")}
        candidates = sorted(marked | set(first.corrupt))
    aside = RepairService(app_.raw).set_aside(candidates)
    failed = False
    for a in aside:
        out.print(
            f"{a.symbol}: corrupt daily object (generation {a.generation}: {a.error}) "
            f"kept as {app_.raw.bucket}/{a.kept_as}; fetching its full history",
            highlight=False,
            soft_wrap=True,
        )
    if aside:
        request = IngestRequest(
            kind="manual",
            run_id=f"repair-{uuid.uuid4().hex[:12]}",
            symbols=tuple(a.symbol for a in aside),
            full=True,
        )
        if s.events == "inprocess":
            status = execute(app_, request, len(aside))
            render_run(status)
            failed |= any(o.status == "failed" for o in status.outcomes())
        else:
            app_.bus.publish(s.ingest_requests_topic, request.to_json())
            out.print(f"sent {request.run_id} to {s.ingest_requests_topic}")
    report = app_.reconcile.reconcile(wanted or [a.symbol for a in aside])
    if first is not None:
        report.checked = first.checked
        report.rebuilt = {**first.rebuilt, **report.rebuilt}
    for symbol, outputs in report.rebuilt.items():
        out.print(f"{symbol}: rebuilt {', '.join(outputs)}", highlight=False)
    for symbol, error in {**report.corrupt, **report.deferred}.items():
        out.print(f"{symbol}: not healed: {error}", highlight=False, soft_wrap=True)
        failed = True
    out.print(
        f"checked {report.checked} daily objects · set aside {len(aside)} · "
        f"rebuilt {len(report.rebuilt)} · not healed {len(report.corrupt) + len(report.deferred)}"
    )
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)
