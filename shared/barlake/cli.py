"""`barlake` — the command line: run an ingest, replay the demo, inspect the lake.

Exit codes (documented in the README):
  0  success
  1  the run finished but some symbols failed (see the table), or the run failed
  2  bad input (a symbol, a date, a file, a setting, a usage error) — one line says which
  3  the provider (or Pub/Sub) cannot be reached at all (no network): try `barlake demo`
  4  nothing stored under that name (show/status)
"""

from __future__ import annotations

import json
import logging
import os
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
from barlake.services.read import NotFoundError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
PROVIDER_NAMES = {"yahoo": "Yahoo Finance"}
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
            parts.append(f"split {evidence.get('split')}")
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
        else:
            parts.append(
                f"prices changed on {', '.join(evidence.get('price_changed_days', [])[:3])}"
            )
    return ", ".join(parts)


def outcome_detail(o: SymbolOutcome) -> str:
    if o.status == "failed":
        return f"{o.error_kind}: {o.error}"
    parts = []
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
    """Publish the request and follow its run to the end, with a progress bar: on the embedded
    bus, delivered here; on Pub/Sub (the stack, Google Cloud), done by the functions."""
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )
    with progress:
        task = progress.add_task("ingesting", total=total)
        if app_.settings.events != "inprocess":
            on_progress = lambda done, of: progress.update(task, completed=done, total=of)  # noqa: E731
            try:
                return cli_ops.follow(app_, request, on_progress, FOLLOW_TIMEOUT_S)
            except cli_ops.FollowError as exc:
                progress.stop()
                fail(str(exc), exc.code)
        app_.observe(lambda o: progress.update(task, advance=1, description=o.symbol))
        return run_embedded(app_, request)


@app.command()
def run(
    symbols: Annotated[
        list[str] | None, typer.Argument(help="Symbols, e.g. AAPL BRK-B ^GSPC 7203.T")
    ] = None,
    universe: Annotated[
        str | None, typer.Option(help="File with one symbol per line (# comments).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="First date for new symbols (YYYY-MM-DD).")
    ] = None,
    end: Annotated[str | None, typer.Option(help="Last date (YYYY-MM-DD); default: today.")] = None,
    source: Annotated[str | None, typer.Option(help="yahoo (default) or replay:DIR")] = None,
    full: Annotated[
        bool, typer.Option(help="Refetch full history instead of the incremental tail.")
    ] = False,
    lake: LakeOption = None,
) -> None:
    """Ingest symbols into the lake now (fetch → validate → merge → write → weekly + profile)."""
    wanted = parse_symbols([*(symbols or []), *(read_universe(universe) if universe else [])])
    if not wanted:
        fail("give symbols (barlake run AAPL MSFT) or --universe FILE")
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first and last and first > last:
        fail(f"--start {first} is after --end {last}")
    s = settings(lake, provider=source)
    if s.provider.startswith("replay:") and not Path(s.provider.removeprefix("replay:")).is_dir():
        fail(f"replay folder not found: {s.provider.removeprefix('replay:')}")
    app_ = open_lake(s)
    run_id = f"manual-{uuid.uuid4().hex[:12]}"
    request = IngestRequest(
        kind="manual", run_id=run_id, symbols=tuple(wanted), start=first, end=last, full=full
    )
    try:
        status = execute(app_, request, len(wanted))
    except NotFoundError:
        fail("the run was never dispatched (BARLAKE_LOG_LEVEL=INFO shows why)", EXIT_FAILED)
    outcomes = status.outcomes()
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
        out.print(f"{mark} {c.symbol}: {c.rows} stored bars equal the latest recording")
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
    raise typer.Exit(EXIT_OK if state == "in progress" else cli_ops.exit_code(st, embedded))


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
    lake: LakeOption = None,
) -> None:
    """Show stored bars (or the profile) of one symbol."""
    from barlake.core.adjust import ADJUSTMENTS
    from barlake.services.read import INTERVALS

    sym = parse_symbols([symbol])[0]
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if limit < 1:
        fail("--limit must be at least 1")
    if interval not in INTERVALS:
        fail(f"--interval must be one of {', '.join(INTERVALS)}, got {interval!r}")
    if adjust not in ADJUSTMENTS:
        fail(f"--adjust must be one of {', '.join(ADJUSTMENTS)}, got {adjust!r}")
    app_ = open_lake(settings(lake), existing=True)
    try:
        if profile:
            out.print_json(json.dumps(app_.read.profile(sym), default=str))
            return
        result = app_.read.bars(sym, interval, first, last, adjust, limit)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except ValueError as exc:
        fail(str(exc))
    table = Table(
        title=f"{sym} {interval} ({adjust}-adjusted) · generation {result.generation}",
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
    from barlake.api import function

    env = {**os.environ}
    if s.storage == "local":
        env["BARLAKE_LAKE_DIR"] = str(Path(s.lake_dir).resolve())
    argv = [sys.executable, "-m", "functions_framework", "--source", function.__file__]
    argv += ["--target", "api", "--signature-type", "http", "--host", host, "--port", str(port)]
    where = f"the lake at {s.lake_dir}" if s.storage == "local" else f"{s.storage} ({s.raw_bucket})"
    out.print(
        f"serving {where} on http://{host}:{port}/v1/… (OpenAPI: /openapi.json, "
        f"cache: {s.cache}); Ctrl-C stops"
    )
    sys.stdout.flush()
    os.execve(sys.executable, argv, env)  # functions-framework takes over this process


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
from barlake.cli_deadletter import deadletter_app  # noqa: E402

app.add_typer(deadletter_app, name="deadletter")

if __name__ == "__main__":
    main()
