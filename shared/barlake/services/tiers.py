"""Tiers kept as universes, so everything that runs a universe runs a tier.

A symbol's tier is its computed tier (barlake.core.tiers, from its daily object) unless an admin
pinned it (`barlake tier set`, `PUT /v1/tiers/{symbol}`). Both are stored as dated universe
membership: `tier-1`, `tier-2`, `tier-3` hold the effective tiers and `tier-override-N` the pins,
so a tier's history is point-in-time like any universe's ("which symbols were tier 1 on
2025-06-30"), and a Cloud Scheduler job naming `universe = "tier-1"` is the tier's slice of the
daily fan-out (dispatch takes the universe's members).

Recomputed daily: the profile function calls `refresh` after each daily object it profiles
(also on a duplicate delivery, so a tier update that failed is retried with the message), so a
symbol's tier follows its latest bars without a job of its own, for one more read of the
object. Each update touches only that symbol's membership rows, so concurrent profile builds
of different symbols never contend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from barlake.core import tiers as core
from barlake.core import universe as members
from barlake.core.layout import daily_name
from barlake.ports import ObjectStore
from barlake.services.universes import UniverseService


@dataclass
class TierService:
    universes: UniverseService
    raw: ObjectStore
    clock: Callable[[], datetime]

    def _member_of(self, names: list[str], symbol: str) -> str | None:
        day = self.universes.today()
        for name in names:
            if self.universes.exists(name) and symbol in self._on(name, symbol, day):
                return name
        return None

    def _on(self, name: str, symbol: str, day: Any) -> list[str]:
        return members.members_on(self.universes.store.members(name, symbol), day)

    def pinned(self, symbol: str) -> int | None:
        name = self._member_of([core.override_universe(t) for t in core.TIERS], symbol)
        return int(name.rsplit("-", 1)[1]) if name else None

    def current(self, symbol: str) -> int | None:
        name = self._member_of([core.tier_universe(t) for t in core.TIERS], symbol)
        return int(name.rsplit("-", 1)[1]) if name else None

    def _move(self, symbol: str, names: list[str], target: str | None, source: str) -> None:
        """Make `target` the one universe of `names` holding symbol today (None: none)."""
        for name in names:
            if name == target:
                continue
            if self.universes.exists(name) and symbol in self._on(
                name, symbol, self.universes.today()
            ):
                self.universes.remove(name, [symbol])
        if target is not None:
            self.universes.create(target, ["tier"], source)
            self.universes.add(target, [symbol])

    def update(self, symbol: str, bars: pa.Table, *, apply: bool = True) -> dict[str, Any]:
        """Recompute the symbol's tier from its bars; a pin wins. Returns what was decided;
        `apply=False` only reports it (the API's GET)."""
        volume = core.median_dollar_volume(bars)
        computed = core.tier_for(volume)
        pin = self.pinned(symbol)
        effective = pin or computed
        names = [core.tier_universe(t) for t in core.TIERS]
        if apply and self.current(symbol) != effective:
            self._move(symbol, names, core.tier_universe(effective), "computed")
        return {
            "symbol": symbol,
            "tier": effective,
            "computed": computed,
            "override": pin,
            "median_dollar_volume": volume,
            "sessions": min(bars.num_rows, core.TIER_SESSIONS),
        }

    def refresh(self, symbol: str, *, apply: bool = True) -> dict[str, Any]:
        """update() from the symbol's stored daily object (no bars yet: the lowest tier)."""
        from barlake.core.codec import decode_daily
        from barlake.core.schema import BAR_SCHEMA

        obj = self.raw.read(daily_name(symbol))
        bars = decode_daily(obj.data)[0] if obj is not None else BAR_SCHEMA.empty_table()
        return self.update(symbol, bars, apply=apply)

    def pin(self, symbol: str, tier: int | None) -> dict[str, Any]:
        """Pin the symbol to a tier (None: remove the pin), then apply it at once."""
        if tier is not None:
            core.check_tier(tier)
        names = [core.override_universe(t) for t in core.TIERS]
        self._move(symbol, names, core.override_universe(tier) if tier else None, "admin")
        return self.refresh(symbol)
