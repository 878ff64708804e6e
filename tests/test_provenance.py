"""Provenance laws (core/provenance.py) and its round trip through the daily object."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from barlake.core.codec import decode_daily, decode_provenance, encode_daily
from barlake.core.merge import merge_bars
from barlake.core.provenance import align, fallback_dates, runs, stamped, unknown_provenance
from barlake.core.schema import BAR_SCHEMA, empty_actions

T1 = datetime(2026, 1, 1, 22, tzinfo=UTC)
T2 = datetime(2026, 1, 2, 22, tzinfo=UTC)
days = st.lists(st.dates(date(2020, 1, 1), date(2020, 3, 1)), unique=True, max_size=25)


def bars(dates: list[date], price: float) -> pa.Table:
    rows = [
        {
            "symbol": "X",
            "date": d,
            "open": price,
            "high": price,
            "low": price,
            "close": price,
            "adj_close": price,
            "volume": 1,
        }
        for d in sorted(dates)
    ]
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


@given(days, days)
def test_merged_rows_carry_the_provenance_of_whoever_wrote_them_last(old: list, new: list) -> None:
    stored, fetched = bars(old, 1.0), bars(new, 2.0)
    merged = merge_bars(stored, fetched)
    prov = align(merged, stamped(fetched, "tiingo", T2), stamped(stored, "yahoo", T1))
    assert prov.column("date").equals(merged.column("date"))
    for row, p in zip(merged.to_pylist(), prov.to_pylist(), strict=True):
        assert p["source"] == ("tiingo" if row["date"] in set(new) else "yahoo")
        assert p["fetched_at"] == (T2 if row["date"] in set(new) else T1)
    assert fallback_dates(prov, "yahoo") == sorted(set(new))
    assert sum(r["rows"] for r in runs(prov)) == merged.num_rows


@given(days)
def test_round_trip_through_the_daily_object(dates: list) -> None:
    table = bars(dates, 3.0)
    prov = stamped(table, "polygon", T1)
    blob = encode_daily(table, empty_actions(), prov)
    decoded, _ = decode_daily(blob)
    assert decoded.equals(table)
    assert decode_provenance(blob).equals(prov)
    old = decode_provenance(encode_daily(table, empty_actions()))
    assert old.equals(unknown_provenance(table))  # stored before provenance: unknown
    assert fallback_dates(old, "yahoo") == []
