"""Adjusted views derived on read from what is stored (split-adjusted bars + actions).

- "split": as stored — prices adjusted for splits, not dividends (Yahoo's "close").
- "total": prices scaled by adj_close/close — adjusted for splits and dividends (total return).
  Volume is left as stored, as Yahoo does with auto_adjust.
- "none": splits undone from the stored split actions — the prices printed on each day. A bar
  dated before a split of ratio r (r new shares per old one) is multiplied by r, its volume
  divided by r; splits on or before the bar's date do not apply to it. Only splits the stored
  prices reflect are undone: where the provider has not adjusted yet (the stored close steps by
  about 1/r on the split day, see `unadjusted_splits`), the stored prices already are the
  printed ones, and multiplying them by r would be wrong by r.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.schema import BAR_SCHEMA, PRICE_COLUMNS

ADJUSTMENTS = ("split", "total", "none")

# Only splits of at least 2:1 (or 1:2) are judged: a smaller ratio is within a day's real move.
_JUDGED_SPLIT = 2.0


def unadjusted_splits(bars: pa.Table, actions: pa.Table) -> list[dict[str, object]]:
    """Split actions the stored prices do not reflect: across the split day the close steps by
    a factor nearer 1/r than 1 (in log terms), i.e. the bars before it are still at the old
    scale. Returns {date, ratio, previous_date, previous_close, close} per such split."""
    if actions.num_rows == 0 or bars.num_rows < 2:
        return []
    splits = actions.filter(pc.equal(actions["kind"], "split"))
    if splits.num_rows == 0:
        return []
    days = bars["date"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    close = bars["close"].to_numpy(zero_copy_only=False).astype(np.float64)
    out: list[dict[str, object]] = []
    for d, r, when in zip(
        splits["date"].cast(pa.int32()).to_numpy(zero_copy_only=False),
        splits["value"].to_numpy(zero_copy_only=False),
        splits["date"].to_pylist(),
        strict=True,
    ):
        if not r > 0 or abs(np.log(r)) < np.log(_JUDGED_SPLIT):
            continue
        i = int(np.searchsorted(days, d, side="left"))
        if i == 0 or i >= days.size:
            continue
        step = close[i] / close[i - 1]
        if np.isfinite(step) and step > 0 and abs(np.log(step * r)) < abs(np.log(step)):
            out.append(
                {
                    "date": when.isoformat(),
                    "ratio": float(r),
                    "previous_date": bars["date"][i - 1].as_py().isoformat(),
                    "previous_close": float(close[i - 1]),
                    "close": float(close[i]),
                }
            )
    return out


def _replace(table: pa.Table, name: str, values: np.ndarray, type_: pa.DataType) -> pa.Table:
    i = table.schema.get_field_index(name)
    return table.set_column(i, table.schema.field(i), pa.array(values, type_))


def adjust(bars: pa.Table, actions: pa.Table, how: str) -> pa.Table:
    if how not in ADJUSTMENTS:
        raise ValueError(f"adjust must be one of {', '.join(ADJUSTMENTS)}")
    if how == "split" or bars.num_rows == 0:
        return bars
    if how == "total":
        factor = pc.divide(bars["adj_close"], bars["close"]).to_numpy(zero_copy_only=False)
        for name in ("open", "high", "low", "close"):
            bars = _replace(
                bars, name, bars[name].to_numpy(zero_copy_only=False) * factor, pa.float64()
            )
        return bars
    splits = actions.filter(pc.equal(actions["kind"], "split"))
    raw = {u["date"] for u in unadjusted_splits(bars, splits)}
    if raw:
        keep = [d.isoformat() not in raw for d in splits["date"].to_pylist()]
        splits = splits.filter(pa.array(keep, pa.bool_()))
    if splits.num_rows == 0:
        return bars
    days = bars["date"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    split_days = splits["date"].cast(pa.int32()).to_numpy(zero_copy_only=False)
    ratios = splits["value"].to_numpy(zero_copy_only=False)
    factor = np.ones(len(days))
    for d, r in zip(split_days, ratios, strict=True):
        factor[days < d] *= r
    for name in PRICE_COLUMNS:
        bars = _replace(
            bars, name, bars[name].to_numpy(zero_copy_only=False) * factor, pa.float64()
        )
    volume = np.rint(bars["volume"].to_numpy(zero_copy_only=False) / factor).astype(np.int64)
    return _replace(bars, "volume", volume, BAR_SCHEMA.field("volume").type)
