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
# Rows per row group: 65,536 rows are ~6 sessions of a 10,000-symbol market, so a one-date
# query reads one or two groups of a year's ~40; a 2,000-symbol market fits ~30 sessions.
ROW_GROUP_ROWS = 65_536
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


def _years(dates: pa.ChunkedArray | pa.Array) -> np.ndarray:
    days = np.asarray(pc.cast(dates, pa.int32()).to_numpy(zero_copy_only=False))
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def split_years(table: pa.Table) -> dict[int, pa.Table]:
    """A symbol's rows (sorted by date) cut into calendar years of their `date`."""
    if table.num_rows == 0:
        return {}
    years = _years(table.column("date"))
    bounds = np.flatnonzero(np.diff(years)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(years)]])
    return {
        int(years[a]): table.slice(int(a), int(b - a)) for a, b in zip(starts, ends, strict=True)
    }


def digest(table: pa.Table) -> str:
    """A content digest of one slice: every column's values and nulls (96 bits)."""
    h = hashlib.blake2b(digest_size=12)
    for column in table.itercolumns():
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if pa.types.is_string(array.type):
            h.update("\x1f".join(array.to_pylist()).encode())  # type: ignore[arg-type]
            continue
        h.update(np.asarray(array.is_null().to_numpy(zero_copy_only=False)).tobytes())
        values = array.fill_null(0) if array.null_count else array
        if pa.types.is_date32(values.type):
            values = values.cast(pa.int32())
        h.update(np.asarray(values.to_numpy(zero_copy_only=False)).tobytes())
    return h.hexdigest()


def symbol_slices(bars: pa.Table, complete_through: date | None) -> Slices:
    """One symbol's daily bars → its rows of every panel, cut by year. Weekly and monthly are
    aggregated from the daily bars here (not read from the derived objects, which are rebuilt
    asynchronously and may lag the run that triggered the panel)."""
    out: Slices = {}
    for interval in PANEL_DIRS:
        table = bars if interval == "1d" else aggregate(bars, interval, complete_through)
        for year, part in split_years(table).items():
            out[(interval, year)] = part
    return out


def manifest_rows(symbol: str, generation: int, slices: Slices) -> pa.Table:
    keys = sorted(slices)
    rows = {
        "symbol": [symbol] * max(1, len(keys)),
        "generation": [generation] * max(1, len(keys)),
        "interval": [k[0] for k in keys] or [""],
        "year": [k[1] for k in keys] or [-1],
        "digest": [digest(slices[k]) for k in keys] or [""],
        "rows": [slices[k].num_rows for k in keys] or [0],
    }
    return pa.Table.from_pydict(rows, schema=MANIFEST_SCHEMA)


def changed_partitions(
    old: Mapping[tuple[str, int], str], new: Mapping[tuple[str, int], str]
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


def encode_partition(table: pa.Table) -> bytes:
    """zstd Parquet with `date` and `symbol` statistics per row group (the pruning keys)."""
    sink = pa.BufferOutputStream()
    pq.write_table(
        table.replace_schema_metadata(None),
        sink,
        row_group_size=ROW_GROUP_ROWS,
        compression="zstd",
        use_dictionary=["symbol"],
        write_statistics=["date", "symbol"],
        store_schema=False,
    )
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
