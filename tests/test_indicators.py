"""barlake.core.indicators against TA-Lib called directly, column by column, on real bars.

Data: 20 years of S&P 500 daily bars (arch.data.sp500, 5,031 sessions), the same with holes
cut into the history, its weekly bars (the lake's own aggregation), and NVDA around its 4:1
split (tests/fixtures/yahoo). Tolerances: a column that is a TA-Lib output is compared for
exact equality (same function, same float64 inputs: bit for bit, NaN where TA-Lib has NaN);
a column barlake derives from TA-Lib's outputs (Bollinger %B and width, Keltner Channels) or
computes itself (rolling VWAP) is compared with rtol 1e-12 against the definition written out
here with numpy/pandas. Warm-up rows are null (never zero) exactly where TA-Lib has NaN.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import NVDA, arch_bars, column, recorded
from barlake.core import indicators as ind
from barlake.core.aggregate import aggregate


@pytest.fixture(scope="module")
def sp500() -> pa.Table:
    return arch_bars()


def arrays(t: pa.Table) -> dict[str, np.ndarray]:
    return {c: column(t, c) for c in ("open", "high", "low", "close", "volume")}


def reference(name: str, a: dict[str, np.ndarray], **kw) -> dict[str, np.ndarray]:
    """Each indicator's columns from TA-Lib itself (and the documented formulas)."""
    h, lo, c, v = a["high"], a["low"], a["close"], a["volume"]
    kw = kw or ind.INDICATORS[name].defaults()
    if name == "macd":
        m, s, hist = talib.MACD(c, **kw)
        return {"macd": m, "macd_signal": s, "macd_hist": hist}
    if name == "stoch":
        k, d = talib.STOCH(h, lo, c, **kw)
        return {"stoch_k": k, "stoch_d": d}
    if name == "adx":
        return {
            "adx": talib.ADX(h, lo, c, **kw),
            "plus_di": talib.PLUS_DI(h, lo, c, **kw),
            "minus_di": talib.MINUS_DI(h, lo, c, **kw),
        }
    if name == "bbands":
        up, mid, low = talib.BBANDS(c, **kw)
        with np.errstate(all="ignore"):
            return {
                "bb_upper": up,
                "bb_middle": mid,
                "bb_lower": low,
                "bb_percent_b": (c - low) / (up - low),
                "bb_width": (up - low) / mid,
            }
    if name == "keltner":
        mid = talib.EMA(c, timeperiod=kw["timeperiod"])
        atr = talib.ATR(h, lo, c, timeperiod=kw["atrperiod"])
        return {
            "kc_upper": mid + kw["nbatr"] * atr,
            "kc_middle": mid,
            "kc_lower": mid - kw["nbatr"] * atr,
        }
    if name == "vwap":
        n = kw["timeperiod"]
        tp = pd.Series((h + lo + c) / 3)
        vol = pd.Series(v)
        return {"vwap": ((tp * vol).rolling(n).sum() / vol.rolling(n).sum()).to_numpy()}
    inputs = {
        "sar": (h, lo),
        "willr": (h, lo, c),
        "cci": (h, lo, c),
        "atr": (h, lo, c),
        "natr": (h, lo, c),
        "obv": (c, v),
        "mfi": (h, lo, c, v),
        "ad": (h, lo, c, v),
        "adosc": (h, lo, c, v),
    }.get(name, (c,))
    return {name: getattr(talib, name.upper())(*inputs, **kw)}


EXACT = {"bb_percent_b", "bb_width", "kc_upper", "kc_lower", "vwap"}  # derived: rtol 1e-12


def check_equal(got: pa.Table, want: dict[str, np.ndarray]) -> None:
    assert got.column_names == ["date", *want]
    for name, expected in want.items():
        col = got.column(name)
        values = column(got, name)
        nan = ~np.isfinite(expected)
        # nulls exactly where TA-Lib has no value; never a zero standing in for one
        assert np.array_equal(col.is_null().to_numpy(zero_copy_only=False), nan), name
        if name in EXACT:
            np.testing.assert_allclose(values[~nan], expected[~nan], rtol=1e-12, err_msg=name)
        else:
            assert np.array_equal(values[~nan], expected[~nan]), name  # bit for bit


@pytest.mark.parametrize("name", sorted(ind.INDICATORS))
def test_every_indicator_equals_talib_on_20_years_of_sp500(sp500: pa.Table, name: str) -> None:
    req = ind.request(name, {})
    got = ind.compute(sp500, [req])
    assert got.num_rows == sp500.num_rows == 5031
    check_equal(got, reference(name, arrays(sp500)))


def test_warm_up_rows_are_null_never_zero(sp500: pa.Table) -> None:
    got = ind.compute(sp500, ind.parse_names("sma:20,rsi:14,macd,bbands,vwap:10,obv"))
    warm = {"sma": 19, "rsi": 14, "macd": 33, "macd_signal": 33, "macd_hist": 33}
    warm |= {"bb_upper": 19, "bb_percent_b": 19, "vwap": 9, "obv": 0}
    for name, n in warm.items():
        nulls = got.column(name).is_null().to_numpy(zero_copy_only=False)
        assert nulls[:n].all() and not nulls[n:].any(), name


def test_parameters_as_talib_names_them(sp500: pa.Table) -> None:
    a = arrays(sp500)
    cases = {
        "sma": {"timeperiod": 50},
        "ema": {"timeperiod": 200},
        "macd": {"fastperiod": 5, "slowperiod": 35, "signalperiod": 5},
        "bbands": {"timeperiod": 10, "nbdevup": 1.5, "nbdevdn": 2.5, "matype": 1},
        "stoch": {
            "fastk_period": 14,
            "slowk_period": 3,
            "slowk_matype": 1,
            "slowd_period": 5,
            "slowd_matype": 0,
        },
        "keltner": {"timeperiod": 10, "atrperiod": 20, "nbatr": 1.5},
        "vwap": {"timeperiod": 5},
        "adx": {"timeperiod": 7},
    }
    for name, kw in cases.items():
        req = ind.request(name, {k: str(v) for k, v in kw.items()})
        assert dict(req.params) == kw
        check_equal(ind.compute(sp500, [req]), reference(name, a, **kw))


def test_gaps_in_the_history_are_not_bars(sp500: pa.Table) -> None:
    """A hole (a missing quarter, scattered missing days) is skipped, as TA-Lib does with the
    arrays it is given: windows count bars, not days."""
    keep = np.ones(sp500.num_rows, dtype=bool)
    keep[1000:1063] = False  # a quarter missing
    keep[::17] = False  # and scattered days
    gapped = sp500.filter(pa.array(keep))
    a = arrays(gapped)
    for name in ("sma", "ema", "rsi", "macd", "bbands", "atr", "obv", "vwap", "adx"):
        check_equal(ind.compute(gapped, [ind.request(name, {})]), reference(name, a))


def test_weekly_bars(sp500: pa.Table) -> None:
    weekly = aggregate(sp500, "1wk", date(2018, 12, 31))
    assert 1040 < weekly.num_rows < 1050
    a = arrays(weekly)
    for name in ("sma", "rsi", "macd", "stoch", "bbands", "mfi", "keltner"):
        check_equal(ind.compute(weekly, [ind.request(name, {})]), reference(name, a))


def test_split_inside_the_window_on_split_adjusted_bars() -> None:
    """NVDA's 4:1 split of 2021-07-20: the stored (split-adjusted) bars run smoothly through it,
    so an SMA across the split equals TA-Lib's on the same bars, with no ×4 step."""
    bars, _ = recorded(NVDA)
    got = ind.compute(bars, ind.parse_names("sma:10,rsi:14"))
    check_equal(
        got, {**reference("sma", arrays(bars), timeperiod=10), **reference("rsi", arrays(bars))}
    )
    dates = bars.column("date").to_pylist()
    i = [d.isoformat() for d in dates].index("2021-07-20")
    sma = column(got, "sma")
    assert 0.9 < sma[i + 2] / sma[i - 2] < 1.1


def test_names_list_and_output_columns(sp500: pa.Table) -> None:
    reqs = ind.parse_names("sma:20,sma:50,ema:50,rsi:14,macd")
    got = ind.compute(sp500, reqs)
    assert got.column_names == [
        "date", "sma_20", "sma_50", "ema_50", "rsi_14", "macd_12", "macd_signal_12", "macd_hist_12"
    ]  # fmt: skip
    c = column(sp500, "close")
    assert np.array_equal(column(got, "sma_50")[49:], talib.SMA(c, 50)[49:])
    assert ind.parse_names("sma:20,sma:20") == ind.parse_names("sma:20")
    plain = ind.compute(sp500, ind.parse_names("rsi:7,macd"))
    assert plain.column_names == ["date", "rsi", "macd", "macd_signal", "macd_hist"]


@pytest.mark.parametrize(
    ("name", "given", "parameter", "fragment"),
    [
        ("nosuch", {}, "name", "unknown indicator"),
        ("sma", {"fastperiod": "3"}, "fastperiod", "takes no parameter"),
        ("sma", {"timeperiod": "1"}, "timeperiod", "from 2 to"),
        ("sma", {"timeperiod": "abc"}, "timeperiod", "whole number"),
        ("sma", {"timeperiod": "-5"}, "timeperiod", "whole number"),
        ("rsi", {"timeperiod": "1000001"}, "timeperiod", "whole number"),
        ("bbands", {"nbdevup": "nan"}, "nbdevup", "from 0 to"),
        ("bbands", {"matype": "9"}, "matype", "from 0 to 8"),
        ("SMA", {}, "name", "unknown indicator"),
    ],
)
def test_bad_names_and_parameters_name_the_parameter(name, given, parameter, fragment) -> None:
    with pytest.raises(ind.IndicatorError) as exc:
        ind.request(name, given)
    assert exc.value.parameter == parameter
    assert fragment in str(exc.value)


@pytest.mark.parametrize("raw", ["", "sma:", "sma:x", "obv:3", "sma:1", ",", "x" * 60, "a," * 17])
def test_bad_names_lists(raw: str) -> None:
    with pytest.raises(ind.IndicatorError) as exc:
        ind.parse_names(raw)
    assert exc.value.parameter == "names"


def test_empty_and_short_histories(sp500: pa.Table) -> None:
    every = [ind.request(n, {}) for n in sorted(ind.INDICATORS)]
    empty = ind.compute(sp500.slice(0, 0), every)
    assert empty.num_rows == 0
    short = ind.compute(sp500.slice(0, 5), every)
    for name in short.column_names[1:]:
        values = short.column(name)
        assert values.null_count >= 0 and not any(v == 0 and name == "sma" for v in values)
    assert short.column("sma").null_count == 5  # warm-up longer than the history: all null


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(ind.INDICATORS)),
    data=st.data(),
)
def test_any_accepted_parameters_run_on_talib(sp500: pa.Table, name: str, data) -> None:
    """Every value the validation accepts is one TA-Lib accepts: no parameter reaches it and
    fails there (which the API would answer with a 500)."""
    spec = ind.INDICATORS[name]
    given_ = {}
    for p in spec.params:
        if p.integer:
            hi = min(p.high, 400)
            value = data.draw(st.integers(int(p.low), int(hi)), label=p.name)
        else:
            value = data.draw(st.floats(p.low, p.high, allow_nan=False), label=p.name)
        given_[p.name] = str(value)
    req = ind.request(name, given_)
    got = ind.compute(sp500.slice(0, 600), [req])
    assert got.num_rows == 600


def test_computing_indicators_never_loads_pandas() -> None:
    """The api function never needs pandas (~0.7 s to import): neither TA-Lib's import nor
    reading the bars' columns may load it. A fresh interpreter, as an api instance starts."""
    import subprocess
    import sys

    code = """
import sys
from barlake.api.function import pyarrow_without_pandas
pyarrow_without_pandas()
sys.path.insert(0, "tests")
from analytics_data import MSFT, recorded
assert "pandas" not in sys.modules
from barlake.core import indicators as ind
from barlake.core import performance as perf
t = ind.compute(recorded(MSFT)[0], [ind.request(n, {}) for n in sorted(ind.INDICATORS)])
assert t.num_rows == 252 and "talib" in sys.modules
print("pandas" in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
