"""Data-quality profiles and the inventory.

Expected values are read off the fixtures by hand:

AET-L-1d-100x-error.csv (AET.L, London, newest row first) holds 23 rows, 2022-05-03 → 2022-06-06.
London was closed on Monday 2022-05-02 (Early May bank holiday) and on Thursday/Friday
2022-06-02/03 (Spring bank holiday moved for the Platinum Jubilee, plus the Jubilee holiday), so
the 23 rows are exactly the 23 LSE sessions of the range. Volume is 0 on every row except
2022-05-18 (532,454). The close is 0.1455 from 05-03 to 05-06, 14.55 (100× too large: pence
read as pounds) from 05-09 to 05-19, and 0.1455 again from 05-20.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from barlake.core.profile import build_inventory, build_profile
from barlake.core.schema import SCHEMA_VERSION, actions_from_pylist, bars_from_pylist
from conftest import weekdays

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
AET = FIXTURES / "yfinance_tests_data" / "AET-L-1d-100x-error.csv"
TCS_DAILY = FIXTURES / "daily_weekly_pairs" / "TCS.NS" / "TCS.NS_daily_data.csv"


def load_aet() -> pa.Table:
    """The AET.L file as BAR_SCHEMA rows, kept in the file's newest-first order."""
    with AET.open() as f:
        rows = list(csv.DictReader(f))
    return bars_from_pylist(
        "AET.L",
        [
            {
                "date": date.fromisoformat(r["Date"][:10]),  # exchange-local midnight
                "open": float(r["Open"]),
                "high": float(r["High"]),
                "low": float(r["Low"]),
                "close": float(r["Close"]),
                "adj_close": float(r["Adj Close"]),
                "volume": int(r["Volume"]),
            }
            for r in rows
        ],
    )


def load_tcs() -> pa.Table:
    with TCS_DAILY.open() as f:
        rows = list(csv.reader(f))
    header = rows[0]
    col = {name: header.index(name) for name in header}
    return bars_from_pylist(
        "TCS.NS",
        [
            {
                "date": date.fromisoformat(r[0]),
                "open": float(r[col["Open"]]),
                "high": float(r[col["High"]]),
                "low": float(r[col["Low"]]),
                "close": float(r[col["Close"]]),
                "adj_close": float(r[col["Adj Close"]]),
                "volume": int(r[col["Volume"]]),
            }
            for r in rows[2:]
        ],
    )


def profile(bars: pa.Table, symbol: str, as_of: date, **kw: object) -> dict:
    args: dict = {
        "generation": 7,
        "object_bytes": 12345,
        "quarantined": 0,
        "last_restatement": None,
    }
    args.update(kw)
    return build_profile(bars, symbol=symbol, as_of=as_of, **args)


def flat_bars(symbol: str, rows: list[tuple[date, float, int]]) -> pa.Table:
    return bars_from_pylist(
        symbol,
        [
            {"date": d, "open": c, "high": c, "low": c, "close": c, "adj_close": c, "volume": v}
            for d, c, v in rows
        ],
    )


# --------------------------------------------------------------------------- AET.L


def test_aet_profile() -> None:
    bars = load_aet()
    assert bars.num_rows == 23
    p = profile(bars, "AET.L", date(2022, 6, 6), quarantined=2)
    assert p["exchange"] == "XLON"
    assert p["calendar_known"] is True
    assert (p["first_date"], p["last_date"], p["rows"]) == ("2022-05-03", "2022-06-06", 23)
    assert p["sessions_expected"] == 23  # the Jubilee and May bank holidays are not sessions
    assert p["sessions_present"] == 23
    assert (p["gap_count"], p["gaps"]) == (0, [])
    assert p["staleness_sessions"] == 0
    assert p["unscheduled_sessions"] == 0
    assert p["quarantined"] == 2
    assert (p["generation"], p["bytes"], p["schema_version"]) == (7, 12345, SCHEMA_VERSION)
    # 05-03..05-17: 11 sessions at volume 0; 05-18 traded; 05-19..06-06: 11 sessions at 0.
    assert p["zero_volume_runs"] == [
        {"start": "2022-05-03", "end": "2022-05-17", "length": 11},
        {"start": "2022-05-19", "end": "2022-06-06", "length": 11},
    ]
    jumps = p["jumps"]
    assert [(j["previous_date"], j["date"]) for j in jumps] == [
        ("2022-05-06", "2022-05-09"),
        ("2022-05-19", "2022-05-20"),
    ]
    assert jumps[0]["ratio"] == pytest.approx(100.0, rel=1e-6)
    assert jumps[1]["ratio"] == pytest.approx(0.01, rel=1e-6)
    assert (jumps[0]["previous_close"], jumps[0]["close"]) == pytest.approx((0.1455, 14.55))
    json.dumps(p)  # JSON-ready as is: no default= needed


def test_aet_staleness_counts_sessions_not_days() -> None:
    bars = load_aet()
    # Tue 06-07 .. Fri 06-10: 4 sessions after the last row
    assert profile(bars, "AET.L", date(2022, 6, 10))["staleness_sessions"] == 4
    # up to 06-01: as of Sunday 06-05 nothing is missing (Thu/Fri Jubilee holidays, weekend)
    head = bars.filter(pc.less_equal(bars.column("date"), date(2022, 6, 1)))
    assert profile(head, "AET.L", date(2022, 6, 5))["staleness_sessions"] == 0
    assert profile(head, "AET.L", date(2022, 6, 6))["staleness_sessions"] == 1
    # as_of before the last row (a late clock) is never negative
    assert profile(bars, "AET.L", date(2022, 6, 1))["staleness_sessions"] == 0


def test_aet_gap_and_broken_run() -> None:
    bars = load_aet()
    missing = date(2022, 5, 25)
    p = profile(bars.filter(pc.not_equal(bars.column("date"), missing)), "AET.L", date(2022, 6, 6))
    assert (p["gap_count"], p["gaps"]) == (1, ["2022-05-25"])
    assert (p["sessions_expected"], p["sessions_present"], p["rows"]) == (23, 22, 22)
    # runs are over consecutive rows: the gap does not split the run, it shortens it by one
    assert p["zero_volume_runs"][1] == {"start": "2022-05-19", "end": "2022-06-06", "length": 10}


def test_a_split_day_is_not_excused_from_the_jump_check() -> None:
    """In an adjusted series a split shows no step, so a jump on a split day is exactly an
    unadjusted split (issue #9: a 10:1 event with close 2,711.74 → 274.04 reported 0 jumps)."""
    bars = load_aet()
    actions = actions_from_pylist(
        "AET.L", [(date(2022, 5, 9), "split", 100.0), (date(2022, 5, 20), "dividend", 0.01)]
    )
    p = profile(bars, "AET.L", date(2022, 6, 6), actions=actions)
    assert [j["date"] for j in p["jumps"]] == ["2022-05-09", "2022-05-20"]
    assert p["unadjusted_splits"] == []  # ×100 up is not what an unadjusted 100:1 split shows
    consolidation = actions_from_pylist("AET.L", [(date(2022, 5, 9), "split", 0.01)])
    p = profile(bars, "AET.L", date(2022, 6, 6), actions=consolidation)
    (flag,) = p["unadjusted_splits"]  # a 1:100 consolidation the prices do not reflect yet
    assert (flag["date"], flag["ratio"]) == ("2022-05-09", 0.01)
    assert flag["previous_close"] == pytest.approx(0.1455) and flag["close"] == pytest.approx(14.55)


# --------------------------------------------------------------------------- TCS.NS


def test_tcs_profile_on_raw_rows() -> None:
    # Raw rows (before validation) so that the off-calendar row is visible; see
    # tests/test_calendar.py::test_tcs_ns_against_xbom for what each one is. The budget
    # Saturday and the Muhurat session are exceptional sessions of the calendar.
    p = profile(load_tcs(), "TCS.NS", date(2025, 12, 22))
    assert p["exchange"] == "XBOM"
    assert (p["rows"], p["gap_count"]) == (250, 0)
    assert p["unscheduled_sessions"] == 1
    assert p["unscheduled_dates"] == ["2025-11-05"]
    assert (p["sessions_expected"], p["sessions_present"]) == (249, 249)
    assert p["zero_volume_runs"] == []  # 2025-03-18 and 2025-11-05 are isolated zero days
    assert p["jumps"] == []
    assert p["staleness_sessions"] == 0


# --------------------------------------------------------------------------- synthetic


def test_zero_volume_run_threshold() -> None:
    days = weekdays(date(2024, 1, 22), 10)  # Mon 01-22 .. Fri 02-02: no NYSE holiday
    vols = [5, 0, 0, 5, 0, 0, 0, 5, 0, 0]
    bars = flat_bars("ABC", [(d, 10.0, v) for d, v in zip(days, vols, strict=True)])
    p = profile(bars, "ABC", days[-1])
    # two zeros (01-23, 01-24): not a run; three (Fri 01-26, Mon 01-29, Tue 01-30): a run, the
    # weekend does not break it; the trailing two (02-01, 02-02): not a run
    assert p["zero_volume_runs"] == [{"start": "2024-01-26", "end": "2024-01-30", "length": 3}]
    assert (p["gap_count"], p["unscheduled_sessions"]) == (0, 0)


def test_jump_threshold_is_strict() -> None:
    days = weekdays(date(2024, 1, 8), 5)
    closes = [10.0, 30.0, 10.0, 31.0, 10.0]  # ×3 and ÷3 exactly: not jumps; ×3.1, ÷3.1: jumps
    p = profile(
        flat_bars("ABC", [(d, c, 1) for d, c in zip(days, closes, strict=True)]), "ABC", days[-1]
    )
    assert [j["date"] for j in p["jumps"]] == ["2024-01-11", "2024-01-12"]


def test_unsorted_input_and_unknown_calendar() -> None:
    days = weekdays(date(2024, 1, 8), 4)
    bars = flat_bars("FOO.ZZ", [(d, 1.0, 1) for d in reversed(days)])
    p = profile(bars, "FOO.ZZ", date(2024, 1, 12))
    assert p["calendar_known"] is False
    assert p["exchange"] == "XNYS"
    # rows Mon 01-08 .. Thu 01-11 (given newest first): as of Fri 01-12, one session behind
    assert (p["first_date"], p["last_date"], p["staleness_sessions"]) == (
        "2024-01-08",
        "2024-01-11",
        1,
    )


def test_crypto_profile_counts_weekends() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(14) if i != 6]  # no 01-07
    p = profile(flat_bars("BTC-USD", [(d, 40000.0, 1) for d in days]), "BTC-USD", date(2024, 1, 16))
    assert p["exchange"] == "ALWAYS"
    assert p["gaps"] == ["2024-01-07"]  # a Sunday is a gap for a 24/7 market
    assert p["staleness_sessions"] == 2  # 01-15 and 01-16


def test_empty_bars() -> None:
    p = profile(bars_from_pylist("AAPL", []), "AAPL", date(2024, 1, 12))
    assert (p["rows"], p["first_date"], p["last_date"], p["staleness_sessions"]) == (
        0,
        None,
        None,
        None,
    )
    assert p["gaps"] == [] and p["zero_volume_runs"] == [] and p["jumps"] == []
    json.dumps(p)


def test_last_restatement_is_carried() -> None:
    restatement = {
        "detected_at": "2025-08-25T22:00:00+00:00",
        "kinds": ["dividend"],
        "run_id": "r1",
    }
    days = weekdays(date(2024, 1, 8), 3)
    bars = flat_bars("ABC", [(d, 1.0, 1) for d in days])
    p = profile(bars, "ABC", date(2024, 1, 10), last_restatement=restatement)
    assert p["last_restatement"] == restatement
    assert json.loads(json.dumps(p))["last_restatement"] == restatement


# --------------------------------------------------------------------------- inventory


def test_inventory_aggregates() -> None:
    profiles = [
        {"symbol": "AAPL", "exchange": "XNYS", "calendar_known": True, "rows": 100,
         "bytes": 1000, "quarantined": 1, "staleness_sessions": 0, "gap_count": 0, "jumps": [],
         "last_date": "2024-01-12"},
        {"symbol": "VOD.L", "exchange": "XLON", "calendar_known": True, "rows": 50,
         "bytes": 600, "quarantined": 0, "staleness_sessions": 2, "gap_count": 3,
         "jump_count": 1, "last_date": "2024-01-09"},
        {"symbol": "FOO.ZZ", "exchange": "XNYS", "calendar_known": False, "rows": 10,
         "bytes": 80, "quarantined": 4, "staleness_sessions": 1, "gap_count": 1,
         "jump_count": 0, "last_date": "2024-01-11"},
        {"symbol": "NEW", "exchange": "XNYS", "calendar_known": True, "rows": 0, "bytes": 40,
         "quarantined": 0, "staleness_sessions": None, "gap_count": 0, "last_date": None},
    ]  # fmt: skip
    inv = build_inventory(profiles)
    assert (inv["symbols"], inv["rows"], inv["bytes"], inv["quarantined"]) == (4, 160, 1720, 5)
    assert (inv["stale"], inv["stale_symbols"]) == (1, ["VOD.L"])  # staleness 1 is not stale
    assert (inv["with_gaps"], inv["symbols_with_gaps"]) == (2, ["FOO.ZZ", "VOD.L"])
    assert inv["symbols_with_jumps"] == ["VOD.L"]
    assert inv["unknown_calendar_symbols"] == ["FOO.ZZ"]
    assert inv["per_exchange"] == {"XLON": 1, "XNYS": 3}
    assert (inv["oldest_last_date"], inv["oldest_symbol"]) == ("2024-01-09", "VOD.L")
    json.dumps(inv)


def test_inventory_of_real_profiles_round_tripped() -> None:
    aet = profile(load_aet(), "AET.L", date(2022, 6, 10), object_bytes=3000, quarantined=2)
    tcs = profile(load_tcs(), "TCS.NS", date(2025, 12, 22), object_bytes=9000)
    stored = [json.loads(json.dumps(p)) for p in (aet, tcs)]  # as the state store returns them
    inv = build_inventory(stored)
    assert (inv["symbols"], inv["rows"], inv["bytes"], inv["quarantined"]) == (2, 273, 12000, 2)
    assert inv["stale_symbols"] == ["AET.L"]  # 4 sessions behind on 2022-06-10
    assert inv["symbols_with_jumps"] == ["AET.L"]
    assert inv["symbols_with_gaps"] == []
    assert inv["per_exchange"] == {"XBOM": 1, "XLON": 1}
    assert inv["oldest_last_date"] == "2022-06-06"


def test_empty_inventory() -> None:
    inv = build_inventory([])
    assert (inv["symbols"], inv["stale_symbols"], inv["oldest_last_date"]) == (0, [], None)
