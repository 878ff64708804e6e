"""The lake's inventory counted from the daily objects, not from what happened to be built.

Profiles are rebuilt asynchronously (and, after a crash, only by the reconciliation), so a
count of profiles can lag the lake. The inventory therefore starts from one listing of the
daily objects (metadata only) and joins each to its profile:
- no profile yet, or one built from another generation: the object's own metadata (rows,
  first and last date, size — written by ingest with every generation) stands in for the
  profile's counts, and the entry says `profile_pending`;
- a profile that marks the current generation corrupt: the entry says `corrupt`;
- a profile whose daily object is gone (set aside by `barlake repair`, deleted) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from barlake.core.layout import RAW_DAILY_PREFIX, symbol_of_daily
from barlake.ports import ObjectInfo, ObjectStore, StateStore


def _from_metadata(symbol: str, info: ObjectInfo) -> dict[str, Any]:
    meta = info.metadata
    rows = meta.get("rows")
    return {
        "symbol": symbol,
        "generation": info.generation,
        "rows": int(rows) if rows and str(rows).isdigit() else 0,
        "first_date": meta.get("first_date"),
        "last_date": meta.get("last_date"),
        "bytes": info.size,
    }


def lake_profiles(raw: ObjectStore, state: StateStore) -> list[dict[str, Any]]:
    """One profile-shaped entry per daily object, in symbol order."""
    profiles: dict[str, Mapping[str, Any]] = {
        str(p.get("symbol")): p for p in state.list_profiles()
    }
    out: list[dict[str, Any]] = []
    for info in raw.list(RAW_DAILY_PREFIX):
        symbol = symbol_of_daily(info.name)
        if symbol is None:
            continue
        profile = profiles.get(symbol)
        corrupt = (profile or {}).get("corrupt")
        if corrupt and int(corrupt.get("generation", -1)) == info.generation:
            entry = {**_from_metadata(symbol, info), "corrupt": dict(corrupt)}
        elif profile is None or profile.get("corrupt"):
            entry = {**_from_metadata(symbol, info), "profile_pending": True}
        elif int(profile.get("generation") or 0) != info.generation:
            entry = {**profile, **_from_metadata(symbol, info), "profile_pending": True}
        else:
            entry = dict(profile)
        out.append(entry)
    return sorted(out, key=lambda e: e["symbol"])


def lake_totals(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """What the core's inventory totals leave out: corrupt objects and pending profiles."""
    corrupt = sorted(e["symbol"] for e in entries if e.get("corrupt"))
    pending = sorted(e["symbol"] for e in entries if e.get("profile_pending"))
    return {
        "corrupt": len(corrupt),
        "corrupt_symbols": corrupt,
        "profiles_pending": len(pending),
    }
