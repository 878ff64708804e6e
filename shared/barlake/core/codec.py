"""Parquet bytes in and out: the one place that decides how bars look on disk.

Chosen for size and speed at 10,000 symbols × 20 years, losslessly:
- zstd level 4 for daily objects (level 3 misses the 92 KB goal for 20 years; 5 costs 50%
  more time for 1% less); snappy for the small derived weekly/monthly objects, where zstd's
  fixed cost per column chunk outweighs its gain; dictionary encoding only for `symbol` (one
  value per file, stored uncompressed: there is nothing to compress); `volume` uncompressed
  too: after delta packing zstd gains nothing on it (measured: 15,882 vs 15,872 bytes);
- BYTE_STREAM_SPLIT for the float columns: Yahoo's prices are float32 values widened to
  float64, so half of each value's bytes are zero and split streams compress to almost nothing;
- DELTA_BINARY_PACKED for date and volume (dates step by 1–3 days);
- no pandas metadata and no embedded Arrow schema: the Parquet logical types are enough for
  DuckDB, Polars, pandas and BigQuery to read `daily/*.parquet` as one table.
Corporate actions travel in the same file (key-value metadata), so bars and actions always
share one generation: a reader can never pair bars with another version's splits.
Provenance (core/provenance.py) adds two columns after the bars: `source`, dictionary-encoded
like `symbol`, and `fetched_at`, delta-packed like `date`; readers of bars never see them.
"""

from __future__ import annotations

import json
from datetime import date

import pyarrow as pa
import pyarrow.parquet as pq

from barlake.core.provenance import PROVENANCE_COLUMNS, PROVENANCE_SCHEMA, unknown_provenance
from barlake.core.schema import (
    ACTION_SCHEMA,
    BAR_SCHEMA,
    PERIOD_SCHEMA,
    SCHEMA_VERSION,
    empty_actions,
)

ACTIONS_KEY = b"barlake.actions"
VERSION_KEY = b"barlake.schema_version"
ZSTD_LEVEL = 4
UNCOMPRESSED = frozenset({"symbol", "volume"})
PERIOD_CODEC = "snappy"


def _encodings(schema: pa.Schema) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in schema:
        if pa.types.is_floating(f.type):
            out[f.name] = "BYTE_STREAM_SPLIT"
        elif (
            pa.types.is_date32(f.type) or pa.types.is_int64(f.type) or pa.types.is_timestamp(f.type)
        ):
            out[f.name] = "DELTA_BINARY_PACKED"
    return out


_BAR_ENCODINGS = _encodings(pa.schema([*BAR_SCHEMA, *PROVENANCE_SCHEMA.remove(0)]))
_PERIOD_ENCODINGS = _encodings(PERIOD_SCHEMA)


def _write(
    table: pa.Table, encodings: dict[str, str], metadata: dict[bytes, bytes], codec: str = "zstd"
) -> bytes:
    # store_schema=False drops the embedded Arrow schema and, with it, schema metadata:
    # our own keys are added to the Parquet footer explicitly.
    sink = pa.BufferOutputStream()
    compression = {n: ("none" if n in UNCOMPRESSED else codec) for n in table.schema.names}
    with pq.ParquetWriter(
        sink,
        table.schema.remove_metadata(),
        compression=compression,
        compression_level={name: ZSTD_LEVEL for name, c in compression.items() if c == "zstd"}
        or None,
        use_dictionary=[n for n in ("symbol", "source") if n in table.schema.names],
        column_encoding=encodings,
        store_schema=False,
        write_statistics=["date"],
    ) as writer:
        writer.write_table(table.replace_schema_metadata(None))
        writer.add_key_value_metadata(metadata)
    return sink.getvalue().to_pybytes()


def actions_to_json(actions: pa.Table) -> str:
    """Compact and readable: {"dividend": [[dates…], [amounts…]], "split": [[dates…], [ratios…]]}.

    Grouped by kind, a 20-year dividend payer's ~80 actions take ~1.5 KB of footer instead of
    ~2.5 KB as one row per action. Plain Python: Arrow calls cost more than they save on ~80 rows.
    """
    out: dict[str, list[list]] = {}
    rows = zip(
        actions["date"].cast(pa.string()).to_pylist(),  # "YYYY-MM-DD", as date.isoformat()
        actions["kind"].to_pylist(),
        actions["value"].to_pylist(),
        strict=True,
    )
    for day, kind, value in rows:
        days, values = out.setdefault(kind, [[], []])
        days.append(day)
        values.append(value)
    return json.dumps(out, separators=(",", ":"))


def actions_from_json(symbol: str, text: str) -> pa.Table:
    rows = sorted(
        (date.fromisoformat(day), kind, float(value))
        for kind, (days, values) in json.loads(text).items()
        for day, value in zip(days, values, strict=True)
    )
    return pa.Table.from_pydict(
        {
            "symbol": [symbol] * len(rows),
            "date": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "value": [r[2] for r in rows],
        },
        schema=ACTION_SCHEMA,
    )


def encode_daily(bars: pa.Table, actions: pa.Table, provenance: pa.Table | None = None) -> bytes:
    """The daily object; `provenance` (PROVENANCE_SCHEMA, one row per bar in the bars' order)
    adds the source and fetched_at columns."""
    meta = {
        VERSION_KEY: str(SCHEMA_VERSION).encode(),
        ACTIONS_KEY: actions_to_json(actions).encode(),
    }
    if provenance is not None:
        if provenance.num_rows != bars.num_rows:
            raise ValueError(f"{provenance.num_rows} provenance rows for {bars.num_rows} bars")
        for name in PROVENANCE_COLUMNS:
            bars = bars.append_column(PROVENANCE_SCHEMA.field(name), provenance.column(name))
    return _write(bars, _BAR_ENCODINGS, meta)


def _read(data: bytes) -> pa.Table:
    # One small in-memory file: ParquetFile skips the Datasets layer that read_table builds,
    # and one thread beats a thread pool at ~100 KB (about half the time per object).
    return pq.ParquetFile(pa.py_buffer(data), pre_buffer=False).read(use_threads=False)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    table = table.replace_schema_metadata(None)
    if table.num_columns != len(schema):  # a daily object's provenance columns
        table = table.select(schema.names)
    if not table.schema.equals(schema):  # files we wrote already match: skip a cast per column
        table = table.cast(schema)
    return table.combine_chunks()


def decode_daily(data: bytes) -> tuple[pa.Table, pa.Table]:
    """Bars (BAR_SCHEMA) and actions (ACTION_SCHEMA) from a daily object's bytes."""
    table = _read(data)
    meta = table.schema.metadata or {}
    bars = _conform(table, BAR_SCHEMA)
    symbol = bars.column("symbol")[0].as_py() if bars.num_rows else ""
    raw_actions = meta.get(ACTIONS_KEY)
    actions = actions_from_json(symbol, raw_actions.decode()) if raw_actions else empty_actions()
    return bars, actions


def decode_provenance(data: bytes) -> pa.Table:
    """The provenance of a daily object's rows (PROVENANCE_SCHEMA; null where unknown)."""
    file = pq.ParquetFile(pa.py_buffer(data), pre_buffer=False)
    names = set(file.schema_arrow.names)
    if not names.issuperset(PROVENANCE_COLUMNS):
        return unknown_provenance(file.read(columns=["date"], use_threads=False))
    table = file.read(columns=["date", *PROVENANCE_COLUMNS], use_threads=False)
    return _conform(table, PROVENANCE_SCHEMA)


def encode_periods(periods: pa.Table, source_generation: int) -> bytes:
    meta = {
        VERSION_KEY: str(SCHEMA_VERSION).encode(),
        b"barlake.source_generation": str(source_generation).encode(),
    }
    # Derived and small (~1,000 rows): zstd's fixed cost per column chunk outweighs its gain.
    return _write(periods, _PERIOD_ENCODINGS, meta, codec=PERIOD_CODEC)


def decode_bars(data: bytes) -> pa.Table:
    """The bars only (BAR_SCHEMA): for readers that ignore the actions (weekly rebuild)."""
    return _conform(_read(data), BAR_SCHEMA)


def decode_periods(data: bytes) -> pa.Table:
    table = _read(data)
    return _conform(table, PERIOD_SCHEMA)
