"""Response bodies: bars as JSON, CSV or Parquet, one symbol or a batch.

Bodies are built once per (object generation, query) and cached as bytes, so a batch is
assembled from the same per-symbol bodies the single-symbol endpoint caches: a JSON batch
embeds them verbatim, a CSV batch concatenates them under one header, a Parquet batch
concatenates their tables.

Numbers are the stored float64 values as Python prints them (shortest round-trip), which is
how Yahoo's own JSON writes them; dates are ISO `YYYY-MM-DD`. Parquet bodies use the lake's
own encoder (`barlake.core.codec`), so a daily body carries the corporate actions in its
footer like the stored object does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from barlake.core.codec import encode_daily, encode_periods

RENDER_VERSION = 1  # in every cache key and ETag: a new layout never meets an old body
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_encode = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# No quotes: the one text column is the symbol, whose alphabet (letters, digits, . - = ^) holds
# no comma, quote or newline. The header is written here (Arrow would quote it).
_CSV_OPTIONS = pcsv.WriteOptions(quoting_style="none", include_header=False)


def _column(table: pa.Table, name: str) -> list[Any]:
    col = table.column(name)
    if name == "date":
        return col.cast(pa.string()).to_pylist()
    values = col.to_pylist()
    if pa.types.is_floating(col.type) and pc.any(pc.is_nan(col)).as_py():
        values = [None if v is not None and math.isnan(v) else v for v in values]
    return values


def rows(table: pa.Table) -> list[dict[str, Any]]:
    names = [n for n in table.column_names if n != "symbol"]
    columns = [_column(table, n) for n in names]
    return [dict(zip(names, r, strict=True)) for r in zip(*columns, strict=True)]


def bars_json(symbol: str, interval: str, adjust: str, generation: int, table: pa.Table) -> bytes:
    head = _encode(
        {
            "symbol": symbol,
            "interval": interval,
            "adjust": adjust,
            "generation": generation,
            "count": table.num_rows,
        }
    )
    return f'{head[:-1]},"bars":{_encode(rows(table))}}}'.encode()


def bars_csv(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    sink.write(",".join(table.column_names).encode() + b"\n")
    if table.num_rows:
        pcsv.write_csv(table, sink, _CSV_OPTIONS)
    return sink.getvalue().to_pybytes()


def bars_parquet(table: pa.Table, actions: pa.Table | None, generation: int) -> bytes:
    if "sessions" in table.column_names:
        return encode_periods(table, generation)
    if actions is None:
        from barlake.core.schema import empty_actions

        actions = empty_actions()
    return encode_daily(table, actions)


def batch_json(
    interval: str, adjust: str, bodies: Sequence[bytes], errors: Sequence[dict[str, Any]]
) -> bytes:
    head = _encode({"interval": interval, "adjust": adjust, "count": len(bodies)})[:-1]
    return b"".join(
        [
            head.encode(),
            b',"results":[',
            b",".join(bodies),
            b'],"errors":',
            _encode(list(errors)).encode(),
            b"}",
        ]
    )


def batch_csv(bodies: Sequence[bytes]) -> bytes:
    if not bodies:
        return b""
    first, rest = bodies[0], [b[b.index(b"\n") + 1 :] for b in bodies[1:]]
    return b"".join([first, *rest])


def batch_parquet(bodies: Sequence[bytes]) -> bytes:
    tables = [
        pq.ParquetFile(pa.py_buffer(b)).read(use_threads=False).replace_schema_metadata(None)
        for b in bodies
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(pa.concat_tables(tables), sink, compression="zstd")
    return sink.getvalue().to_pybytes()
