"""Object names are safe and reversible; the Parquet codec is lossless and lean."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from barlake.adapters.yahoo_chart import load_chart
from barlake.core import layout
from barlake.core.codec import decode_daily, encode_daily
from barlake.core.schema import InvalidSymbolError, normalize_symbol
from conftest import FIXTURES


@pytest.mark.parametrize(
    ("symbol", "key"),
    [
        ("BRK-B", "BRK-B"),
        ("^GSPC", "_5EGSPC"),
        ("EURUSD=X", "EURUSD_3DX"),
        ("BTC-USD", "BTC-USD"),
        ("7203.T", "7203.T"),
        ("aapl", "AAPL"),
    ],
)
def test_symbol_keys(symbol: str, key: str) -> None:
    assert layout.symbol_key(symbol) == key
    assert layout.symbol_of_daily(f"daily/{key}.parquet") == normalize_symbol(symbol)


@pytest.mark.parametrize(
    "bad", ["", "../etc", "A/B", "A B", "A" * 30, "AAPL;rm", "..", "A..B", "%2e"]
)
def test_bad_symbols_are_refused(bad: str) -> None:
    with pytest.raises(InvalidSymbolError):
        layout.symbol_key(bad)


@given(
    st.from_regex(r"\^?[A-Z0-9][A-Z0-9.\-=]{0,20}", fullmatch=True).filter(lambda s: ".." not in s)
)
def test_keys_round_trip_and_stay_in_their_prefix(symbol: str) -> None:
    key = layout.symbol_key(symbol)
    assert "/" not in key and layout.key_symbol(key) == symbol
    assert layout.daily_name(symbol).count("/") == 1


def test_only_the_canonical_key_names_a_symbol() -> None:
    # Stray objects must not feed AAPL's weekly bars and profile.
    assert layout.symbol_of_daily("daily/aapl.parquet") is None
    assert layout.symbol_of_daily("daily/_41APL.parquet") is None
    assert layout.symbol_of_daily("daily/_5egspc.parquet") is None
    assert layout.symbol_of_daily("daily/_5EGSPC.parquet") == "^GSPC"


def test_non_daily_names_are_not_symbols() -> None:
    assert layout.symbol_of_daily("weekly/AAPL.parquet") is None
    assert layout.symbol_of_daily("daily/x/AAPL.parquet") is None
    assert layout.symbol_of_daily("daily/AAPL.json") is None


def test_codec_round_trip_is_lossless_with_actions() -> None:
    rec = load_chart(FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json")
    data = encode_daily(rec.bars, rec.actions)
    bars, actions = decode_daily(data)
    assert bars.equals(rec.bars)
    assert actions.equals(rec.actions)
    assert [(a["date"], a["kind"], a["value"]) for a in actions.to_pylist()] == [
        (date(2020, 8, 31), "split", 4.0),
        (date(2020, 11, 6), "dividend", 0.205),
    ]


def test_codec_file_is_plain_parquet_without_pandas_metadata() -> None:
    rec = load_chart(FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json")
    meta = pq.read_metadata(pa.BufferReader(encode_daily(rec.bars, rec.actions)))
    keys = set((meta.metadata or {}).keys())
    assert b"pandas" not in keys and b"ARROW:schema" not in keys
    col = meta.row_group(0).column(meta.schema.names.index("close"))
    assert "BYTE_STREAM_SPLIT" in col.encodings
    assert (
        "DELTA_BINARY_PACKED" in meta.row_group(0).column(meta.schema.names.index("date")).encodings
    )
