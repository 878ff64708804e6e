"""Merging fetched bars into stored history, and recognising when history was restated.

Laws (property-tested in tests/test_merge.py):
- idempotent: merge(merge(a, b), b) == merge(a, b);
- newer wins: on a day present in both, the fetched row is kept;
- order-insensitive on disjoint days: merge(merge(a, b), c) == merge(merge(a, c), b);
- never loses a valid row: every stored day is still there afterwards.
Applying a full history after a restatement is not a merge: core/history.py compares it with
what is stored and applies it only where it covers the lake (a history never shrinks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA

# Yahoo's values are float32 (relative precision 6e-8): two recordings of the same number can
# differ by an ulp or two after Yahoo re-derives them. 2e-6 is far above that noise and far
# below the smallest real restatement (a 1-cent dividend on a $500 share rescales by 2e-5).
PRICE_REL_TOL = 2e-6
# Volumes are integers; after a split Yahoo multiplies and rounds them.
SPLIT_VOLUME_REL_TOL = 1e-3

RESTATEMENT_KINDS = ("split", "dividend", "volume_revision", "other")
# Kinds whose effect reaches beyond the overlap window: the whole history must be refetched.
# A volume revision is confined to the days it names, which the overlap already replaces.
FULL_REFETCH_KINDS = frozenset({"split", "dividend", "other"})


def _days(table: pa.Table) -> np.ndarray:
    return table.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)


def _sorted(table: pa.Table) -> pa.Table:
    days = _days(table)
    if days.size > 1 and not np.all(days[1:] > days[:-1]):
        table = table.take(pa.array(np.argsort(days, kind="stable")))
    return table


def merge_bars(existing: pa.Table, new: pa.Table) -> pa.Table:
    """Stored history + fetched rows (both unique by date) → history sorted by date.

    Fast path: fetched rows usually cover the stored tail and beyond, so the result is a
    prefix of the stored table followed by the fetched rows — no sort, no hashing.
    """
    if new.num_rows == 0:
        return _sorted(existing)
    if existing.num_rows == 0:
        return _sorted(new)
    new = _sorted(new)
    old_days = _days(existing)
    new_days = _days(new)
    first_new = new_days[0]
    cut = int(np.searchsorted(old_days, first_new, side="left"))
    tail = old_days[cut:]
    if np.all(np.isin(tail, new_days, assume_unique=True)) and np.all(
        old_days[1:] >= old_days[:-1]
    ):
        # Two chunks are fine: Table.equals ignores chunking and the writer makes one row group.
        return pa.concat_tables([existing.slice(0, cut), new])
    keep = ~np.isin(old_days, new_days, assume_unique=True)
    merged = pa.concat_tables([existing.filter(pa.array(keep)), new])
    return _sorted(merged).combine_chunks()


def merge_actions(existing: pa.Table, new: pa.Table) -> pa.Table:
    """Union of corporate actions keyed by (date, kind); the fetched value wins."""
    if new.num_rows == 0:
        return existing
    keys_new = {
        (d, k) for d, k in zip(new["date"].to_pylist(), new["kind"].to_pylist(), strict=True)
    }
    keep = [
        (d, k) not in keys_new
        for d, k in zip(existing["date"].to_pylist(), existing["kind"].to_pylist(), strict=True)
    ]
    merged = pa.concat_tables([existing.filter(pa.array(keep, pa.bool_())), new]).cast(
        ACTION_SCHEMA
    )
    return merged.take(pc.sort_indices(merged, [("date", "ascending"), ("kind", "ascending")]))


@dataclass(frozen=True)
class Restatement:
    """How the provider's view of already-stored days differs from what we stored."""

    kinds: tuple[str, ...]
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def needs_full_refetch(self) -> bool:
        return any(k in FULL_REFETCH_KINDS for k in self.kinds)

    def to_dict(self) -> dict[str, Any]:
        return {"kinds": list(self.kinds), "evidence": self.evidence}


def _rel_close(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    return np.abs(a - b) <= tol * np.maximum(np.abs(a), np.abs(b))


def _nice_ratio(r: float) -> str:
    """4.0 → '4:1', 0.2 → '1:5', 1.5 → '3:2' (splits are small integer fractions)."""
    for den in range(1, 21):
        num = r * den
        if abs(num - round(num)) <= 1e-3 * max(1.0, num):
            return f"{round(num)}:{den}"
    return f"{r:.6g}:1"


def classify_overlap(
    stored: pa.Table, fetched: pa.Table, rel_tol: float = PRICE_REL_TOL
) -> Restatement | None:
    """Compare the days both tables hold. None when they agree within float noise.

    - split: all four prices of every overlapping day scale by one common ratio r ≠ 1
      (and volume by 1/r); evidence carries r and its fraction ('20:1').
    - dividend: prices agree (after any split) but adj_close is rescaled.
    - volume_revision: prices agree but some volumes differ (after any split).
    - other: prices differ in a way no single ratio explains.
    """
    s_days, f_days = _days(stored), _days(fetched)
    common, s_idx, f_idx = np.intersect1d(s_days, f_days, assume_unique=True, return_indices=True)
    if common.size == 0:
        return None

    def cols(t: pa.Table, idx: np.ndarray, name: str) -> np.ndarray:
        return t.column(name).to_numpy(zero_copy_only=False)[idx].astype(np.float64)

    s = {c: cols(stored, s_idx, c) for c in ("open", "high", "low", "close", "adj_close", "volume")}
    f = {
        c: cols(fetched, f_idx, c) for c in ("open", "high", "low", "close", "adj_close", "volume")
    }
    day_iso = [str(np.datetime64(int(d), "D")) for d in common]
    kinds: list[str] = []
    evidence: dict[str, Any] = {"overlap_days": int(common.size), "first_day": day_iso[0]}

    ratio = 1.0
    prices_equal = all(
        _rel_close(s[c], f[c], rel_tol).all() for c in ("open", "high", "low", "close")
    )
    if not prices_equal:
        ratios = np.concatenate([s[c] / f[c] for c in ("open", "high", "low", "close")])
        r = float(np.median(ratios))
        if _rel_close(ratios, np.full_like(ratios, r), rel_tol * 4).all() and abs(r - 1) > rel_tol:
            ratio = r
            kinds.append("split")
            evidence["split_ratio"] = r
            evidence["split"] = _nice_ratio(r)
        else:
            kinds.append("other")
            diff = ~np.all(
                [_rel_close(s[c], f[c], rel_tol) for c in ("open", "high", "low", "close")], axis=0
            )
            evidence["price_changed_days"] = [day_iso[i] for i in np.flatnonzero(diff)[:10]]

    if "other" not in kinds:
        adj = s["adj_close"] / (f["adj_close"] * ratio)
        if not _rel_close(adj, np.ones_like(adj), rel_tol * 4).all():
            kinds.append("dividend")
            evidence["adj_close_factor"] = float(np.median(f["adj_close"] * ratio / s["adj_close"]))
        expected_volume = s["volume"] * ratio
        if ratio != 1.0:  # rescaled volumes are rounded to whole shares: allow that and noise
            allowed = np.maximum(SPLIT_VOLUME_REL_TOL * expected_volume, 1.0)
        else:
            allowed = np.zeros_like(expected_volume)
        changed = np.abs(f["volume"] - expected_volume) > allowed
        if changed.any():
            kinds.append("volume_revision")
            evidence["volume_changes"] = [
                {"date": day_iso[i], "stored": int(s["volume"][i]), "fetched": int(f["volume"][i])}
                for i in np.flatnonzero(changed)[:10]
            ]
    if not kinds:
        return None
    return Restatement(kinds=tuple(kinds), evidence=evidence)


def bars_equal(a: pa.Table, b: pa.Table) -> bool:
    """Content equality (ignoring chunking): decides whether a write would change anything."""
    return a.num_rows == b.num_rows and a.cast(BAR_SCHEMA).equals(b.cast(BAR_SCHEMA))
