"""`barlake` — the command line: run an ingest, replay the demo, inspect the lake.

Exit codes (documented in the README):
  0  success
  1  the run finished but some symbols failed (see the table), or the run failed
  2  bad input (a symbol, a date, a file, a setting, a usage error) — one line says which
  3  the provider (or Pub/Sub) cannot be reached at all (no network): try `barlake demo`
  4  nothing stored under that name (show/status)
  5  a stored object is corrupt (never shown): heal it with `barlake repair SYMBOL`
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import sys
import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from barlake import cli_ops
from barlake.adapters.sqlite_state import StateSchemaError
from barlake.config import App, ConfigError, Settings, build_app, run_embedded
from barlake.core.schema import InvalidSymbolError, normalize_symbol
from barlake.messages import IngestRequest
from barlake.ports import RunStatus, SymbolOutcome
from barlake.providers import PROVIDER_NAMES
from barlake.services.derived import CorruptObjectError
from barlake.services.read import NotFoundError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_CORRUPT = 5
FOLLOW_TIMEOUT_S = 1800.0  # `run` on Pub/Sub: then one line says how to follow it

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Barlake: a daily market-data lake. Embedded mode needs no cloud at all.",
)
# Piped output (CI logs, files) is not limited to a terminal's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True)

LakeOption = Annotated[
    str | None, typer.Option("--lake", help="Lake folder (default: $BARLAKE_LAKE_DIR or ./lake).")
]


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"barlake: error: {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        fail(f"{name} must be a date like 2024-01-31, got {value!r}")


def parse_symbols(values: Iterable[str]) -> list[str]:
    try:
        return list(dict.fromkeys(normalize_symbol(v) for v in values))
    except InvalidSymbolError as exc:
        fail(str(exc))


def read_universe(path: str) -> list[str]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        fail(f"cannot read universe file {path}: {exc.strerror}")
    except UnicodeDecodeError:
        fail(f"universe file {path} is not UTF-8 text (one symbol per line)")
    return [s for line in lines if (s := line.split("#", 1)[0].strip())]


def _universe_name(value: str) -> bool:
    """--universe names a stored universe when it is a universe name and not an existing file."""
    from barlake.core.universe import NAME_REGEX

    return bool(re.fullmatch(NAME_REGEX, value)) and not Path(value).exists()


def settings(lake: str | None, **overrides: str | None) -> Settings:
    try:
        s = Settings.from_env(lake_dir=lake, **overrides)  # type: ignore[arg-type]
    except ConfigError as exc:
        fail(str(exc))
    if lake is not None and s.storage != "local":
        fail(
            f"--lake names a local folder, but BARLAKE_STORAGE={s.storage} (e.g. from "
            "`barlake stack env`) reads the buckets; drop --lake, or unset BARLAKE_STORAGE"
        )
    return s


def open_lake(s: Settings, *, existing: bool = False) -> App:
    """Wire the app the settings name (the embedded lake by default; the cloud backends against
    the local stack or Google Cloud); `existing` (read commands) refuses to create a new lake."""
    local = s.storage == "local"
    if existing and local and not (Path(s.lake_dir) / s.raw_bucket).is_dir():
        fail(f"no lake at {s.lake_dir} (run an ingest first, or pass --lake DIR)", EXIT_NOT_FOUND)
    try:
        return build_app(s)
    except (OSError, sqlite3.Error, StateSchemaError) as exc:
        fail(f"cannot open the lake at {s.lake_dir}: {exc}")


def describe_restatement(kinds: Iterable[str], evidence: Mapping[str, Any]) -> str:
    """One readable phrase per kind: 'split 20:1, adj close ×0.996420'."""
    parts = []
    for kind in kinds:
        if kind == "split":
            ratio = evidence.get("split") or ", ".join(evidence.get("split_ratios") or [])
            parts.append(f"split {ratio}")
        elif kind == "dividend":
            parts.append(f"adj close ×{evidence.get('adj_close_factor', 0):.6f}")
        elif kind == "volume_revision":
            changes = evidence.get("volume_changes", [])
            first = changes[0] if changes else {}
            more = f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""
            parts.append(
                f"volume {first.get('date')}: {first.get('stored', 0):,} → "
                f"{first.get('fetched', 0):,}{more}"
            )
        elif f"{kind}_days" in evidence:  # a full-history comparison (core/history.py)
            dates = ", ".join((evidence.get(f"{kind}_dates") or [])[:2])
            parts.append(f"{kind.replace('_', ' ')} {evidence[f'{kind}_days']} days ({dates})")
        else:
            parts.append(
                f"prices changed on {', '.join(evidence.get('price_changed_days', [])[:3])}"
            )
    return ", ".join(parts)


def outcome_detail(o: SymbolOutcome) -> str:
    if o.status == "failed":
        return f"{o.error_kind}: {o.error}"
    parts = [o.error] if o.error else []  # e.g. "written by an earlier attempt of this run"
    if o.restatement:
        parts.append(
            describe_restatement(o.restatement["kinds"], o.restatement.get("evidence", {}))
        )
    if o.provisional_skipped:
        parts.append(f"{o.provisional_skipped} in-progress bar set aside")
    return "; ".join(parts)


def render_run(status: RunStatus) -> None:
    table = Table(title=f"run {status.run.run_id}", title_justify="left")
    for col in ("symbol", "status", "rows", "new", "quarantined", "detail"):
        table.add_column(col, justify="right" if col in ("rows", "new", "quarantined") else "left")
    colors = {"ok": "green", "unchanged": "dim", "restated": "yellow", "failed": "red"}
    outcomes = sorted(status.outcomes(), key=lambda o: o.symbol)
    for o in outcomes:
        table.add_row(
            o.symbol,
            f"[{colors.get(o.status, 'white')}]{o.status}[/]",
            str(o.rows_written or ""),
            str(o.rows_new or ""),
            str(o.rows_quarantined or ""),
            outcome_detail(o),
        )
    out.print(table)
    count = {
        s: sum(o.status == s for o in outcomes) for s in ("ok", "unchanged", "restated", "failed")
    }
    quarantined = sum(o.rows_quarantined for o in outcomes)
    out.print(
        f"ok {count['ok']} · unchanged {count['unchanged']} · restated {count['restated']} · "
        f"rows quarantined {quarantined} · failed {count['failed']}"
        + ("" if status.complete else " · [red]run incomplete[/]")
    )


def render_latest(app_: App, symbols: list[str]) -> None:
    """The newest stored bar of each symbol: what the run left in the lake."""
    if not symbols:
        return
    table = Table(title="latest stored bars", title_justify="left")
    for col in ("symbol", "date", "open", "high", "low", "close", "adj_close", "volume"):
        table.add_column(col, justify="left" if col in ("symbol", "date") else "right")
    for symbol in sorted(symbols):
        try:
            rows = app_.read.bars(symbol, limit=1).table.to_pylist()
        except NotFoundError:
            continue
        for r in rows:
            table.add_row(
                symbol,
                str(r["date"]),
                *(f"{r[c]:,.4f}" for c in ("open", "high", "low", "close", "adj_close")),
                f"{r['volume']:,}",
            )
    out.print(table)


def execute(app_: App, request: IngestRequest, total: int) -> RunStatus:
    """Publish the request and follow its run to the end, with a progress bar that shows the
    request budget at work (requests sent, seconds waited for it) and an ETA: on the embedded
    bus, delivered here; on Pub/Sub (the stack, Google Cloud), done by the functions."""
    from barlake.pacing import pacing_status

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[pacing]}"),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("ingesting", total=total, pacing="")
        if app_.settings.events != "inprocess":
            on_progress = lambda done, of: progress.update(task, completed=done, total=of)  # noqa: E731
            try:
                return cli_ops.follow(app_, request, on_progress, FOLLOW_TIMEOUT_S)
            except cli_ops.FollowError as exc:
                progress.stop()
                fail(str(exc), exc.code)
        done = [0]

        def advance(o: SymbolOutcome) -> None:
            done[0] += 1
            status = pacing_status(app_.pacer, app_.settings, done[0], total)
            progress.update(task, advance=1, description=o.symbol, pacing=status)

        app_.observe(advance)
        return run_embedded(app_, request)


@app.command()
def run(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Symbols, e.g. AAPL BRK-B ^GSPC 7203.T")
    ] = None,
    universe: Annotated[
        str | None,
        typer.Option(help="A stored universe's name, or a file with one symbol per line."),
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First date for new symbols (YYYY-MM-DD).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last date (YYYY-MM-DD); default: today.")] = None,
    source: Annotated[
        str | None,
        typer.Option(help="yahoo (default), tiingo, alphavantage, polygon or replay:DIR"),
    ] = None,
    full: Annotated[
        bool, typer.Option(help="Refetch full history instead of the incremental tail.")
    ] = False,
    lake: LakeOption = None,
) -> None:
    """Ingest symbols into the lake now (fetch → validate → merge → write → weekly + profile)."""
    named = universe if universe and _universe_name(universe) else None
    if named and symbols:
        fail("give symbols or --universe NAME, not both")
    listed = read_universe(universe) if universe and not named else []
    wanted = parse_symbols([*(symbols or []), *listed])
    if not wanted and not named:
        fail("give symbols (barlake run AAPL MSFT) or --universe NAME|FILE")
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first and last and first > last:
        fail(f"--start {first} is after --end {last}")
    s = settings(lake, provider=source)
    if s.provider.startswith("replay:") and not Path(s.provider.removeprefix("replay:")).is_dir():
        fail(f"replay folder not found: {s.provider.removeprefix('replay:')}")
    app_ = open_lake(s)
    if named:  # dispatch takes the universe's members on --end (default today), point-in-time
        from barlake.cli_universe import members_for_run

        wanted = members_for_run(app_, named, last)
    run_id = f"manual-{uuid.uuid4().hex[:12]}"
    request = IngestRequest(
        kind="manual",
        run_id=run_id,
        symbols=() if named else tuple(wanted),
        start=first,
        end=last,
        full=full,
        universe=named,
    )
    try:
        status = execute(app_, request, len(wanted))
    except NotFoundError:
        fail("the run was never dispatched (BARLAKE_LOG_LEVEL=INFO shows why)", EXIT_FAILED)
    outcomes = status.outcomes()
    outage = next((o for o in outcomes if o.error_kind == "outage"), None)
    if outage is not None:  # the provider blocks us: nothing recorded, the run incomplete
        fail(
            f"{PROVIDER_NAMES.get(app_.provider.name, app_.provider.name)} cannot be reached: "
            f"{outage.error}; the registry is unchanged and run {run_id} incomplete, run it "
            "again later",
            EXIT_UNREACHABLE,
        )
    if cli_ops.exit_code(status, s.events == "inprocess") == EXIT_UNREACHABLE:
        reason = (outcomes[0].error or "").split(" See http")[0].rstrip(". ")
        fail(
            f"cannot reach {PROVIDER_NAMES.get(app_.provider.name, app_.provider.name)} "
            f"({reason}); no network? try the offline demo: barlake demo",
            EXIT_UNREACHABLE,
        )
    render_run(status)
    render_latest(app_, [o.symbol for o in outcomes if o.status != "failed"])
    out.print(
        f"lake: {Path(s.lake_dir).resolve()}  ·  "
        f"show one: barlake show {wanted[0]} --lake {s.lake_dir}"
    )
    raise typer.Exit(cli_ops.exit_code(status, s.events == "inprocess"))


@app.command()
def backfill(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols to (re)load.")] = None,
    universe: Annotated[
        str | None, typer.Option(help="File with one symbol per line (# comments).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="First date (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last date (YYYY-MM-DD).")] = None,
    full: Annotated[bool, typer.Option(help="Refetch full history.")] = False,
    lake: LakeOption = None,
) -> None:
    """Send a backfill request to topic ingest-requests (runs here on the embedded lake).

    With BARLAKE_EVENTS=pubsub the deployed functions, or `barlake stack`, do the work.
    """
    wanted = parse_symbols([*(symbols or []), *(read_universe(universe) if universe else [])])
    if not wanted:
        fail("give symbols (barlake backfill AAPL MSFT) or --universe FILE")
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first and last and first > last:
        fail(f"--start {first} is after --end {last}")
    s = settings(lake)
    request = IngestRequest(
        kind="backfill",
        run_id=f"backfill-{uuid.uuid4().hex[:12]}",
        symbols=tuple(wanted),
        start=first,
        end=last,
        full=full,
    )
    app_ = open_lake(s)
    if s.events == "inprocess":
        status = execute(app_, request, len(wanted))
        code = cli_ops.exit_code(status, embedded=True)
        if code == EXIT_UNREACHABLE:
            fail("cannot reach the provider; no network? try the offline demo", code)
        render_run(status)
        raise typer.Exit(code)
    try:
        message_id = app_.bus.publish(s.ingest_requests_topic, request.to_json())
    except Exception as exc:  # the bus raises its own clear errors; one line, non-zero exit
        fail(f"cannot publish to {s.ingest_requests_topic}: {exc}", EXIT_UNREACHABLE)
    out.print(
        f"backfill {request.run_id}: {len(wanted)} symbols sent to {s.ingest_requests_topic} "
        f"(message {message_id}); follow it: barlake status --run {request.run_id}"
    )


@app.command()
def audit(
    symbols: Annotated[list[str] | None, typer.Argument(help="Symbols to verify.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every symbol of the registry (all universes).")
    ] = False,
    universe: Annotated[
        str | None, typer.Option(help="File with one symbol per line (# comments).")
    ] = None,
    source: Annotated[str | None, typer.Option(help="yahoo (default) or replay:DIR")] = None,
    against: Annotated[
        str | None,
        typer.Option(help="Then cross-check the audited symbols with a second provider."),
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Deep audit: refetch whole histories, compare bar for bar and heal (docs/data-quality.md).

    Each difference is classified (split, dividend, close/volume revision, restored session,
    missing, provider purge); unexplained revisions wait for a confirming later fetch.
    """
    from barlake.services.audit import audit_request

    wanted = parse_symbols([*(symbols or []), *(read_universe(universe) if universe else [])])
    if against is not None:
        check_against(against)
    s = settings(lake, provider=source)
    app_ = open_lake(s, existing=not wanted)
    if all_:
        wanted = sorted({*wanted, *(r.symbol for r in app_.state.list_symbols(None))})
    if not wanted:
        fail("give symbols (barlake audit AAPL MSFT), --universe FILE or --all")
    request = audit_request(wanted, f"audit-{uuid.uuid4().hex[:12]}")
    status = execute(app_, request, len(wanted))
    render_run(status)
    records = app_.state.get_audits(wanted)
    table = Table(title="history audit", title_justify="left")
    for col in ("symbol", "verified at", "differences", "pending", "suspect answer"):
        table.add_column(col)
    for symbol in wanted:
        r = records.get(symbol)
        if r is None:
            table.add_row(symbol, "never", "", "", "")
            continue
        table.add_row(
            symbol,
            r.verified_at.isoformat(timespec="seconds") if r.verified_at else "never",
            describe_differences(r.differences),
            ", ".join(sorted(r.pending)[:3]) + (" …" if len(r.pending) > 3 else ""),
            str((r.suspect or {}).get("reason", "")),
        )
    out.print(table)
    failed = any(o.status == "failed" for o in status.outcomes()) or not status.complete
    if against is not None:
        failed = not crosscheck(app_, s, wanted, against, None) or failed
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def describe_differences(differences: Mapping[str, Any]) -> str:
    """'split 2 days (10:1), close_revision 1 day (2019-03-04)' from an audit's differences."""
    evidence = differences.get("evidence") or {}
    parts = []
    for kind in differences.get("kinds") or []:
        if kind == "split":
            ratios = ", ".join(evidence.get("split_ratios") or [])
            parts.append(f"split {evidence.get('split_days')} days ({ratios})")
            continue
        dates = evidence.get(f"{kind}_dates") or []
        first = f" ({', '.join(dates[:2])}{' …' if len(dates) > 2 else ''})" if dates else ""
        parts.append(f"{kind} {evidence.get(f'{kind}_days')} days{first}")
    return ", ".join(parts) or "none"


@app.command()
def demo(lake: LakeOption = None) -> None:
    """Run the whole pipeline offline on bundled real Yahoo recordings; restatements healed."""
    from barlake.demo import DEMO_SYMBOLS, DemoLakeError, prepare_demo_lake, run_demo

    try:  # --lake, else $BARLAKE_LAKE_DIR, else ./lake, like every command
        folder = prepare_demo_lake(Path(settings(lake).lake_dir))
    except DemoLakeError as exc:
        fail(str(exc))
    out.print(f"[bold]Barlake demo[/] — replaying recorded Yahoo answers into {folder}\n")
    app_, stages, checks = run_demo(folder)
    for i, stage in enumerate(stages, 1):
        out.print(f"[bold]Day {i}[/]: provider as recorded in {stage.recording}")
        render_run(stage.run)
        out.print()
    table = Table(
        title="weekly bars (derived automatically) — MSFT, last 4 weeks", title_justify="left"
    )
    weekly = app_.read.bars("MSFT", "1wk", limit=4).table.to_pylist()
    for col in ("week", "open", "high", "low", "close", "volume", "sessions", "provisional"):
        table.add_column(col, no_wrap=True)
    for w in weekly:
        table.add_row(
            str(w["date"]),
            f"{w['open']:.2f}",
            f"{w['high']:.2f}",
            f"{w['low']:.2f}",
            f"{w['close']:.2f}",
            f"{w['volume']:,}",
            str(w["sessions"]),
            str(w["provisional"]),
        )
    out.print(table)
    for symbol in DEMO_SYMBOLS:
        for r in app_.state.restatements(symbol):
            out.print(f"healed {symbol} ({r.run_id}): {describe_restatement(r.kinds, r.evidence)}")
    ok = all(c.matches_latest for c in checks)
    for c in checks:
        mark = "[green]✓[/]" if c.matches_latest else "[red]✗[/]"
        kept = f" ({c.kept_older} older bars kept: provider purge)" if c.kept_older else ""
        out.print(f"{mark} {c.symbol}: {c.rows} stored bars equal the latest recording{kept}")
    out.print(f"\nlake left in {folder}; try: barlake show MSFT --interval 1wk --lake {folder}")
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


@app.command()
def status(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the latest).")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Show a run's completeness and per-symbol outcomes."""

    s = settings(lake)
    app_ = open_lake(s, existing=True)
    embedded = s.events == "inprocess"
    if run_id is not None and not embedded:  # right after `backfill`: dispatch records it soon
        with err.status(f"waiting for dispatch to record run {run_id}…"):
            cli_ops.wait_for_run(app_, run_id)
    try:
        st = app_.read.run(run_id)
    except NotFoundError as exc:
        pending = "" if embedded or run_id is None else " (pending: not recorded by dispatch yet)"
        fail(f"{exc}{pending}", EXIT_NOT_FOUND)
    done = len(st.batches)
    state = cli_ops.run_state(st, embedded)
    out.print(
        f"run {st.run.run_id} ({st.run.kind}) · {done}/{len(st.run.batch_ids)} batches · {state}"
    )
    render_run(st)
    inv = app_.read.inventory()
    out.print(
        f"lake: {inv['symbols']} symbols · {inv['rows']:,} daily bars · {inv['bytes']:,} bytes · "
        f"stale {inv['stale']} · with gaps {inv['with_gaps']} · "
        f"quarantined rows {inv['quarantined']}"
    )
    out.print(
        f"history audit: never verified {inv.get('never_verified', 0)} · oldest verified "
        f"{inv.get('oldest_verified_at') or '-'} ({inv.get('oldest_verified_symbol') or '-'}) · "
        f"pending revisions {len(inv.get('symbols_with_pending_revisions') or [])} · "
        f"unadjusted splits {len(inv.get('symbols_with_unadjusted_splits') or [])}"
    )
    raise typer.Exit(EXIT_OK if state == "in progress" else cli_ops.exit_code(st, embedded))


@app.command()
def delisted(lake: LakeOption = None) -> None:
    """List symbols that answered not found: suspect, or delisted (out of the daily fan-out,
    data kept). `barlake run SYMBOL` makes a delisted symbol active again."""
    from barlake.services.lifecycle import list_lifecycle

    app_ = open_lake(settings(lake), existing=True)
    docs = list_lifecycle(app_.raw)
    inactive = {r.symbol for r in app_.state.list_symbols(active_only=False) if not r.active}
    table = Table("symbol", "status", "not found on", "delisted on", "last answer")
    for d in docs:
        status = d["status"]
        if status == "delisted" and d["symbol"] not in inactive:
            status = "active again"
        table.add_row(
            d["symbol"],
            status,
            ", ".join(d.get("not_found_days", [])),
            d.get("delisted_on", ""),
            d.get("last_error", ""),
        )
    out.print(table if docs else "no symbol has answered not found")


@app.command()
def show(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. AAPL")],
    interval: Annotated[str, typer.Option(help="1d, 1wk or 1mo")] = "1d",
    start: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    adjust: Annotated[str, typer.Option(help="split (as stored), total, none")] = "split",
    limit: Annotated[int, typer.Option(help="Most recent N bars.")] = 10,
    profile: Annotated[
        bool, typer.Option("--profile", help="Show the data-quality profile.")
    ] = False,
    provenance: Annotated[
        bool, typer.Option("--provenance", help="Show which provider gave the stored rows.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="The bars as the lake held them then: 2025-08-20T00:00:00Z."),
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Show stored bars (or the profile, or the rows' provenance) of one symbol."""
    from barlake.core.adjust import ADJUSTMENTS
    from barlake.services.asof import parse_as_of
    from barlake.services.read import INTERVALS

    sym = parse_symbols([symbol])[0]
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if limit < 1:
        fail("--limit must be at least 1")
    if interval not in INTERVALS:
        fail(f"--interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    if adjust not in ADJUSTMENTS:
        fail(f"--adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    try:
        when = parse_as_of(as_of) if as_of is not None else None
    except ValueError as exc:
        fail(f"--as-of: {exc}")
    app_ = open_lake(settings(lake), existing=True)
    try:
        if profile:
            out.print_json(json.dumps(app_.read.profile(sym), default=str))
            return
        if provenance:
            render_provenance(sym, app_.read.provenance(sym))
            return
        result = app_.read.bars(sym, interval, first, last, adjust, limit, as_of=when)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except CorruptObjectError as exc:
        fail(f"corrupt object, not shown ({exc}); heal it: barlake repair {sym}", EXIT_CORRUPT)
    except ValueError as exc:
        fail(str(exc))
    table = Table(
        title=f"{sym} {interval} ({adjust}-adjusted) · generation {result.generation}"
        + (f" · as of {when.isoformat()}" if when else ""),
        title_justify="left",
    )
    names = [n for n in result.table.column_names if n != "symbol"]
    for n in names:
        table.add_column(n, justify="left" if n == "date" else "right")
    for row in result.table.to_pylist():
        table.add_row(
            *[
                f"{v:,.4f}"
                if isinstance(v, float)
                else f"{v:,}"
                if isinstance(v, int) and not isinstance(v, bool)
                else str(v)
                for v in (row[n] for n in names)
            ]
        )
    out.print(table)


@app.command()
def reconcile(
    symbols: Annotated[list[str], typer.Argument(help="Stored symbols to check.")],
    against: Annotated[
        str, typer.Option(help="The second provider: tiingo, alphavantage, polygon or yahoo.")
    ] = "tiingo",
    start: Annotated[
        str | None, typer.Option(help="First date compared (default: the first stored).")
    ] = None,
    lake: LakeOption = None,
) -> None:
    """Compare stored bars with a second provider; every disagreement beyond tolerance is kept
    in the symbol's profile (`show --profile`, GET /v1/profiles/{symbol})."""
    wanted = parse_symbols(symbols)
    check_against(against)
    first = parse_date(start, "--start")
    s = settings(lake)
    app_ = open_lake(s, existing=True)
    raise typer.Exit(EXIT_OK if crosscheck(app_, s, wanted, against, first) else EXIT_FAILED)


def check_against(against: str) -> None:
    from barlake.providers import spec_error

    if "," in against or against.startswith("replay:") or spec_error(against):
        fail(f"--against must be one of {', '.join(PROVIDER_NAMES)}, got {against!r}")


def crosscheck(app_: App, s: Settings, wanted: list[str], against: str, first: date | None) -> bool:
    """Compare the stored bars of `wanted` with `against`, keep the reports in the profiles,
    print them; False when a symbol could not be compared."""
    from barlake.providers import build_provider
    from barlake.services.crosscheck import ReconcileService

    service = ReconcileService(app_.raw, app_.derived, app_.state, app_.clock)
    reports = service.run(wanted, build_provider(against, s), first)
    table = Table(title=f"reconciliation against {against}", title_justify="left")
    for name in ("symbol", "window", "sessions", "disagreements", "error"):
        table.add_column(name, justify="right" if name == "sessions" else "left")
    for symbol in wanted:
        r = reports[symbol]
        counts = ", ".join(f"{k} {v}" for k, v in sorted((r.get("counts") or {}).items()))
        window = " … ".join(r["window"]) if r.get("window") else ""
        table.add_row(
            symbol, window, str(r.get("sessions", "")), counts or "none", r.get("error", "")
        )
    out.print(table)
    return not any("error" in r for r in reports.values())


def render_provenance(symbol: str, runs: list[dict[str, Any]]) -> None:
    table = Table(title=f"{symbol}: provenance of the stored rows", title_justify="left")
    for name in ("first", "last", "rows", "source", "fetched"):
        table.add_column(name, justify="right" if name == "rows" else "left")
    for run in runs:
        fetched = run["fetched_from"] or "—"
        if run["fetched_to"] and run["fetched_to"] != run["fetched_from"]:
            fetched = f"{fetched} … {run['fetched_to']}"
        source = run["source"] or "unknown (stored before provenance)"
        table.add_row(run["first"], run["last"], f"{run['rows']:,}", source, fetched)
    out.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    lake: LakeOption = None,
) -> None:
    """Serve the read API (the `api` function, under functions-framework as in Cloud Run).

    The embedded lake by default; with the BARLAKE_* settings of `barlake stack env` (or of a
    Google Cloud project), the same API over GCS, Firestore and the configured cache.
    """
    if not 1 <= port <= 65535:
        fail(f"--port must be from 1 to 65535, got {port}")
    busy = _port_in_use(host, port)
    if busy:
        fail(f"cannot listen on {host}:{port}: {busy} (choose another with --port)")
    s = settings(lake)
    open_lake(s, existing=True)  # a missing lake or a bad setting: one line now, not per request
    env = {**os.environ}
    if s.storage == "local":
        env["BARLAKE_LAKE_DIR"] = str(Path(s.lake_dir).resolve())
    # functions-framework's app and gunicorn, with request-line and header limits (serve.py)
    argv = [sys.executable, "-m", "barlake.api.serve", "--host", host, "--port", str(port)]
    where = f"the lake at {s.lake_dir}" if s.storage == "local" else f"{s.storage} ({s.raw_bucket})"
    out.print(
        f"serving {where} on http://{host}:{port}/v1/… (OpenAPI: /openapi.json, "
        f"cache: {s.cache}); Ctrl-C stops"
    )
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # gunicorn takes over this process


def _port_in_use(host: str, port: int) -> str | None:
    """Why host:port cannot be bound (None: free), checked before gunicorn would say it in ten
    lines. SO_REUSEADDR as gunicorn binds, so a port in TIME_WAIT is not called busy."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"unknown host ({exc.strerror})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main() -> None:
    # The run table reports every failure (a dead-lettered batch shows as "run incomplete");
    # library and handler logs would only repeat it. BARLAKE_LOG_LEVEL=INFO shows them.
    level = os.environ.get("BARLAKE_LOG_LEVEL", "CRITICAL").upper()
    if level not in LOG_LEVELS:
        err.print(f"barlake: error: BARLAKE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        sys.exit(EXIT_USAGE)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    os.umask(0o077)  # a lake (objects, state, stack logs) is private to its owner
    sys.exit(run_cli())


def run_cli(argv: list[str] | None = None) -> int:
    """The app, with Click's usage errors as one line (`barlake: error: …`, exit 2) instead of
    Typer's boxed panel; `barlake` alone still prints the help."""
    try:  # Typer ≥ 0.25 vendors Click: its exceptions are Typer's own
        from typer._click import exceptions as click
    except ImportError:  # pragma: no cover - an older Typer over Click
        from click import exceptions as click  # type: ignore[no-redef]

    try:
        code = app(args=argv, prog_name="barlake", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        out.print(exc.ctx.get_help() if exc.ctx else "barlake --help", highlight=False)
        return EXIT_OK
    except click.UsageError as exc:
        where = f" (barlake {exc.ctx.command_path.partition(' ')[2]} --help)" if exc.ctx else ""
        message = " ".join(exc.format_message().split())
        err.print(f"barlake: error: {message}{where}", highlight=False, soft_wrap=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        err.print(f"barlake: error: {exc.format_message()}", highlight=False, soft_wrap=True)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    return code if isinstance(code, int) else EXIT_OK


from barlake.cli_stack import stack_app  # noqa: E402  (a sub-command group, kept apart)

app.add_typer(stack_app, name="stack")
from barlake.cli_panel import panel_app  # noqa: E402

app.add_typer(panel_app, name="panel")

from barlake.cli_analytics import register as register_analytics  # noqa: E402

register_analytics(app, sys.modules[__name__])  # barlake indicators, barlake analytics
from barlake.cli_repair import repair  # noqa: E402  (its own module: crash healing)

app.command()(repair)
from barlake.cli_universe import universe_app  # noqa: E402

app.add_typer(universe_app, name="universe")
from barlake.cli_market import market  # noqa: E402
from barlake.cli_tier import tier_app  # noqa: E402

app.add_typer(tier_app, name="tier")

app.command()(market)
from barlake.cli_deadletter import deadletter_app  # noqa: E402

app.add_typer(deadletter_app, name="deadletter")

if __name__ == "__main__":
    main()
