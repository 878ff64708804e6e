"""Tiers: how often a symbol deserves attention, from its own trading activity in the lake.

The measure is the median dollar volume (close × volume) of the latest TIER_SESSIONS stored
sessions — a median, so one block trade or one halted day does not move a symbol between tiers.
Tier 1 from TIER_THRESHOLDS[0], tier 2 from TIER_THRESHOLDS[1], tier 3 below (and for symbols
with no bars yet). Amounts are in the symbol's own trading currency, not converted: good enough
to sort US listings, a known approximation for others (a London line in GBp is counted in pence,
so it lands lower than its dollar value would put it).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

TIER_SESSIONS = 20
TIER_THRESHOLDS = (100_000_000.0, 5_000_000.0)  # tier 1 ≥ $100M/day median, tier 2 ≥ $5M
TIERS = (1, 2, 3)
LOWEST = TIERS[-1]


def median_dollar_volume(bars: pa.Table, sessions: int = TIER_SESSIONS) -> float | None:
    """Median of close × volume over the last `sessions` rows (bars sorted by date, as stored);
    None with no rows."""
    if bars.num_rows == 0:
        return None
    tail = bars.slice(max(0, bars.num_rows - sessions))
    dollars = pc.multiply(
        pc.cast(tail.column("close"), pa.float64()), pc.cast(tail.column("volume"), pa.float64())
    )
    values = dollars.to_numpy(zero_copy_only=False)
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else None


def tier_for(dollar_volume: float | None, thresholds: tuple[float, float] = TIER_THRESHOLDS) -> int:
    if dollar_volume is None:
        return LOWEST
    for tier, floor in zip(TIERS, thresholds, strict=False):
        if dollar_volume >= floor:
            return tier
    return LOWEST


def tier_universe(tier: int) -> str:
    """The universe holding the symbols of a tier: the scheduler and dispatch run it by name."""
    return f"tier-{tier}"


def override_universe(tier: int) -> str:
    """The universe holding an admin's pins to a tier."""
    return f"tier-override-{tier}"


def check_tier(value: object) -> int:
    if isinstance(value, bool) or value not in TIERS:
        raise ValueError(f"tier must be one of {', '.join(map(str, TIERS))}, got {value!r}")
    return int(value)  # type: ignore[call-overload]
