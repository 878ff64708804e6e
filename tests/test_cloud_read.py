"""Reading the cloud lake from Python: the README's recipes for pyarrow/pandas, DuckDB and
Polars, run against fake-gcs-server (the same GCS JSON API the real service speaks).

The lake here is written by the real GCS adapter and its panel built by PanelService over GCS,
so this also proves the panel builds through the cloud store. The tools reach the emulator
through pyarrow's GcsFileSystem (`endpoint_override`, anonymous); against real GCS the same
code runs with `GcsFileSystem()` and Application Default Credentials.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import duckdb
import pandas as pd
import polars as pl
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pyarrow.fs import GcsFileSystem

from barlake.adapters.gcs_store import GcsObjectStore
from barlake.core.codec import decode_bars, encode_daily
from barlake.core.layout import daily_name
from barlake.core.schema import empty_actions
from barlake.services.panel import PanelService
from conftest import EMULATOR_PROJECT, flat_bars, weekdays

DAYS = weekdays(date(2024, 11, 1), 60)  # Nov 2024 .. Jan 2025: two partitions
SYMBOLS = ("AAA", "BRK-B", "^GSPC")


@pytest.fixture(scope="module")
def cloud_lake(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[GcsFileSystem, str, str]:
    emulator = request.getfixturevalue("gcs_emulator")
    with pytest.MonkeyPatch.context() as mp:
        for key, value in emulator.env.items():
            mp.setenv(key, value)
        suffix = uuid.uuid4().hex[:8]
        raw = GcsObjectStore(f"raw-{suffix}", project=EMULATOR_PROJECT)
        derived = GcsObjectStore(f"derived-{suffix}", project=EMULATOR_PROJECT)
        for store in (raw, derived):
            store.client.create_bucket(store.bucket)
        for k, symbol in enumerate(SYMBOLS):
            bars = flat_bars(symbol, DAYS, price=10.0 + k)
            raw.write(daily_name(symbol), encode_daily(bars, empty_actions()))
        report = PanelService(raw, derived, lambda: datetime(2025, 2, 1, tzinfo=UTC)).build()
        assert report.changed == len(SYMBOLS) and len(report.partitions) == 6
        # what the README shows: pyarrow's own GCS client, pointed at the emulator
        host = emulator.env["STORAGE_EMULATOR_HOST"].removeprefix("http://")
        gcs = GcsFileSystem(anonymous=True, endpoint_override=host, scheme="http")
        yield gcs, raw.bucket, derived.bucket


def test_pyarrow_and_pandas_read_the_panel_and_the_objects(cloud_lake) -> None:
    gcs, raw, derived = cloud_lake
    one_day = pq.read_table(
        f"{derived}/panel/daily",
        filesystem=gcs,
        partitioning="hive",
        filters=[("year", "=", 2025), ("date", "=", date(2025, 1, 3))],
    )
    assert sorted(one_day["symbol"].to_pylist()) == sorted(SYMBOLS)
    aapl = pd.read_parquet(f"{raw}/{daily_name('^GSPC')}", filesystem=gcs)
    assert len(aapl) == len(DAYS) and set(aapl["symbol"]) == {"^GSPC"}


def test_duckdb_reads_the_panel_through_an_arrow_dataset(cloud_lake) -> None:
    gcs, raw, derived = cloud_lake
    panel = ds.dataset(
        f"{derived}/panel/daily", filesystem=gcs, format="parquet", partitioning="hive"
    )
    con = duckdb.connect()
    con.register("panel", panel)  # DuckDB pushes the year/date filters into the dataset scan
    rows = con.sql(
        "SELECT symbol, close FROM panel WHERE year = 2025 AND date = DATE '2025-01-03' "
        "ORDER BY symbol"
    ).fetchall()
    assert rows == sorted((s, 10.0 + k) for k, s in enumerate(SYMBOLS))
    # ignore_prefixes: pyarrow skips names starting with "_" by default, and escaped symbols
    # (^GSPC → _5EGSPC.parquet) start with one
    objects = ds.dataset(f"{raw}/daily", filesystem=gcs, format="parquet", ignore_prefixes=["."])
    con.register("daily", objects)
    ((count,),) = con.sql("SELECT count(*) FROM daily WHERE date >= DATE '2025-01-01'").fetchall()
    assert count == len(SYMBOLS) * sum(d.year == 2025 for d in DAYS)


def test_polars_scans_the_panel(cloud_lake) -> None:
    gcs, raw, derived = cloud_lake
    panel = ds.dataset(
        f"{derived}/panel/weekly", filesystem=gcs, format="parquet", partitioning="hive"
    )
    weekly = (
        pl.scan_pyarrow_dataset(panel)
        .filter((pl.col("year") == 2024) & (pl.col("symbol") == "BRK-B"))
        .collect()
    )
    assert weekly.height > 0 and weekly["date"].is_sorted()
    # the panel equals the per-symbol object row for row
    daily = (
        pl.scan_pyarrow_dataset(
            ds.dataset(
                f"{derived}/panel/daily", filesystem=gcs, format="parquet", partitioning="hive"
            )
        )
        .filter(pl.col("symbol") == "AAA")
        .sort("date")
        .drop("year")
        .collect()
    )
    with gcs.open_input_file(f"{raw}/{daily_name('AAA')}") as fh:
        stored = decode_bars(fh.read())
    assert daily.to_arrow().equals(stored.select(daily.columns).cast(daily.to_arrow().schema))
    assert pc.sum(stored["volume"]).as_py() == daily["volume"].sum()
