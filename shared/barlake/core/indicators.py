"""Technical indicators over bars: TA-Lib's functions, named and shaped for the lake.

Pure: numpy/Arrow in, an Arrow table out; no clocks, no I/O. Every indicator is TA-Lib's own
function (the field's reference implementation) called on the bars' float64 columns, except
where TA-Lib has none; those are written here from TA-Lib's pieces and defined in the README
("Analytics"):
- Bollinger %B = (close − lower) / (upper − lower); width = (upper − lower) / middle;
- Keltner Channels: middle = EMA(close, timeperiod); upper/lower = middle ± nbatr × ATR(atrperiod);
- rolling VWAP = Σ typical price × volume / Σ volume over the last `timeperiod` bars, with
  typical price = (high + low + close) / 3 (a daily-bar VWAP: no intraday data in the lake).

Rules that hold for every indicator:
- parameters are named as TA-Lib names them (timeperiod, fastperiod, nbdevup, matype, …) and
  take TA-Lib's ranges; TA-Lib's own rules apply beyond that (MACD and PPO with a fastperiod
  above the slowperiod swap them, as TA-Lib does, and so does ADOSC);
- the output is one float64 column per TA-Lib output (MACD: macd, macd_signal, macd_hist);
- warm-up rows (where TA-Lib has no value yet) are null, never zero, and so is a value that is
  undefined (%B on a flat band, VWAP over zero volume);
- windows count bars, not calendar days: a gap in the history is simply not a bar, as in
  TA-Lib itself. Callers compute over the whole history and cut the window afterwards, so a
  value never depends on where the window starts.

TA-Lib is imported on first use (`talib()`), not with this module: the api function's cold
import stays light, and only requests that compute an indicator pay for it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa

# TA-Lib's moving-average types (the `matype` parameters): 0 SMA … 8 T3.
MA_TYPES = ("SMA", "EMA", "WMA", "DEMA", "TEMA", "TRIMA", "KAMA", "MAMA", "T3")
MAX_PERIOD = 100_000


class IndicatorError(ValueError):
    """A bad indicator name or parameter; `parameter` names it."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


@dataclass(frozen=True)
class Param:
    """One parameter, as TA-Lib names it, with its default and accepted range."""

    name: str
    default: float
    low: float
    high: float
    integer: bool = True

    def parse(self, raw: str | float, parameter: str) -> float:
        kind = "a whole number" if self.integer else "a number"
        message = (
            f"{parameter} must be {kind} from {_fmt(self.low)} to {_fmt(self.high)}, "
            f"got {str(raw)[:40]!r}"
        )
        try:
            value = _int(raw) if self.integer else float(raw)
        except (TypeError, ValueError):
            raise IndicatorError(parameter, message) from None
        if not self.low <= value <= self.high:  # NaN fails this too
            raise IndicatorError(parameter, message)
        return value


def _int(raw: str | float) -> int:
    if isinstance(raw, str):
        if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
            raise ValueError(raw)
        return int(raw)
    if isinstance(raw, bool) or float(raw) != int(raw):
        raise ValueError(raw)
    return int(raw)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _period(name: str = "timeperiod", default: int = 14, low: int = 2) -> Param:
    return Param(name, default, low, MAX_PERIOD)


def _dev(name: str, default: float = 2.0) -> Param:
    return Param(name, default, 0.0, 100.0, integer=False)


def _matype(name: str = "matype") -> Param:
    return Param(name, 0, 0, len(MA_TYPES) - 1)


Arrays = Mapping[str, np.ndarray]
Compute = Callable[[ModuleType, Arrays, Mapping[str, Any]], Sequence[np.ndarray]]


@dataclass(frozen=True)
class Indicator:
    """An indicator: its parameters, the bar columns it reads and the columns it returns."""

    name: str
    title: str
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    compute: Compute
    inputs: tuple[str, ...] = ("close",)

    @property
    def primary(self) -> Param | None:
        """The parameter a shorthand `name:N` sets: the first one, when it is a period."""
        return self.params[0] if self.params and self.params[0].integer else None

    def defaults(self) -> dict[str, Any]:
        return {p.name: _value(p, p.default) for p in self.params}


def _value(p: Param, v: float) -> Any:
    return int(v) if p.integer else float(v)


def _talib_fn(
    fn: str, *inputs: str, outputs: int = 1
) -> Compute:  # a TA-Lib function called with the bars' columns and the parameters as named
    def compute(ta: ModuleType, a: Arrays, kw: Mapping[str, Any]) -> Sequence[np.ndarray]:
        result = getattr(ta, fn)(*(a[i] for i in inputs), **kw)
        return (result,) if outputs == 1 else tuple(result)

    return compute


def _adx(ta: ModuleType, a: Arrays, kw: Mapping[str, Any]) -> Sequence[np.ndarray]:
    h, low, c = a["high"], a["low"], a["close"]
    return (ta.ADX(h, low, c, **kw), ta.PLUS_DI(h, low, c, **kw), ta.MINUS_DI(h, low, c, **kw))


def _bbands(ta: ModuleType, a: Arrays, kw: Mapping[str, Any]) -> Sequence[np.ndarray]:
    upper, middle, lower = ta.BBANDS(a["close"], **kw)
    with np.errstate(divide="ignore", invalid="ignore"):
        span = upper - lower
        percent_b = np.where(span != 0, (a["close"] - lower) / span, np.nan)
        width = np.where(middle != 0, span / middle, np.nan)
    return upper, middle, lower, percent_b, width


def _keltner(ta: ModuleType, a: Arrays, kw: Mapping[str, Any]) -> Sequence[np.ndarray]:
    middle = ta.EMA(a["close"], timeperiod=kw["timeperiod"])
    atr = ta.ATR(a["high"], a["low"], a["close"], timeperiod=kw["atrperiod"])
    band = kw["nbatr"] * atr
    return middle + band, middle, middle - band


def _vwap(ta: ModuleType, a: Arrays, kw: Mapping[str, Any]) -> Sequence[np.ndarray]:
    n = int(kw["timeperiod"])
    typical = (a["high"] + a["low"] + a["close"]) / 3.0
    volume = a["volume"]
    out = np.full(len(volume), np.nan)
    if len(volume) >= n:
        pv = np.concatenate(([0.0], np.cumsum(typical * volume)))
        vv = np.concatenate(([0.0], np.cumsum(volume)))
        num, den = pv[n:] - pv[:-n], vv[n:] - vv[:-n]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[n - 1 :] = np.where(den > 0, num / den, np.nan)
    return (out,)


_HLC = ("high", "low", "close")
_HLCV = ("high", "low", "close", "volume")

INDICATORS: dict[str, Indicator] = {
    i.name: i
    for i in (
        # trend
        Indicator("sma", "Simple moving average", (_period(default=20),), ("sma",),
                  _talib_fn("SMA", "close")),
        Indicator("ema", "Exponential moving average", (_period(default=20),), ("ema",),
                  _talib_fn("EMA", "close")),
        Indicator("wma", "Weighted moving average", (_period(default=20),), ("wma",),
                  _talib_fn("WMA", "close")),
        Indicator("dema", "Double exponential moving average", (_period(default=20),),
                  ("dema",), _talib_fn("DEMA", "close")),
        Indicator("tema", "Triple exponential moving average", (_period(default=20),),
                  ("tema",), _talib_fn("TEMA", "close")),
        Indicator(
            "macd", "Moving average convergence/divergence",
            (_period("fastperiod", 12), _period("slowperiod", 26), _period("signalperiod", 9, 1)),
            ("macd", "macd_signal", "macd_hist"), _talib_fn("MACD", "close", outputs=3),
        ),
        Indicator("adx", "Average directional index, +DI and −DI", (_period(),),
                  ("adx", "plus_di", "minus_di"), _adx, _HLC),
        Indicator("sar", "Parabolic SAR",
                  (Param("acceleration", 0.02, 0.0, 10.0, False),
                   Param("maximum", 0.2, 0.0, 10.0, False)),
                  ("sar",), _talib_fn("SAR", "high", "low"), ("high", "low")),
        # momentum
        Indicator("rsi", "Relative strength index", (_period(),), ("rsi",),
                  _talib_fn("RSI", "close")),
        Indicator(
            "stoch", "Stochastic oscillator (slow %K, %D)",
            (_period("fastk_period", 5, 1), _period("slowk_period", 3, 1), _matype("slowk_matype"),
             _period("slowd_period", 3, 1), _matype("slowd_matype")),
            ("stoch_k", "stoch_d"), _talib_fn("STOCH", *_HLC, outputs=2), _HLC,
        ),
        Indicator("willr", "Williams %R", (_period(),), ("willr",),
                  _talib_fn("WILLR", *_HLC), _HLC),
        Indicator("cci", "Commodity channel index", (_period(),), ("cci",),
                  _talib_fn("CCI", *_HLC), _HLC),
        Indicator("roc", "Rate of change, percent", (_period(default=10, low=1),), ("roc",),
                  _talib_fn("ROC", "close")),
        Indicator("mom", "Momentum (close − close n bars ago)", (_period(default=10, low=1),),
                  ("mom",), _talib_fn("MOM", "close")),
        Indicator("cmo", "Chande momentum oscillator", (_period(),), ("cmo",),
                  _talib_fn("CMO", "close")),
        Indicator(
            "ppo", "Percentage price oscillator",
            (_period("fastperiod", 12), _period("slowperiod", 26), _matype()),
            ("ppo",), _talib_fn("PPO", "close"),
        ),
        # volatility
        Indicator(
            "bbands", "Bollinger Bands, %B and width",
            (_period(default=20), _dev("nbdevup"), _dev("nbdevdn"), _matype()),
            ("bb_upper", "bb_middle", "bb_lower", "bb_percent_b", "bb_width"), _bbands,
        ),
        Indicator("atr", "Average true range", (_period(default=14, low=1),), ("atr",),
                  _talib_fn("ATR", *_HLC), _HLC),
        Indicator("natr", "Normalized average true range, percent",
                  (_period(default=14, low=1),), ("natr",), _talib_fn("NATR", *_HLC), _HLC),
        Indicator(
            "keltner", "Keltner Channels (EMA ± nbatr × ATR)",
            (_period(default=20), _period("atrperiod", 10, 1), _dev("nbatr")),
            ("kc_upper", "kc_middle", "kc_lower"), _keltner, _HLC,
        ),
        # volume
        Indicator("obv", "On-balance volume", (), ("obv",),
                  _talib_fn("OBV", "close", "volume"), ("close", "volume")),
        Indicator("mfi", "Money flow index", (_period(),), ("mfi",),
                  _talib_fn("MFI", *_HLCV), _HLCV),
        Indicator("ad", "Chaikin accumulation/distribution line", (), ("ad",),
                  _talib_fn("AD", *_HLCV), _HLCV),
        Indicator("adosc", "Chaikin A/D oscillator",
                  (_period("fastperiod", 3), _period("slowperiod", 10)), ("adosc",),
                  _talib_fn("ADOSC", *_HLCV), _HLCV),
        Indicator("vwap", "Rolling volume-weighted average price", (_period(default=20, low=1),),
                  ("vwap",), _vwap, _HLCV),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One indicator with every parameter resolved (defaults filled in)."""

    indicator: Indicator
    params: tuple[tuple[str, Any], ...]

    @property
    def name(self) -> str:
        return self.indicator.name

    def key(self) -> str:
        """Canonical text: part of cache keys and ETags."""
        return self.name + "(" + ",".join(f"{k}={v}" for k, v in self.params) + ")"


def lookup(name: str, parameter: str = "name") -> Indicator:
    found = INDICATORS.get(name)
    if found is None:
        raise IndicatorError(
            parameter, f"unknown indicator {name[:40]!r} (known: {', '.join(sorted(INDICATORS))})"
        )
    return found


def request(name: str, given: Mapping[str, str | float], parameter: str = "name") -> Request:
    """An indicator with its parameters checked: unknown or out-of-range ones are errors."""
    ind = lookup(name, parameter)
    known = {p.name: p for p in ind.params}
    for k in given:
        if k not in known:
            allowed = ", ".join(known) or "none"
            raise IndicatorError(
                k, f"{ind.name} takes no parameter {k[:40]!r} (it takes: {allowed})"
            )
    values = {p.name: _value(p, p.parse(given[p.name], p.name)) if p.name in given else
              _value(p, p.default) for p in ind.params}  # fmt: skip
    return Request(ind, tuple(values.items()))


def parse_names(raw: str, parameter: str = "names", most: int = 16) -> list[Request]:
    """`sma:20,ema:50,rsi:14,macd`: each item an indicator with its first parameter (or none)."""
    items = raw.split(",")
    if not raw or len(items) > most:
        raise IndicatorError(
            parameter, f"{parameter} must list 1 to {most} indicators like sma:20,ema:50,rsi:14"
        )
    out: list[Request] = []
    for item in items:
        name, sep, value = item.partition(":")
        ind = lookup(name, parameter)
        given: dict[str, str] = {}
        if sep:
            if ind.primary is None:
                raise IndicatorError(parameter, f"{ind.name} takes no period (in {item[:40]!r})")
            ind.primary.parse(value, parameter)
            given[ind.primary.name] = value
        out.append(request(ind.name, given, parameter))
    return list({r.key(): r for r in out}.values())  # the same one twice: once


def output_names(requests: Sequence[Request]) -> list[str]:
    """Output columns of several requests; disambiguated by the first parameter when needed
    (`sma_20`, `sma_50`), kept as TA-Lib-style names otherwise (`rsi`, `macd_hist`)."""
    plain = [c for r in requests for c in r.indicator.outputs]
    if len(set(plain)) == len(plain):
        return plain
    out: list[str] = []
    for r in requests:
        suffix = f"_{r.params[0][1]}" if r.params else ""
        out += [f"{c}{suffix}" for c in r.indicator.outputs]
    return out


@functools.cache
def talib() -> ModuleType:
    """TA-Lib, imported once, on first use.

    Its package imports pandas and polars when they are installed, only to accept their
    Series; we pass numpy arrays. Where pandas is not loaded yet (the API), it is hidden for
    that one import, which keeps ~0.7 s of pandas out of the first indicator request.
    """
    if "pandas" in sys.modules:
        import talib as ta

        return ta
    import importlib.abc
    import threading

    owner = threading.get_ident()  # hidden from this thread only: others import as usual

    class _Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name: str, path: object, target: object = None) -> None:
            top = name.partition(".")[0]
            if top in ("pandas", "polars") and threading.get_ident() == owner:
                raise ModuleNotFoundError(f"{name} hidden while TA-Lib loads", name=top)

    finder = _Hide()
    sys.meta_path.insert(0, finder)
    try:
        import talib as ta
    finally:
        sys.meta_path.remove(finder)
    return ta


def numbers(column: pa.ChunkedArray | pa.Array, dtype: str = "float64") -> np.ndarray:
    """A numeric column as a numpy array (float nulls → NaN), read from its Arrow buffer.

    Not `to_numpy()`: that loads pandas into the process on first use (~0.7 s), which the api
    function otherwise never needs.
    """
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    arr = arr.cast(pa.from_numpy_dtype(np.dtype(dtype)))
    if arr.null_count:
        arr = arr.fill_null(float("nan") if dtype.startswith("float") else 0)
    width = np.dtype(dtype).itemsize
    data = arr.buffers()[1]
    if data is None or len(arr) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype, count=len(arr), offset=arr.offset * width).copy()


def _float(table: pa.Table, name: str) -> np.ndarray:
    return numbers(table.column(name))


def _nullable(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    return pa.array(values, pa.float64(), mask=~np.isfinite(values))


def compute(table: pa.Table, requests: Sequence[Request]) -> pa.Table:
    """`date` and every output column of the requests over the bars (oldest first).

    TA-Lib's NaN (warm-up, undefined) and infinities become nulls.
    """
    ta = talib()
    needed = {c for r in requests for c in r.indicator.inputs}
    arrays = {c: _float(table, c) for c in needed}
    names = output_names(requests)
    columns: list[pa.Array] = []
    for r in requests:
        if table.num_rows == 0:
            results: Sequence[np.ndarray] = [np.empty(0)] * len(r.indicator.outputs)
        else:
            results = r.indicator.compute(ta, arrays, dict(r.params))
        columns += [_nullable(v) for v in results]
    return pa.table([table.column("date"), *columns], names=["date", *names])
