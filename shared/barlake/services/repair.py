"""Repair: a daily object that cannot be decoded is set aside (kept), then fetched again.

A corrupt daily object is never served and never overwritten blindly: ingest refuses to merge
into it (its symbol fails with error kind `corrupt`), the derived builders mark the profile
corrupt, the API answers `corrupt_object`. Healing it is an explicit act, `barlake repair
SYMBOL`:

1. the object's bytes are copied, unchanged, to `corrupt/<daily name>.<generation>` in the raw
   bucket (outside `daily/`, so no reader, glob or BigQuery table sees them; kept for
   inspection, with the original metadata and the decoding error);
2. the daily object is deleted only if it is still that generation (a writer that replaced it
   meanwhile wins);
3. the caller then runs a full-history ingest of the symbol (create-only, as for a new symbol)
   and the reconciliation rebuilds its derived outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from barlake.core.codec import decode_daily
from barlake.core.layout import daily_name
from barlake.ports import ObjectStore
from barlake.services.derived import CorruptObjectError, decoded

CORRUPT_PREFIX = "corrupt/"


@dataclass(frozen=True)
class SetAside:
    symbol: str
    generation: int
    kept_as: str  # the object name the bytes were copied to (raw bucket)
    error: str


def aside_name(symbol: str, generation: int) -> str:
    return f"{CORRUPT_PREFIX}{daily_name(symbol)}.{generation}"


@dataclass
class RepairService:
    raw: ObjectStore

    def set_aside(self, symbols: Sequence[str]) -> list[SetAside]:
        """Move each corrupt daily object aside (healthy and absent ones are left alone)."""
        out: list[SetAside] = []
        for symbol in symbols:
            name = daily_name(symbol)
            obj = self.raw.read(name)
            if obj is None:
                continue
            try:
                decoded(name, decode_daily, obj.data)
                continue
            except CorruptObjectError as exc:
                error = str(exc)
            kept = aside_name(symbol, obj.info.generation)
            meta = {
                **{f"original_{k}": str(v) for k, v in obj.info.metadata.items()},
                "original_generation": str(obj.info.generation),
                "error": error[:1000],
            }
            if self.raw.stat(kept) is None:
                self.raw.write(kept, obj.data, if_generation_match=0, metadata=meta)
            current = self.raw.stat(name)
            if current is not None and current.generation == obj.info.generation:
                self.raw.delete(name)
            out.append(SetAside(symbol, obj.info.generation, kept, error))
        return out
