"""Provenance: which provider gave each stored row, and when it was fetched.

Kept beside the bars rather than inside BAR_SCHEMA: every bar computation (validate, merge,
aggregate, the API's adjustments) stays as it is, and the daily object carries two more
columns (codec.encode_daily): `source` (dictionary-encoded: one or two distinct values per file)
and `fetched_at` (UTC seconds, delta-packed: runs of one value). Objects written before
provenance existed read back with null provenance (source unknown).

Rows from a fallback provider are provisional: `fallback_dates` names them, the ingest widens
its next window to cover them, and the primary's answer replaces them without counting as a
restatement (`fallback_differences` says what changed beyond tolerance).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.merge import PRICE_REL_TOL
from barlake.core.schema import PRICE_COLUMNS

PROVENANCE_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("source", pa.string()),
        pa.field("fetched_at", pa.timestamp("s", tz="UTC")),
    ]
)
PROVENANCE_COLUMNS = ("source", "fetched_at")


def empty_provenance() -> pa.Table:
    return PROVENANCE_SCHEMA.empty_table()


def unknown_provenance(bars: pa.Table) -> pa.Table:
    """Null provenance for every row of `bars` (history stored before provenance existed)."""
    n = bars.num_rows
    return pa.table(
        [bars.column("date"), pa.nulls(n, pa.string()), pa.nulls(n, pa.timestamp("s", tz="UTC"))],
        schema=PROVENANCE_SCHEMA,
    )


def stamped(bars: pa.Table, source: str | None, fetched_at: datetime) -> pa.Table:
    """Provenance saying every row of `bars` came from `source` at `fetched_at`."""
    n = bars.num_rows
    return pa.table(
        [
            bars.column("date"),
            pa.array([source] * n, pa.string()),
            pa.array([fetched_at] * n, pa.timestamp("s", tz="UTC")),
        ],
        schema=PROVENANCE_SCHEMA,
    )


def align(final_bars: pa.Table, new: pa.Table, base: pa.Table | None) -> pa.Table:
    """Provenance for each row of `final_bars`, in its order: the fetched rows' (`new`) where
    the date was written by this fetch, else the stored one (`base`), else null."""
    parts = [new] + ([base.filter(pc.invert(pc.is_in(base["date"], new["date"])))] if base else [])
    known = pa.concat_tables([p.select(PROVENANCE_SCHEMA.names) for p in parts]).cast(
        PROVENANCE_SCHEMA
    )
    idx = pc.index_in(final_bars.column("date"), value_set=known.column("date"))
    picked = known.take(idx)
    return pa.table(
        [final_bars.column("date"), picked.column("source"), picked.column("fetched_at")],
        schema=PROVENANCE_SCHEMA,
    )


def fallback_dates(provenance: pa.Table, primary: str) -> list[date]:
    """Dates whose stored row came from another provider than `primary` (provisional rows)."""
    source = provenance.column("source")
    mask = pc.and_(pc.is_valid(source), pc.not_equal(source, pa.scalar(primary)))
    return provenance.filter(pc.fill_null(mask, False)).column("date").to_pylist()


def fallback_differences(
    stored: pa.Table, fetched: pa.Table, dates: list[date], limit: int = 20
) -> list[dict[str, Any]]:
    """Where the primary's rows (`fetched`) differ from the fallback's stored rows on `dates`
    beyond PRICE_REL_TOL (prices) or at all (volume): the evidence of a replaced fallback row."""
    if not dates:
        return []
    wanted = pa.array(dates, pa.date32())
    old = stored.filter(pc.is_in(stored["date"], wanted))
    new = fetched.filter(pc.is_in(fetched["date"], wanted))
    by_date = {r["date"]: r for r in new.to_pylist()}
    out: list[dict[str, Any]] = []
    for row in old.to_pylist():
        other = by_date.get(row["date"])
        if other is None:
            continue
        diffs = {}
        for col in PRICE_COLUMNS:
            a, b = row[col], other[col]
            if a is None or b is None:
                if a is not b:
                    diffs[col] = [a, b]
            elif not np.isclose(a, b, rtol=PRICE_REL_TOL, atol=0.0):
                diffs[col] = [a, b]
        if row["volume"] != other["volume"]:
            diffs["volume"] = [row["volume"], other["volume"]]
        if diffs:
            out.append({"date": row["date"].isoformat(), **diffs})
        if len(out) >= limit:
            break
    return out


def runs(provenance: pa.Table) -> list[dict[str, Any]]:
    """Provenance as runs of consecutive rows from one source: what `show --provenance`, the API
    (`/v1/provenance/{symbol}`) print. Each: first/last date, rows, source (None: unknown,
    stored before provenance existed), earliest/latest fetched_at (ISO, UTC)."""
    out: list[dict[str, Any]] = []
    rows = zip(
        provenance.column("date").to_pylist(),
        provenance.column("source").to_pylist(),
        provenance.column("fetched_at").to_pylist(),
        strict=True,
    )
    for day, source, fetched in rows:
        stamp = fetched.isoformat().replace("+00:00", "Z") if fetched is not None else None
        if out and out[-1]["source"] == source:
            run = out[-1]
            run["last"], run["rows"] = day.isoformat(), run["rows"] + 1
            if stamp is not None:
                first, last = run["fetched_from"], run["fetched_to"]
                run["fetched_from"] = min(first, stamp) if first else stamp
                run["fetched_to"] = max(last, stamp) if last else stamp
            continue
        out.append(
            {
                "first": day.isoformat(),
                "last": day.isoformat(),
                "rows": 1,
                "source": source,
                "fetched_from": stamp,
                "fetched_to": stamp,
            }
        )
    return out
