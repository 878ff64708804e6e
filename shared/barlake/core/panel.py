"""The cross-sectional panel: every symbol's bars in one Hive-partitioned dataset per interval.

Per-symbol objects are right for writes and single-symbol reads; one date across the whole
market needs the opposite layout. The panel republishes the same rows as

    panel/daily/year=YYYY/bars.parquet      (and panel/weekly/…, panel/monthly/…)

sorted by (date, symbol), so a query for one date or a few weeks touches one file and, inside
it, only the row groups whose `date` statistics overlap (each holds a few sessions of the whole
market). The `year` column lives in the path only (Hive convention): DuckDB, Polars, pyarrow and
BigQuery add it from there.

Incremental: a manifest (`panel/_manifest.parquet`) records, for each symbol, the raw generation
the panel holds and a digest of each (interval, year) slice of its rows. A changed symbol
touches only the partitions whose slice digest changed (a daily update: this year's; the
weekly panel's previous year too when the first week of January began in December).

Pure: Arrow tables in, Arrow tables and bytes out.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Mapping
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from barlake.core.aggregate import aggregate
from barlake.core.schema import BAR_SCHEMA, PERIOD_SCHEMA

PANEL_PREFIX = "panel/"
PANEL_DIRS = {"1d": "daily", "1wk": "weekly", "1mo": "monthly"}
PANEL_SCHEMAS = {"1d": BAR_SCHEMA, "1wk": PERIOD_SCHEMA, "1mo": PERIOD_SCHEMA}
MANIFEST_NAME = f"{PANEL_PREFIX}_manifest.parquet"
LEASE_NAME = f"{PANEL_PREFIX}_lease.json"
PART_FILE = "bars.parquet"
# Rows per row group, aimed at: a group holds whole dates, as many as fit, at least one. One
# session of a 10,000-symbol market, four of a 2,000-symbol one: a one-date query reads one
# group and decodes few other rows.
ROW_GROUP_ROWS = 8_192
MANIFEST_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("generation", pa.int64(), nullable=False),
        pa.field("interval", pa.string(), nullable=False),
        pa.field("year", pa.int32(), nullable=False),  # -1: a symbol with no rows at all
        pa.field("digest", pa.string(), nullable=False),
        pa.field("rows", pa.int64(), nullable=False),
    ]
)
_EPOCH = date(1970, 1, 1)

Slices = dict[tuple[str, int], pa.Table]  # (interval, year) → that symbol's rows


def partition_name(interval: str, year: int) -> str:
    return f"{PANEL_PREFIX}{PANEL_DIRS[interval]}/year={year:04d}/{PART_FILE}"


def partition_of(name: str) -> tuple[str, int] | None:
    """(interval, year) of a partition object name, or None."""
    for interval, folder in PANEL_DIRS.items():
        head = f"{PANEL_PREFIX}{folder}/year="
        if name.startswith(head) and name.endswith(f"/{PART_FILE}"):
            year = name[len(head) : -len(PART_FILE) - 1]
            if year.isdigit():
                return interval, int(year)
    return None


# Day numbers (since 1970-01-01) of every 1 January from 1800 to 2300: year boundaries of a
# date-sorted column are found by binary search, without converting each date.
_FIRST_YEAR = 1800
_JAN_FIRSTS = (
    np.arange(f"{_FIRST_YEAR}", "2301", dtype="datetime64[Y]").astype("datetime64[D]")
).astype(np.int64)


def _day_numbers(table: pa.Table) -> np.ndarray:
    column = table.column("date")
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return np.asarray(array.view(pa.int32()).to_numpy(zero_copy_only=False))


def _year_bounds(days: np.ndarray) -> list[tuple[int, int, int]]:
    """(year, start, end) of each calendar year present in sorted day numbers."""
    if len(days) == 0:
        return []
    cuts = np.searchsorted(days, _JAN_FIRSTS)
    first = int(np.searchsorted(_JAN_FIRSTS, days[0], side="right")) - 1
    last = int(np.searchsorted(_JAN_FIRSTS, days[-1], side="right")) - 1
    return [
        (_FIRST_YEAR + i, int(cuts[i]), int(cuts[i + 1]) if i + 1 < len(cuts) else len(days))
        for i in range(first, last + 1)
        if (cuts[i + 1] if i + 1 < len(cuts) else len(days)) > cuts[i]
    ]


def split_years(table: pa.Table) -> dict[int, pa.Table]:
    """A symbol's rows (sorted by date) cut into calendar years of their `date`."""
    return {y: table.slice(a, b - a) for y, a, b in _year_bounds(_day_numbers(table))}


def _words(array: pa.Array) -> list[np.ndarray]:
    """A column as 64-bit words (floats by their bits), plus its null mask if it has nulls."""
    out = []
    if array.null_count:
        out.append(np.asarray(array.is_null().to_numpy(zero_copy_only=False)).astype(np.uint64))
        array = array.fill_null(False if pa.types.is_boolean(array.type) else 0)
    if pa.types.is_date32(array.type):
        array = array.view(pa.int32())
    values = np.asarray(array.to_numpy(zero_copy_only=False))
    out.append(values.view(np.uint64) if values.dtype == np.float64 else values.astype(np.uint64))
    return out


def year_digests(table: pa.Table) -> dict[int, tuple[str, int]]:
    """{year: (digest, rows)} of one symbol's date-sorted rows: a BLAKE2b (96 bits) over that
    year's rows of every value column, laid out row by row as 64-bit words (floats by their
    bits; null masks included), so each year is one contiguous block. `symbol` is left out: the
    manifest keys digests by symbol already."""
    words: list[np.ndarray] = []
    for name in table.column_names:
        if name != "symbol":
            column = table.column(name)
            words += _words(column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    if not words or table.num_rows == 0:
        return {}
    rows = np.column_stack(words)  # C order: one row after another
    out = {}
    for year, a, b in _year_bounds(_day_numbers(table)):
        h = hashlib.blake2b(memoryview(rows[a:b]).cast("B"), digest_size=12)
        out[year] = (h.hexdigest(), b - a)
    return out


Entry = tuple[str, int]  # (digest, rows) of one (interval, year) slice
Entries = dict[tuple[str, int], Entry]


def symbol_update(
    bars: pa.Table, complete_through: date | None, old: Mapping[tuple[str, int], Entry]
) -> tuple[Entries, Slices]:
    """One symbol's daily bars → (its manifest entries, the slices that may have changed).

    Weekly and monthly rows are aggregated from the daily bars here (not read from the derived
    objects, which are rebuilt asynchronously and may lag the run that triggered the panel),
    and only from January of the year before the first daily year that changed: no earlier
    week or month can contain a changed session (a week labelled in late December holds at
    most the first days of January). A daily update thus aggregates about two years, not 20."""
    entries: Entries = {("1d", y): e for y, e in year_digests(bars).items()}
    changed = [y for (i, y) in changed_partitions(old, entries) if i == "1d"]
    slices: Slices = {("1d", y): part for y, part in split_years(bars).items() if y in changed}
    if not changed:  # the same rows under a new generation: nothing else moved
        entries.update({k: v for k, v in old.items() if k[0] != "1d" and k[1] >= 0})
        return entries, slices
    if old:
        since = max(1, min(changed) - 1)
        window = bars.filter(pc.greater_equal(bars["date"], pa.scalar(date(since, 1, 1))))
    else:
        since, window = -1, bars
    for interval in ("1wk", "1mo"):
        periods = aggregate(window, interval, complete_through)
        digests = year_digests(periods)
        for year, part in split_years(periods).items():
            if year >= since:
                entries[(interval, year)] = digests[year]
                slices[(interval, year)] = part
        entries.update({k: v for k, v in old.items() if k[0] == interval and 0 <= k[1] < since})
    return entries, slices


def manifest_table(rows: Mapping[str, tuple[int, Entries]]) -> pa.Table:
    """symbol → (generation, entries) as manifest rows (a symbol without rows keeps one row,
    year -1, so its generation is remembered)."""
    cols: dict[str, list] = {n: [] for n in MANIFEST_SCHEMA.names}
    for symbol, (generation, entries) in rows.items():
        for (interval, year), (dig, count) in sorted(entries.items()) or [(("", -1), ("", 0))]:
            cols["symbol"].append(symbol)
            cols["generation"].append(generation)
            cols["interval"].append(interval)
            cols["year"].append(year)
            cols["digest"].append(dig)
            cols["rows"].append(count)
    return pa.Table.from_pydict(cols, schema=MANIFEST_SCHEMA)


def changed_partitions(
    old: Mapping[tuple[str, int], object], new: Mapping[tuple[str, int], object]
) -> set[tuple[str, int]]:
    """Partitions a symbol's move from `old` digests to `new` ones must rewrite: a slice that
    changed, appeared or disappeared."""
    return {k for k in old.keys() | new.keys() if k[1] >= 0 and old.get(k) != new.get(k)}


def merge_partition(
    existing: pa.Table | None, replace: Iterable[str], rows: Iterable[pa.Table], interval: str
) -> pa.Table:
    """The partition with every row of the `replace` symbols swapped for `rows`, sorted by
    (date, symbol)."""
    schema = PANEL_SCHEMAS[interval]
    parts: list[pa.Table] = []
    if existing is not None and existing.num_rows:
        drop = pa.array(sorted(set(replace)), pa.string())
        keep = pc.invert(pc.is_in(existing.column("symbol"), value_set=drop))
        parts.append(existing.filter(keep))
    parts.extend(r.select(schema.names).cast(schema) for r in rows)
    if not parts:
        return schema.empty_table()
    table = pa.concat_tables(parts).combine_chunks()
    return table.sort_by([("date", "ascending"), ("symbol", "ascending")])


def date_groups(days: np.ndarray, target: int = ROW_GROUP_ROWS) -> list[tuple[int, int]]:
    """Row ranges of whole dates (`days` sorted), each as many dates as fit in `target` rows
    (at least one): a one-date query then reads exactly one row group."""
    if len(days) == 0:
        return []
    starts = [0, *(np.flatnonzero(np.diff(days)) + 1).tolist()]
    groups, first = [], 0
    for here, following in itertools.pairwise([*starts, len(days)]):
        if following - first > target and here > first:
            groups.append((first, here))
            first = here
    groups.append((first, len(days)))
    return groups


def encode_partition(table: pa.Table) -> bytes:
    """zstd Parquet, row groups of whole dates, with `date` and `symbol` statistics per row
    group (the pruning keys)."""
    sink = pa.BufferOutputStream()
    table = table.replace_schema_metadata(None)
    with pq.ParquetWriter(
        sink,
        table.schema,
        compression="zstd",
        use_dictionary=["symbol"],
        write_statistics=["date", "symbol"],
        store_schema=False,
    ) as writer:
        for a, b in date_groups(_day_numbers(table)) or [(0, 0)]:
            writer.write_table(table.slice(a, b - a), row_group_size=max(1, b - a))
    return sink.getvalue().to_pybytes()


def decode_partition(data: bytes, interval: str) -> pa.Table:
    table = pq.ParquetFile(pa.py_buffer(data)).read()
    return table.replace_schema_metadata(None).cast(PANEL_SCHEMAS[interval])


def encode_manifest(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table.sort_by([("symbol", "ascending")]), sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def decode_manifest(data: bytes) -> pa.Table:
    return pq.ParquetFile(pa.py_buffer(data)).read().cast(MANIFEST_SCHEMA)
