"""Plausibility: bars that pass row validation but cannot be right in their context.

Row validation (core/validate.py) judges one row at a time. A ×1000 "fat-finger" bar has
consistent OHLC and passes it, yet it would feed every weekly and monthly bar built on top of it
(a weekly high of 2,795,580 on the S&P 500). Such a bar shows only against its neighbours:

    outlier: some price of the bar is more than OUTLIER_RATIO times above (or below) the closes
    of BOTH its neighbouring rows, the neighbours agree with each other (the series reverts),
    and no split action falls between the neighbours (a split explains a step, not a spike).

A move that does not revert (a real crash, an unadjusted split) is not an outlier: the profile
reports it as a jump instead. The first and last rows have only one neighbour and are never
judged here; the last row is judged on the next fetch, when its successor arrives.

Pure functions over BAR_SCHEMA tables sorted by date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# A single-session spike that reverts by 5× either way: far beyond any real daily move of a
# listed stock that then fully reverts the next session, far below a ×100 unit or ×1000 typo.
OUTLIER_RATIO = 5.0

_PRICES = ("open", "high", "low", "close")


def _col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def outlier_mask(bars: pa.Table, actions: pa.Table | None = None) -> np.ndarray:
    """A boolean per row of `bars` (sorted by date): True for an outlier (see module doc)."""
    n = bars.num_rows
    out = np.zeros(n, dtype=bool)
    if n < 3:
        return out
    close = _col(bars, "close")
    prev, nxt = close[:-2], close[2:]
    with np.errstate(divide="ignore", invalid="ignore"):
        revert = (np.maximum(prev, nxt) / np.minimum(prev, nxt)) <= OUTLIER_RATIO
        hi_ref = np.maximum(prev, nxt)
        lo_ref = np.minimum(prev, nxt)
        spike = np.zeros(n - 2, dtype=bool)
        for name in _PRICES:
            v = _col(bars, name)[1:-1]
            spike |= (v > OUTLIER_RATIO * hi_ref) | (v * OUTLIER_RATIO < lo_ref)
    mid = spike & revert
    if actions is not None and actions.num_rows and mid.any():
        splits = actions.filter(pc.equal(actions.column("kind"), "split"))
        if splits.num_rows:
            days = bars.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)
            split_days = splits.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)
            for i in np.flatnonzero(mid):
                if np.any((split_days > days[i]) & (split_days <= days[i + 2])):
                    mid[i] = False
    out[1:-1] = mid
    return out


def outlier_evidence(bars: pa.Table, mask: np.ndarray) -> dict[int, dict[str, Any]]:
    """Per flagged row index: the neighbours' dates and closes and the spike factor."""
    close = _col(bars, "close")
    high, low = _col(bars, "high"), _col(bars, "low")
    dates = bars.column("date").to_pylist()
    out: dict[int, dict[str, Any]] = {}
    for i in np.flatnonzero(mask):
        ref = (close[i - 1] + close[i + 1]) / 2
        factor = max(high[i] / ref, ref / low[i])
        out[int(i)] = {
            "previous_date": dates[i - 1].isoformat(),
            "previous_close": float(close[i - 1]),
            "next_date": dates[i + 1].isoformat(),
            "next_close": float(close[i + 1]),
            "factor": float(factor),
        }
    return out


def _days(table: pa.Table) -> np.ndarray:
    return table.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class Screened:
    """Fetched rows screened against the stored history (see `screen`)."""

    good: pa.Table  # the fetched rows that are not outliers
    outliers: list[dict[str, Any]]  # refused fetched rows: the row, reason "outlier", evidence
    stored_outliers: list[dict[str, Any]]  # stored rows found implausible: removed the same way

    @property
    def stored_outlier_days(self) -> set[date]:
        return {r["date"] for r in self.stored_outliers}


def _flagged(table: pa.Table, mask: np.ndarray) -> list[dict[str, Any]]:
    evidence = outlier_evidence(table, mask)
    rows = table.to_pylist()
    return [{**rows[i], "reason": "outlier", "evidence": ev} for i, ev in evidence.items()]


def screen(stored: pa.Table, fetched: pa.Table, actions: pa.Table | None = None) -> Screened:
    """Judge fetched rows in the context of the stored history, and the stored rows in the
    context of what arrived after them.

    - A stored row is an outlier when it is one among its stored neighbours and the fetched
      rows after the stored tail (the last stored row becomes judgeable once its successor
      arrives).
    - A fetched row is an outlier when it is one in the merged history (fetched rows win, the
      stored outliers left out). Its stored copy, if good, then stays: an outlier never
      overwrites a good stored bar.
    """
    from barlake.core.merge import merge_bars

    s_days = _days(stored)
    f_days = _days(fetched)
    stored_out: list[dict[str, Any]] = []
    if stored.num_rows:
        tail = fetched.filter(pa.array(f_days > s_days[-1])) if fetched.num_rows else fetched
        context = pa.concat_tables([stored, tail.cast(stored.schema)])
        mask = outlier_mask(context, actions)[: stored.num_rows]
        if mask.any():
            stored_out = _flagged(context, np.concatenate([mask, np.zeros(tail.num_rows, bool)]))
            stored = stored.filter(pa.array(~mask))
    if fetched.num_rows == 0:
        return Screened(fetched, [], stored_out)
    merged = merge_bars(stored, fetched)
    mask = outlier_mask(merged, actions)
    if not mask.any():
        return Screened(fetched, [], stored_out)
    bad_days = _days(merged)[mask]
    from_fetched = np.isin(_days(merged), f_days) & mask
    outliers = _flagged(merged, from_fetched)
    good = fetched.filter(pa.array(~np.isin(f_days, bad_days)))
    return Screened(good, outliers, stored_out)
