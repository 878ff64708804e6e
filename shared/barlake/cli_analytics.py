"""`barlake indicators` and `barlake analytics`: the analytics endpoints, on the command line.

The same validation (TA-Lib parameter names and ranges), the same read service and the same
bodies as /v1/indicators and /v1/analytics; a table by default, `--format csv|json` for the
exact text the API answers. Exit codes are the CLI's (barlake.cli): 2 bad input, 4 nothing
stored under that name.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.table import Table

if TYPE_CHECKING:
    from types import ModuleType

# The CLI module that registered these commands (barlake.cli, or __main__ under `python -m`):
# its helpers (fail, settings, open_lake, the console) are used, not a second copy of them.
_cli: ModuleType | None = None
LakeOption = Annotated[
    str | None, typer.Option("--lake", help="Lake folder (default: $BARLAKE_LAKE_DIR or ./lake).")
]

FORMATS = ("table", "csv", "json")


def cli() -> ModuleType:
    if _cli is None:
        from barlake import cli as module

        return module
    return _cli


def fail(message: str, code: int = 2) -> NoReturn:
    cli().fail(message, code)
    raise AssertionError("unreachable")


def _format(value: str) -> str:
    if value not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.4f}"
    return str(v)


def indicators(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. AAPL")],
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name",
            "-n",
            help="Indicator, with TA-Lib parameters as KEY=VALUE: --name macd fastperiod=5 "
            "(repeat --name for several; or NAME:PERIOD, e.g. -n sma:20 -n rsi:14).",
        ),
    ] = None,
    params: Annotated[
        list[str] | None, typer.Argument(help="TA-Lib parameters of a single --name: timeperiod=14")
    ] = None,
    interval: Annotated[str, typer.Option(help="1d, 1wk or 1mo")] = "1d",
    adjust: Annotated[str, typer.Option(help="split (as stored), total, none")] = "split",
    start: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    limit: Annotated[int, typer.Option(help="Most recent N rows (0: all).")] = 10,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    lake: LakeOption = None,
) -> None:
    """Technical indicators (TA-Lib) of one symbol's stored bars."""
    from barlake.api import analytics as api
    from barlake.api.params import ApiError

    fmt = _format(format_)
    names = name or ["rsi"]
    query: dict[str, str] = {"interval": interval, "adjust": adjust}
    if len(names) == 1 and ":" not in names[0]:
        query["name"] = names[0]
        for item in params or []:
            key, sep, value = item.partition("=")
            if not sep:
                fail(f"parameters are KEY=VALUE (TA-Lib's names, e.g. timeperiod=14), got {item!r}")
            if key not in api.INDICATOR_PARAMS or key in query:
                fail(f"unknown TA-Lib parameter {key!r} (e.g. timeperiod, fastperiod, nbdevup)")
            query[key] = value
    else:
        if params:
            fail("KEY=VALUE parameters go with a single --name; use NAME:PERIOD items for several")
        query["names"] = ",".join(names)
    first, last = cli().parse_date(start, "--start"), cli().parse_date(end, "--end")
    if first:
        query["start"] = first.isoformat()
    if last:
        query["end"] = last.isoformat()
    if limit < 0:
        fail("--limit must be 0 (all) or more")
    if limit:
        query["limit"] = str(limit)
    try:
        q = api.indicator_query(query)
    except ApiError as exc:
        fail(exc.message)
    sym = _symbol(symbol)
    analytics = _service(lake)
    try:
        table, generation = analytics.indicators(sym, q)
    except LookupError as exc:
        fail(str(exc), cli().EXIT_NOT_FOUND)
    if fmt == "csv":
        from barlake.api.render import bars_csv

        typer.echo(bars_csv(table).decode(), nl=False)
        return
    if fmt == "json":
        typer.echo(api._indicators_json(sym, q, generation, table).decode())
        return
    title = ", ".join(r.key() for r in q.requests)
    grid = Table(title=f"{sym} {q.interval} ({q.adjust}-adjusted) · {title}", title_justify="left")
    for col in table.column_names:
        grid.add_column(col, justify="left" if col == "date" else "right")
    for row in table.to_pylist():
        grid.add_row(*(_cell(row[c]) for c in table.column_names))
    cli().out.print(grid)


def analytics(
    symbols: Annotated[
        list[str], typer.Argument(help="Symbols, e.g. AAPL MSFT (several: + correlations)")
    ],
    benchmark: Annotated[
        str | None, typer.Option(help="Benchmark (default: $BARLAKE_BENCHMARK_SYMBOL, ^GSPC).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    risk_free: Annotated[
        str, typer.Option("--risk-free", help="Annual risk-free rate as a decimal (0.04 = 4 %).")
    ] = "0.0",
    window: Annotated[
        int | None, typer.Option(help="Rolling statistics over N returns (csv/json: every date).")
    ] = None,
    format_: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    lake: LakeOption = None,
) -> None:
    """Performance statistics (total-return closes) against a benchmark; correlations."""
    from barlake.api import analytics as api
    from barlake.api.params import ApiError
    from barlake.services.analytics import StatsQuery, stats_csv

    fmt = _format(format_)
    s = cli().settings(lake)
    wanted = list(dict.fromkeys(_symbol(x) for x in symbols))
    query: dict[str, str] = {"risk_free": risk_free}
    if benchmark is not None:
        query["benchmark"] = benchmark
    for key, value in (("start", start), ("end", end)):
        if value is not None:
            d = cli().parse_date(value, f"--{key}")
            query[key] = d.isoformat() if d else value
    if window is not None:
        query["window"] = str(window)
    try:
        q = api.stats_query(query, wanted, s.benchmark_symbol)
    except ApiError as exc:
        fail(exc.message.replace("risk_free", "--risk-free", 1))
    service = _service(lake)
    try:
        service.closes(q.benchmark or "")
    except LookupError:
        if benchmark is not None:
            fail(f"no bars for the benchmark {q.benchmark}", cli().EXIT_NOT_FOUND)
        q = StatsQuery(q.symbols, None, q.start, q.end, q.risk_free, q.window, q.format)
    try:
        answer, _ = service.statistics(q)
    except LookupError as exc:
        fail(str(exc), cli().EXIT_NOT_FOUND)
    if fmt == "csv":
        typer.echo(stats_csv(answer).decode(), nl=False)
        return
    if fmt == "json":
        typer.echo(json.dumps(answer, separators=(",", ":"), allow_nan=False))
        return
    _stats_table(answer)


def _stats_table(answer: dict[str, Any]) -> None:
    results = answer["results"]
    grid = Table(title="performance (total return)", title_justify="left")
    grid.add_column("statistic")
    for entry in results:
        grid.add_column(entry["symbol"], justify="right")
    pct = {"total_return", "cagr", "volatility", "max_drawdown", "best_day", "worst_day"}
    keys = [k for k in results[0] if k not in ("symbol", "benchmark", "rolling")]
    for key in keys:
        cells = []
        for entry in results:
            v = entry[key]
            cells.append(f"{v:.2%}" if key in pct and v is not None else _cell(v))
        grid.add_row(key, *cells)
    if "benchmark" in results[0]:
        grid.add_row("benchmark", *(e["benchmark"]["symbol"] for e in results))
        for key in ("beta", "alpha", "correlation"):
            grid.add_row(key, *(_cell(e["benchmark"][key]) for e in results))
    cli().out.print(grid)
    if "correlation" in answer:
        corr = answer["correlation"]
        table = Table(title="correlation of daily returns", title_justify="left")
        table.add_column("")
        for sym in corr["symbols"]:
            table.add_column(sym, justify="right")
        for sym, row in zip(corr["symbols"], corr["matrix"], strict=True):
            table.add_row(sym, *(_cell(v) for v in row))
        cli().out.print(table)
    if answer.get("window"):
        for entry in results:
            roll = entry["rolling"]
            table = Table(
                title=f"{entry['symbol']} rolling {answer['window']}, last 10", title_justify="left"
            )
            for col in roll:
                table.add_column(col, justify="left" if col == "date" else "right")
            for i in range(max(0, len(roll["date"]) - 10), len(roll["date"])):
                table.add_row(*(_cell(roll[c][i]) for c in roll))
            cli().out.print(table)


def _symbol(raw: str) -> str:
    return cli().parse_symbols([raw])[0]


def _service(lake: str | None) -> Any:
    from barlake.services.analytics import Analytics

    app_ = cli().open_lake(cli().settings(lake), existing=True)
    return Analytics(app_.raw, app_.derived)


def register(app: typer.Typer, module: ModuleType) -> None:
    global _cli
    _cli = module
    app.command()(indicators)
    app.command()(analytics)
