"""The analytics operations of the OpenAPI document (openapi.py adds them to its paths).

The indicator and its parameters are one exploded form object (`?name=macd&fastperiod=5`):
one variant per indicator, listing exactly the TA-Lib parameters that indicator takes with
their ranges, or the `names` list; so the document states every rule the API enforces and the
fuzz test (tests/test_api_fuzz.py) can hold the two together.
"""

from __future__ import annotations

from typing import Any

from barlake.api import analytics as a
from barlake.api import params as p
from barlake.core import indicators as ind

_DATE = {"type": "string", "format": "date", "pattern": p.DATE_REGEX}
_NUMBER = {"type": ["number", "null"]}


def _digits(low: int) -> str:
    """A regex for a whole number from `low` (1 or 2) to ind.MAX_PERIOD (100000)."""
    assert ind.MAX_PERIOD == 100_000 and low in (1, 2)
    first = "[1-9][0-9]{0,4}" if low == 1 else "[2-9]|[1-9][0-9]{1,4}"
    return f"(?:{first}|100000)"


def names_regex() -> str:
    items = []
    for name, spec in sorted(ind.INDICATORS.items()):
        primary = spec.primary
        items.append(f"{name}(?::{_digits(int(primary.low))})?" if primary else name)
    item = "(?:" + "|".join(items) + ")"
    return f"^{item}(?:,{item}){{0,15}}$"


def _param_schema(param: ind.Param) -> dict[str, Any]:
    kind = "integer" if param.integer else "number"
    schema: dict[str, Any] = {"type": kind, "minimum": param.low, "maximum": param.high}
    if param.integer:
        schema = {**schema, "minimum": int(param.low), "maximum": int(param.high)}
    return {**schema, "default": int(param.default) if param.integer else param.default}


def indicator_schema() -> dict[str, Any]:
    variants: list[dict[str, Any]] = [
        {
            "title": "names",
            "type": "object",
            "required": ["names"],
            "properties": {
                "names": {
                    "type": "string",
                    "pattern": names_regex(),
                    "description": "Several indicators, each with its first parameter: "
                    "sma:20,ema:50,rsi:14,macd.",
                }
            },
            "additionalProperties": False,
        }
    ]
    for name, spec in sorted(ind.INDICATORS.items()):
        props: dict[str, Any] = {"name": {"const": name, "description": spec.title}}
        props.update({q.name: _param_schema(q) for q in spec.params})
        variants.append(
            {
                "title": name,
                "type": "object",
                "required": ["name"],
                "properties": props,
                "additionalProperties": False,
                "description": f"{spec.title}: columns {', '.join(spec.outputs)}.",
            }
        )
    return {"oneOf": variants}


_INDICATOR_ROWS = {
    "type": "object",
    "required": ["symbol", "interval", "adjust", "generation", "indicators", "count", "rows"],
    "properties": {
        "symbol": {"type": "string"},
        "interval": {"enum": list(p.INTERVALS)},
        "adjust": {"enum": list(p.ADJUSTMENTS)},
        "generation": {"type": "integer"},
        "indicators": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "params", "columns"],
                "properties": {
                    "name": {"type": "string"},
                    "params": {"type": "object"},
                    "columns": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "count": {"type": "integer", "minimum": 0},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["date", "close"],
                "properties": {"date": _DATE, "close": _NUMBER},
                "additionalProperties": _NUMBER,
            },
        },
    },
    "additionalProperties": False,
}

_STRING_OR_NULL = {"type": ["string", "null"]}
_STATS = {
    "type": "object",
    "required": ["symbol", "observations", "periods_per_year", "total_return", "max_drawdown"],
    "properties": {
        "symbol": {"type": "string"},
        "start": _STRING_OR_NULL,
        "end": _STRING_OR_NULL,
        "observations": {"type": "integer"},
        "periods_per_year": {"type": "integer"},
        **{
            k: _NUMBER
            for k in (
                "total_return",
                "cagr",
                "volatility",
                "sharpe",
                "sortino",
                "max_drawdown",
                "calmar",
                "best_day",
                "worst_day",
            )
        },
        **{
            k: _STRING_OR_NULL
            for k in (
                "max_drawdown_peak",
                "max_drawdown_trough",
                "max_drawdown_recovery",
                "best_day_date",
                "worst_day_date",
            )
        },
        "benchmark": {
            "type": "object",
            "required": ["symbol", "beta", "alpha", "correlation"],
            "properties": {
                "symbol": {"type": "string"},
                "observations": {"type": "integer"},
                "periods_per_year": {"type": "integer"},
                "beta": _NUMBER,
                "alpha": _NUMBER,
                "correlation": _NUMBER,
            },
        },
        "rolling": {
            "type": "object",
            "description": "Columns (date, return, volatility, sharpe, sortino, max_drawdown, "
            "beta, correlation), one value per date; null before the first full window.",
            "additionalProperties": {"type": "array"},
        },
    },
}

_ANALYTICS = {
    "type": "object",
    "required": ["symbols", "generations", "risk_free", "results"],
    "properties": {
        "symbols": {"type": "array", "items": {"type": "string"}},
        "generations": {"type": "array", "items": {"type": "integer"}},
        "start": _STRING_OR_NULL,
        "end": _STRING_OR_NULL,
        "risk_free": {"type": "number"},
        "window": {"type": ["integer", "null"]},
        "results": {"type": "array", "items": {"$ref": "#/components/schemas/Statistics"}},
        "correlation": {
            "type": "object",
            "required": ["symbols", "matrix"],
            "properties": {
                "symbols": {"type": "array", "items": {"type": "string"}},
                "matrix": {"type": "array", "items": {"type": "array", "items": _NUMBER}},
            },
        },
    },
}

SCHEMAS = {"IndicatorRows": _INDICATOR_ROWS, "Statistics": _STATS, "Analytics": _ANALYTICS}


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


def paths(
    symbol: dict[str, Any], operation: Any, ok: Any, common: dict[str, Any], keyed: bool
) -> dict[str, Any]:
    """The three operations, built with openapi.py's own helpers."""
    fmt = _query("format", {"enum": list(a.FORMATS), "default": "json"}, "Body format.")
    window = [
        _query("start", _DATE, "First date (inclusive)."),
        _query("end", _DATE, "Last date (inclusive); not before start."),
    ]
    indicator = {
        "name": "indicator",
        "in": "query",
        "required": True,
        "style": "form",
        "explode": True,
        "description": "name=… with that indicator's TA-Lib parameters (e.g. name=macd&"
        "fastperiod=12&slowperiod=26&signalperiod=9), or names=sma:20,rsi:14 for several.",
        "schema": indicator_schema(),
    }
    stats_params = [
        _query(
            "benchmark",
            {
                "type": "string",
                "pattern": p.SYMBOL_REGEX,
                "maxLength": p.SYMBOL_MAX_LENGTH,
                "not": {"pattern": r"\.\."},
            },
            "Benchmark symbol (default: BARLAKE_BENCHMARK_SYMBOL, ^GSPC); 404 when named but "
            "not stored, omitted from the answer when the default is not stored.",
        ),
        *window,
        _query(
            "risk_free",
            {"type": "string", "pattern": a.RISK_FREE_REGEX, "default": "0.0"},
            "Annual risk-free rate as a decimal (0.04 = 4 %), for Sharpe, Sortino and alpha.",
        ),
        _query(
            "window",
            {"type": "integer", "minimum": 2, "maximum": a.MAX_WINDOW},
            "Rolling statistics over this many returns (e.g. 63, 252), one row per date.",
        ),
        fmt,
    ]
    csv = {"text/csv": {"schema": {"type": "string"}}}
    ind_content = {"application/json": {"schema": {"$ref": "#/components/schemas/IndicatorRows"}}}
    stats_content = {"application/json": {"schema": {"$ref": "#/components/schemas/Analytics"}}}
    return {
        "/v1/indicators/{symbol}": {
            "get": operation(
                "Technical indicators",
                "TA-Lib indicators over the stored bars (any interval and adjustment), computed "
                "over the whole history and then cut to start/end/limit; warm-up rows are null. "
                "Cached under the daily object's generation.",
                [
                    symbol,
                    indicator,
                    _query("interval", {"enum": list(p.INTERVALS), "default": "1d"}, "Bars."),
                    _query(
                        "adjust",
                        {"enum": list(p.ADJUSTMENTS), "default": "split"},
                        "Prices the indicators see (split, total, none).",
                    ),
                    *window,
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": p.MAX_LIMIT},
                        "Only the most recent N rows.",
                    ),
                    fmt,
                ],
                {"200": ok({**ind_content, **csv}, "Indicator columns by date."), **common},
                keyed=keyed,
                tag="analytics",
                op_id="getIndicators",
            )
        },
        "/v1/analytics/{symbol}": {
            "get": operation(
                "Performance statistics of one symbol",
                "Total return, CAGR, volatility, Sharpe, Sortino, max drawdown (peak, trough, "
                "recovery), Calmar, best/worst day; beta, alpha and correlation to the "
                "benchmark; rolling versions with window. From total-return (adjust=total) "
                "daily closes, annualised by the symbol's calendar (252, crypto 365).",
                [symbol, *stats_params],
                {"200": ok({**stats_content, **csv}, "Statistics."), **common},
                keyed=keyed,
                tag="analytics",
                op_id="getAnalytics",
            )
        },
        "/v1/analytics": {
            "get": operation(
                "Performance statistics of several symbols and their correlation matrix",
                f"Up to {a.MAX_SYMBOLS} symbols; the correlation matrix of daily returns, each "
                "pair over the dates both have.",
                [
                    _query(
                        "symbols",
                        {
                            "type": "string",
                            "pattern": f"^{p.SYMBOL_CHARS}(,{p.SYMBOL_CHARS}){{0,"
                            f"{a.MAX_SYMBOLS - 1}}}$",
                            "not": {"pattern": r"\.\."},
                        },
                        f"Comma-separated symbols, at most {a.MAX_SYMBOLS}.",
                        required=True,
                    ),
                    *stats_params,
                ],
                {"200": ok({**stats_content, **csv}, "Statistics and correlations."), **common},
                keyed=keyed,
                tag="analytics",
                op_id="getAnalyticsMany",
            )
        },
    }
