"""The cross-sectional panel: built by the pipeline, equal to the per-symbol objects row for
row, rebuilt incrementally, and never racing with itself."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barlake.adapters.local_store import LocalObjectStore
from barlake.core.aggregate import aggregate
from barlake.core.codec import decode_bars, decode_periods, encode_daily
from barlake.core.layout import RAW_DAILY_PREFIX, daily_name, period_name, symbol_of_daily
from barlake.core.panel import (
    LEASE_NAME,
    PANEL_DIRS,
    ROW_GROUP_ROWS,
    decode_partition,
    partition_name,
    partition_of,
)
from barlake.core.schema import empty_actions
from barlake.demo import DEMO_SYMBOLS, run_demo
from barlake.ports import ObjectStore, TransientError
from barlake.services.derived import complete_through
from barlake.services.panel import PanelBusyError, PanelService
from conftest import flat_bars, weekdays

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def panel_table(store: ObjectStore, interval: str) -> pa.Table:
    """Every partition of one panel, concatenated in name (= year) order."""
    parts = [
        decode_partition(store.read(i.name).data, interval)  # type: ignore[union-attr]
        for i in store.list(f"panel/{PANEL_DIRS[interval]}/")
        if partition_of(i.name) is not None
    ]
    return pa.concat_tables(parts) if parts else pa.table({})


def per_symbol(raw: ObjectStore, interval: str) -> pa.Table:
    """What the per-symbol objects hold, in the panel's order (date, symbol)."""
    tables = []
    for info in raw.list(RAW_DAILY_PREFIX):
        symbol = symbol_of_daily(info.name)
        bars = decode_bars(raw.read(info.name).data)  # type: ignore[union-attr]
        if interval != "1d":
            bars = aggregate(bars, interval, complete_through(symbol, bars["date"][-1].as_py()))
        tables.append(bars)
    return pa.concat_tables(tables).sort_by([("date", "ascending"), ("symbol", "ascending")])


def assert_panel_equals_objects(raw: ObjectStore, derived: ObjectStore) -> None:
    for interval in PANEL_DIRS:
        panel, objects = panel_table(derived, interval), per_symbol(raw, interval)
        assert panel.num_rows == objects.num_rows, interval
        assert panel.equals(objects.select(panel.schema.names)), interval


# ------------------------------------------------------------------ the pipeline builds it


def test_embedded_pipeline_builds_the_panel_equal_to_the_objects(tmp_path: Path) -> None:
    app, stages, _ = run_demo(tmp_path / "lake")  # three runs: history, splits, restatements
    # (MSFT's third recording starts later than the lake: suspect on first sight, so that
    # stage's first run stays incomplete and the demo runs it again — docs/data-quality.md)
    assert stages[-1].run.complete
    assert all(
        s.run.complete or any("suspect answer" in (o.error or "") for o in s.run.outcomes())
        for s in stages
    )
    assert_panel_equals_objects(app.raw, app.derived)
    # row for row against the derived weekly/monthly objects the weekly function built too
    for interval in ("1wk", "1mo"):
        panel = panel_table(app.derived, interval)
        for symbol in DEMO_SYMBOLS:
            obj = app.derived.read(period_name(symbol, interval))
            mine = panel.filter(pc.equal(panel["symbol"], symbol))
            assert mine.equals(decode_periods(obj.data).select(mine.schema.names))  # type: ignore[union-attr]
    # nothing left to do: the last run's panel build is up to date
    report = app.panel.build()
    assert (report.changed, report.partitions) == (0, ())
    # the Hive layout reads as one table with a year column
    dataset = ds.dataset(
        app.derived.dir / "panel" / "daily",  # type: ignore[attr-defined]
        format="parquet",
        partitioning="hive",
    )
    table = dataset.to_table(filter=ds.field("year") == 2025)
    assert table.num_rows and set(pc.year(table["date"]).to_pylist()) == {2025}


# ------------------------------------------------------------------ incremental


def lake(
    tmp_path: Path, now: datetime = NOW
) -> tuple[LocalObjectStore, LocalObjectStore, PanelService]:
    raw = LocalObjectStore(tmp_path, "raw")
    derived = LocalObjectStore(tmp_path, "derived")
    return raw, derived, PanelService(raw, derived, lambda: now)


def put(raw: ObjectStore, symbol: str, days: list[date], price: float = 10.0) -> None:
    raw.write(daily_name(symbol), encode_daily(flat_bars(symbol, days, price), empty_actions()))


def test_a_daily_update_rewrites_only_this_years_partitions(tmp_path: Path) -> None:
    raw, derived, panel = lake(tmp_path)
    days = weekdays(date(2023, 6, 1), 700)  # mid-2023 .. early 2026
    for symbol in ("AAA", "BBB", "CCC"):
        put(raw, symbol, days)
    first = panel.build()
    assert first.changed == 3 and len(first.partitions) == 3 * 4  # 2023..2026 × 3 intervals
    before = {i.name: i.generation for i in derived.list("panel/")}

    put(raw, "BBB", [*days, *weekdays(days[-1] + timedelta(days=1), 1)])  # one more session
    report = panel.build()
    year = days[-1].year
    assert (report.changed, report.removed) == (1, 0)
    assert set(report.partitions) == {partition_name(i, year) for i in PANEL_DIRS}
    after = {i.name: i.generation for i in derived.list("panel/")}
    untouched = {n for n in before if partition_of(n) and partition_of(n)[1] != year}  # type: ignore[index]
    assert {n: after[n] for n in untouched} == {n: before[n] for n in untouched}
    assert_panel_equals_objects(raw, derived)


def test_a_restated_year_and_a_removed_symbol(tmp_path: Path) -> None:
    raw, derived, panel = lake(tmp_path)
    days = weekdays(date(2024, 1, 2), 500)
    put(raw, "AAA", days)
    put(raw, "BBB", days)
    panel.build()
    restated = [d for d in days if d.year == 2024]
    raw.write(
        daily_name("AAA"),
        encode_daily(
            pa.concat_tables(
                [flat_bars("AAA", restated, 5.0), flat_bars("AAA", days[len(restated) :])]
            ),
            empty_actions(),
        ),
    )
    raw.delete(daily_name("BBB"))
    report = panel.build()
    assert (report.changed, report.removed) == (1, 1)
    assert all("year=2024" in p or "year=2025" in p for p in report.partitions)
    assert_panel_equals_objects(raw, derived)
    assert "BBB" not in set(panel_table(derived, "1d")["symbol"].to_pylist())


def test_row_groups_are_sorted_by_date_for_pruning(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    raw, derived, panel = lake(tmp_path)
    days = weekdays(date(2025, 1, 2), 250)
    for i in range(300):  # 75,000 rows in 2025
        put(raw, f"S{i:03d}", days)
    panel.build()
    meta = pq.ParquetFile(derived.dir / partition_name("1d", 2025)).metadata
    assert meta.num_row_groups == -(-250 // (ROW_GROUP_ROWS // 300))  # whole dates per group
    assert all(meta.row_group(g).num_rows <= ROW_GROUP_ROWS for g in range(meta.num_row_groups))
    date_col = meta.schema.names.index("date")
    ranges = [
        (
            meta.row_group(g).column(date_col).statistics.min,
            meta.row_group(g).column(date_col).statistics.max,
        )
        for g in range(meta.num_row_groups)
    ]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(ranges))  # no date in two groups


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["AAA", "BBB", "C.D", "^IX"]),
            st.integers(0, 3),  # first year offset
            st.integers(0, 600),  # sessions (0: delete)
            st.floats(1, 100, allow_nan=False),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_incremental_builds_equal_a_build_from_scratch(tmp_path_factory, steps) -> None:
    """Law: whatever sequence of writes and deletes the lake sees, the panel updated after each
    equals the per-symbol objects (and so a build from nothing)."""
    root = tmp_path_factory.mktemp("panel")
    raw, derived, panel = lake(root)
    for symbol, offset, sessions, price in steps:
        if sessions == 0:
            raw.delete(daily_name(symbol))
        else:
            put(raw, symbol, weekdays(date(2021 + offset, 12, 20), sessions), price)
        panel.build()
    if any(True for _ in raw.list(RAW_DAILY_PREFIX)):
        assert_panel_equals_objects(raw, derived)
    else:
        assert panel_table(derived, "1d").num_rows in (0,)


# ------------------------------------------------------------------ never racing


def test_a_held_lease_refuses_a_second_build_until_it_expires(tmp_path: Path) -> None:
    raw, derived, panel = lake(tmp_path)
    put(raw, "AAA", weekdays(date(2025, 1, 2), 20))
    expires = (NOW + timedelta(minutes=5)).isoformat()
    derived.write(LEASE_NAME, json.dumps({"holder": "other", "expires": expires}).encode())
    with pytest.raises(PanelBusyError):
        panel.build()
    assert not list(derived.list("panel/daily/"))
    later = PanelService(raw, derived, lambda: NOW + timedelta(minutes=6))
    assert later.build().changed == 1  # the lease expired: taken over
    assert json.loads(derived.read(LEASE_NAME).data)["released"] is True  # type: ignore[union-attr]
    assert panel.build().changed == 0  # released: the next build runs at once


class RacingStore(LocalObjectStore):
    """A real local store where another writer replaces a partition right after this build
    has read it (as a second builder or an operator could)."""

    def read(self, name: str):  # type: ignore[no-untyped-def]
        obj = super().read(name)
        if obj is not None and partition_of(name) is not None and not getattr(self, "raced", False):
            self.raced = True
            LocalObjectStore.write(self, name, obj.data)  # same bytes, new generation
        return obj


def test_a_partition_replaced_mid_build_fails_the_build_instead_of_losing_it(
    tmp_path: Path,
) -> None:
    raw = LocalObjectStore(tmp_path, "raw")
    derived = RacingStore(tmp_path, "derived")
    panel = PanelService(raw, derived, lambda: NOW)
    days = weekdays(date(2025, 1, 2), 20)
    put(raw, "AAA", days)
    derived.raced = True  # type: ignore[attr-defined]
    panel.build()
    derived.raced = False  # type: ignore[attr-defined]
    put(raw, "BBB", days)
    with pytest.raises(TransientError, match="changed during the panel build"):
        panel.build()
    assert panel.build().changed == 1  # retried (lease released), it completes
    assert_panel_equals_objects(raw, derived)


def test_barlake_panel_build_from_the_command_line(tmp_path: Path) -> None:
    from test_config_cli import barlake

    lake_dir = tmp_path / "lake"
    run_demo(lake_dir)  # the runs built the panel already: nothing to do
    done = barlake("panel", "build", "--lake", str(lake_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "4 symbols, 0 changed, 0 removed; 0 partitions written" in done.stdout
    full = barlake("panel", "build", "--full", "--lake", str(lake_dir), cwd=tmp_path)
    assert full.returncode == 0 and "4 changed" in full.stdout
    assert "panel/daily/year=2025/bars.parquet" in full.stdout
    missing = barlake("panel", "build", "--lake", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 4 and missing.stderr.startswith("barlake: error: no lake")


def test_an_undecodable_daily_object_is_skipped_not_fatal(tmp_path: Path) -> None:
    raw, derived, panel = lake(tmp_path)
    days = weekdays(date(2025, 1, 2), 30)
    put(raw, "AAA", days)
    put(raw, "BBB", days)
    panel.build()
    raw.write(daily_name("AAA"), b"not parquet")  # corrupt (a repair is another issue's job)
    put(raw, "BBB", weekdays(date(2025, 1, 2), 31))
    report = panel.build()
    assert report.skipped == ("AAA",) and report.changed == 1
    kept = panel_table(derived, "1d")
    assert kept.filter(pc.equal(kept["symbol"], "AAA")).num_rows == 30  # its old rows stay
    put(raw, "AAA", days[:10])  # repaired: picked up by the next build
    assert panel.build().changed == 1
    assert_panel_equals_objects(raw, derived)
