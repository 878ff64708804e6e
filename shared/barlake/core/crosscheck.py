"""Reconciliation: the lake's bars against a second provider's, disagreement by disagreement.

Two providers never agree to the last bit (Yahoo's prices are float32, Tiingo's are rounded to
4 decimals, volumes are consolidated differently), so the tolerances are far wider than the
restatement check's float32 noise: PRICE_TOL relative on each price, VOLUME_TOL relative on
volume. Only the window both cover is compared (first to last date present in both), and within
it every disagreement is named:
- `price`: a price column differs beyond PRICE_TOL (open, high, low, close, adj_close);
- `volume`: volume differs beyond VOLUME_TOL;
- `missing_session`: a session one side has and the other lacks (`side` says which has it);
- `corporate_action`: a dividend or split one side has and the other lacks, or whose value
  differs beyond PRICE_TOL.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date
from typing import Any

import pyarrow as pa

from barlake.core.schema import PRICE_COLUMNS

PRICE_TOL = 1e-3  # 0.1 %: far above rounding differences, far below any real error
VOLUME_TOL = 0.05  # 5 %: consolidated vs primary-listing volumes differ by a few percent
DISAGREEMENTS_KEPT = 50


def _differs(a: float | None, b: float | None, tol: float) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) != math.isnan(b)
    return not math.isclose(a, b, rel_tol=tol, abs_tol=0.0)


def _float(value: int | None) -> float | None:
    return float(value) if value is not None else None


def reconcile(
    lake_bars: pa.Table,
    lake_actions: pa.Table,
    other_bars: pa.Table,
    other_actions: pa.Table,
    *,
    price_tol: float = PRICE_TOL,
    volume_tol: float = VOLUME_TOL,
    kept: int = DISAGREEMENTS_KEPT,
) -> dict[str, Any]:
    """The comparison's summary: window, sessions compared, counts by kind and the first
    `kept` disagreements (date order)."""
    lake = {r["date"]: r for r in lake_bars.to_pylist()}
    other = {r["date"]: r for r in other_bars.to_pylist()}
    if not lake or not other:
        return {"window": None, "sessions": 0, "counts": {}, "disagreements": []}
    first = max(min(lake), min(other))
    last = min(max(lake), max(other))
    found: list[dict[str, Any]] = []

    def within(day: date) -> bool:
        return first <= day <= last

    for day in sorted({d for d in (*lake, *other) if within(d)}):
        ours, theirs = lake.get(day), other.get(day)
        if ours is None or theirs is None:
            side = "lake" if ours is not None else "other"
            found.append({"date": day.isoformat(), "kind": "missing_session", "side": side})
            continue
        for column in PRICE_COLUMNS:
            if _differs(ours[column], theirs[column], price_tol):
                found.append(
                    {
                        "date": day.isoformat(),
                        "kind": "price",
                        "column": column,
                        "lake": ours[column],
                        "other": theirs[column],
                    }
                )
        a, b = ours["volume"], theirs["volume"]
        if _differs(
            float(a) if a is not None else None, float(b) if b is not None else None, volume_tol
        ):
            found.append({"date": day.isoformat(), "kind": "volume", "lake": a, "other": b})
    ours_actions = {
        (r["date"], r["kind"]): r["value"] for r in lake_actions.to_pylist() if within(r["date"])
    }
    their_actions = {
        (r["date"], r["kind"]): r["value"] for r in other_actions.to_pylist() if within(r["date"])
    }
    for day, kind in sorted({*ours_actions, *their_actions}):
        a, b = ours_actions.get((day, kind)), their_actions.get((day, kind))
        if _differs(a, b, price_tol):
            found.append(
                {
                    "date": day.isoformat(),
                    "kind": "corporate_action",
                    "action": kind,
                    "lake": a,
                    "other": b,
                }
            )
    found.sort(key=lambda d: d["date"])
    compared = sum(1 for d in lake if within(d) and d in other)
    return {
        "window": [first.isoformat(), last.isoformat()],
        "sessions": compared,
        "counts": dict(Counter(d["kind"] for d in found)),
        "disagreements": found[:kept],
    }
