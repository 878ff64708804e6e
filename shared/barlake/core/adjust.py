"""Adjusted views derived on read from what is stored (split-adjusted bars + actions).

- "split": as stored — prices adjusted for splits, not dividends (Yahoo's "close").
- "total": prices scaled by adj_close/close — adjusted for splits and dividends (total return).
  Volume is left as stored, as Yahoo does with auto_adjust.
- "none": splits undone from the stored split actions — the prices printed on each day. A bar
  dated before a split of ratio r (r new shares per old one) is multiplied by r, its volume
  divided by r; splits on or before the bar's date do not apply to it.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.schema import BAR_SCHEMA, PRICE_COLUMNS

ADJUSTMENTS = ("split", "total", "none")


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
