"""As-of reads: an object exactly as the lake held it at a past instant, from its versions.

The raw bucket keeps every replaced generation for a retention period (GCS object versioning
with a lifecycle rule; the embedded store keeps hard links: barlake.adapters.local_store), so a
backtest can ask for the bars as they were on 2025-08-20 before a restatement rewrote them.
The generation live at `as_of` is the newest one written at or before it that had not yet
been replaced or deleted; the answer names that generation, so the read can be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from barlake.ports import ObjectStore, ObjectVersion, StoredObject


class NotKeptError(LookupError):
    """Nothing was live at that instant, or its version is past the retention."""


def version_at(versions: Sequence[ObjectVersion], as_of: datetime) -> ObjectVersion | None:
    """The version live at `as_of` (None: the object did not exist then, or that version is
    no longer kept)."""
    live = [
        v
        for v in versions
        if v.created <= as_of and (v.noncurrent_since is None or v.noncurrent_since > as_of)
    ]
    return max(live, key=lambda v: v.generation) if live else None


def read_as_of(store: ObjectStore, name: str, as_of: datetime) -> StoredObject:
    """The object as it was at `as_of`. Raises NotKeptError."""
    if as_of.tzinfo is None:
        raise ValueError("as_of needs a time zone (e.g. 2025-08-20T00:00:00Z)")
    chosen = version_at(store.versions(name), as_of)
    obj = store.read_version(name, chosen.generation) if chosen is not None else None
    if obj is None:
        raise NotKeptError(f"{name}: no version live at {as_of.isoformat()} is kept")
    return obj


def parse_as_of(text: str) -> datetime:
    """An RFC 3339 instant with its zone, e.g. 2025-08-20T00:00:00Z. A bare date is refused:
    which instant of that day (and in which zone) would be a guess."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        value = None
    if value is None or "T" not in text.upper() or value.tzinfo is None:
        raise ValueError(
            "as_of must be an instant with a time zone like 2025-08-20T00:00:00Z, "
            f"got {text[:40]!r}"
        )
    return value
