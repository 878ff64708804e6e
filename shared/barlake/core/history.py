"""Comparing a stored history with the provider's full history, and applying the latter without
ever shrinking the lake.

The overlap check (core/merge.classify_overlap) sees only the last few sessions. When a full
history is in hand (after a restatement, or in the deep audit), `diff_history` compares it with
what is stored bar for bar and classifies every difference per day:

| kind               | a day that …                                                        |
|--------------------|---------------------------------------------------------------------|
| split              | both hold, all four prices scaled by one ratio r ≠ 1 (volume by 1/r) |
| dividend           | both hold, prices equal (after any split) but adj_close rescaled      |
| volume_revision    | both hold, prices equal (after any split) but the volume differs      |
| close_revision     | both hold, prices changed in a way no single ratio explains           |
| restored_session   | the provider has, inside the stored span, and the lake lacks          |
| missing            | the lake has, inside the answer's span, and the provider lacks/refuses |
| provider_purge     | the lake has, before the provider's first answered day                |

`suspect_reason` decides whether such an answer may be applied at all: Yahoo returns cut-down
histories without an error when it throttles a client, so an answer that starts later than the
stored history, or lacks markedly many stored sessions, is *suspect*: nothing is applied, the
evidence is recorded and the symbol is retried. A start that stays later on a second answer is
a genuine purge: the answer is then applied and the older stored days stay.

`reconcile` applies an accepted answer: the provider's rows, plus every stored day the answer
does not cover or refused (rescaled by the split/dividend factor of the nearest later day both
hold, so no kept bar is left at an old price scale), plus stored days after the answer's span
(written meanwhile by a concurrent ingest). A `close_revision` day is applied only once a later
answer confirms the same values; until then the stored bar stays and the revision is pending.

Pure functions over BAR_SCHEMA tables (valid rows, sorted by date, unique dates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.merge import PRICE_REL_TOL, SPLIT_VOLUME_REL_TOL, _nice_ratio
from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA

_EPOCH = date(1970, 1, 1)
_PRICES = ("open", "high", "low", "close")
_VALUES = (*_PRICES, "adj_close", "volume")

# An answer lacking more stored sessions than this (inside its own span) is suspect: a few
# refused or missing rows are kept from the lake, a cut-down answer is not applied at all.
SUSPECT_MISSING_MIN = 5
SUSPECT_MISSING_FRACTION = 0.01
MAX_LISTED = 20  # days listed per kind in the evidence; counts are always complete


def _days(table: pa.Table) -> np.ndarray:
    return table.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)


def _iso(day: int) -> str:
    return (_EPOCH + timedelta(days=int(day))).isoformat()


def _col(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)


def _close(a: np.ndarray, b: np.ndarray, tol: float) -> np.ndarray:
    return np.abs(a - b) <= tol * np.maximum(np.abs(a), np.abs(b))


@dataclass(frozen=True)
class HistoryDiff:
    """Per-day differences between a stored history and a provider answer (int day numbers)."""

    common: int
    answer_first: int | None  # first and last day the answer covered, valid or not
    answer_last: int | None
    scaled: dict[int, float] = field(default_factory=dict)  # day → stored/fetched price ratio
    dividend: tuple[int, ...] = ()
    revised: dict[int, dict[str, float]] = field(default_factory=dict)  # day → fetched values
    volume_revised: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    purged: tuple[int, ...] = ()
    restored: tuple[int, ...] = ()
    stored_in_span: int = 0

    def kinds(self) -> tuple[str, ...]:
        out = []
        for kind, present in (
            ("split", self.scaled),
            ("dividend", self.dividend),
            ("volume_revision", self.volume_revised),
            ("close_revision", self.revised),
            ("restored_session", self.restored),
            ("missing", self.missing),
            ("provider_purge", self.purged),
        ):
            if present:
                out.append(kind)
        return tuple(out)

    def evidence(self) -> dict[str, Any]:
        ev: dict[str, Any] = {"common_days": self.common}
        if self.answer_first is not None and self.answer_last is not None:
            ev["answer_span"] = [_iso(self.answer_first), _iso(self.answer_last)]
        if self.scaled:
            ratios = sorted({round(r, 6) for r in self.scaled.values()})
            ev["split_days"] = len(self.scaled)
            ev["split_ratios"] = [_nice_ratio(r) for r in ratios[:MAX_LISTED]]
            ev["split_last_day"] = _iso(max(self.scaled))
        for name, days in (
            ("dividend", self.dividend),
            ("volume_revision", self.volume_revised),
            ("close_revision", tuple(self.revised)),
            ("restored_session", self.restored),
            ("missing", self.missing),
            ("provider_purge", self.purged),
        ):
            if days:
                ev[f"{name}_days"] = len(days)
                ev[f"{name}_dates"] = [_iso(d) for d in sorted(days)[:MAX_LISTED]]
        return ev


def diff_history(
    stored: pa.Table,
    fetched: pa.Table,
    answer_span: tuple[date, date] | None = None,
    rel_tol: float = PRICE_REL_TOL,
) -> HistoryDiff:
    """Compare `stored` with the provider's valid rows `fetched`. `answer_span` is the first
    and last day the provider answered for, valid or not (default: fetched's own span); a
    stored day inside it that `fetched` lacks is `missing` (absent or refused), one before it
    is `provider_purge`."""
    s_days, f_days = _days(stored), _days(fetched)
    if answer_span is not None:
        lo, hi = ((d - _EPOCH).days for d in answer_span)
    elif f_days.size:
        lo, hi = int(f_days[0]), int(f_days[-1])
    else:
        return HistoryDiff(0, None, None, purged=tuple(int(d) for d in s_days))
    common, si, fi = np.intersect1d(s_days, f_days, assume_unique=True, return_indices=True)
    s = {c: _col(stored, c)[si] for c in _VALUES}
    f = {c: _col(fetched, c)[fi] for c in _VALUES}

    equal = np.all([_close(s[c], f[c], rel_tol) for c in _PRICES], axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.array([s[c] / f[c] for c in _PRICES])  # 4 × n price ratios
    ratio = np.median(q, axis=0) if common.size else np.empty(0)
    if common.size:
        uniform = np.all(_close(q, ratio[None, :], rel_tol * 4), axis=0)
    else:
        uniform = np.zeros(0, dtype=bool)
    scaled_mask = ~equal & uniform
    revised_mask = ~equal & ~uniform
    r = np.where(scaled_mask, ratio, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        adj = s["adj_close"] / (f["adj_close"] * r)
    dividend_mask = ~revised_mask & ~_close(adj, np.ones_like(adj), rel_tol * 4)
    expected_volume = s["volume"] * r
    allowed = np.where(r != 1.0, np.maximum(SPLIT_VOLUME_REL_TOL * expected_volume, 1.0), 0.0)
    volume_mask = ~revised_mask & (np.abs(f["volume"] - expected_volume) > allowed)

    in_span = (s_days >= lo) & (s_days <= hi)
    missing = np.setdiff1d(s_days[in_span], f_days, assume_unique=True)
    purged = s_days[s_days < lo]
    if s_days.size:
        inside = (f_days > s_days[0]) & (f_days < s_days[-1])
        restored = np.setdiff1d(f_days[inside], s_days, assume_unique=True)
    else:
        restored = np.empty(0, dtype=np.int64)
    revised = {
        int(common[i]): {c: float(f[c][i]) for c in _VALUES} for i in np.flatnonzero(revised_mask)
    }
    return HistoryDiff(
        common=int(common.size),
        answer_first=lo,
        answer_last=hi,
        scaled={int(common[i]): float(ratio[i]) for i in np.flatnonzero(scaled_mask)},
        dividend=tuple(int(d) for d in common[dividend_mask]),
        revised=revised,
        volume_revised=tuple(int(d) for d in common[volume_mask]),
        missing=tuple(int(d) for d in missing),
        purged=tuple(int(d) for d in purged),
        restored=tuple(int(d) for d in restored),
        stored_in_span=int(in_span.sum()),
    )


def suspect_reason(diff: HistoryDiff, confirmed_start: date | None = None) -> str | None:
    """Why this answer must not be applied, or None. `confirmed_start` is the first day an
    earlier suspect answer started at: the same later start seen twice is a genuine purge."""
    confirmed = confirmed_start is not None and (
        (confirmed_start - _EPOCH).days == diff.answer_first
    )
    if diff.purged and diff.answer_first is not None and not confirmed:
        return (
            f"the answer starts at {_iso(diff.answer_first)}, after the stored history "
            f"({len(diff.purged)} stored sessions before it)"
        )
    limit = max(SUSPECT_MISSING_MIN, SUSPECT_MISSING_FRACTION * diff.stored_in_span)
    if len(diff.missing) > limit:
        return (
            f"the answer lacks {len(diff.missing)} of the {diff.stored_in_span} stored sessions "
            "in its span"
        )
    return None


def _same_values(a: Mapping[str, Any], b: Mapping[str, Any], tol: float) -> bool:
    try:
        return all(
            abs(float(a[c]) - float(b[c])) <= tol * max(abs(float(a[c])), abs(float(b[c])))
            for c in _VALUES
        )
    except (KeyError, TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Reconciled:
    bars: pa.Table
    kept: tuple[int, ...]  # stored days kept (rescaled) because the answer lacked them
    pending: dict[str, dict[str, float]]  # ISO day → the provider's unconfirmed values
    confirmed: tuple[int, ...]  # revised days applied because an earlier answer agreed


def _factors(
    stored: pa.Table, fetched: pa.Table, diff: HistoryDiff, days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per kept day: (price factor, adj_close factor) fetched/stored on the nearest later day
    both hold and agree on up to a ratio (the nearest earlier one if none is later)."""
    kp = np.ones(days.size)
    ka = np.ones(days.size)
    s_days, f_days = _days(stored), _days(fetched)
    common, si, fi = np.intersect1d(s_days, f_days, assume_unique=True, return_indices=True)
    ok = ~np.isin(common, np.array(list(diff.revised), dtype=np.int64))
    common, si, fi = common[ok], si[ok], fi[ok]
    if common.size == 0:
        return kp, ka
    with np.errstate(divide="ignore", invalid="ignore"):
        price = _col(fetched, "close")[fi] / _col(stored, "close")[si]
        adjf = _col(fetched, "adj_close")[fi] / _col(stored, "adj_close")[si]
    price = np.where(_close(price, np.ones_like(price), PRICE_REL_TOL * 4), 1.0, price)
    adjf = np.where(_close(adjf, np.ones_like(adjf), PRICE_REL_TOL * 4), 1.0, adjf)
    idx = np.searchsorted(common, days, side="right")
    idx = np.where(idx >= common.size, common.size - 1, idx)
    return price[idx], adjf[idx]


def _rescale(rows: pa.Table, kp: np.ndarray, ka: np.ndarray) -> pa.Table:
    if rows.num_rows == 0 or (np.all(kp == 1.0) and np.all(ka == 1.0)):
        return rows
    cols: dict[str, Any] = {"symbol": rows.column("symbol"), "date": rows.column("date")}
    for c in _PRICES:
        cols[c] = pa.array(np.where(kp == 1.0, _col(rows, c), _col(rows, c) * kp), pa.float64())
    adj = _col(rows, "adj_close")
    cols["adj_close"] = pa.array(np.where(ka == 1.0, adj, adj * ka), pa.float64())
    vol = rows.column("volume").to_numpy(zero_copy_only=False)
    cols["volume"] = pa.array(
        np.where(kp == 1.0, vol, np.rint(vol / kp)).astype(np.int64), pa.int64()
    )
    return pa.Table.from_pydict(cols, schema=BAR_SCHEMA)


def reconcile(
    stored: pa.Table,
    fetched: pa.Table,
    diff: HistoryDiff,
    pending: Mapping[str, Mapping[str, Any]] | None = None,
) -> Reconciled:
    """Apply an accepted answer (see the module doc). `pending` maps ISO days to the values an
    earlier answer proposed for them; a revised day whose values agree is applied."""
    pending = pending or {}
    confirmed = tuple(
        d
        for d, values in diff.revised.items()
        if _iso(d) in pending and _same_values(pending[_iso(d)], values, PRICE_REL_TOL)
    )
    held = sorted(set(diff.revised) - set(confirmed))
    new_pending = {_iso(d): diff.revised[d] for d in held}
    f_days = _days(fetched)
    base = fetched.filter(pa.array(~np.isin(f_days, held))) if held else fetched
    s_days = _days(stored)
    keep_rescaled = np.array(sorted({*diff.missing, *diff.purged, *held}), dtype=np.int64)
    later = s_days > diff.answer_last if diff.answer_last is not None else s_days < s_days.min()
    parts = [base]
    if keep_rescaled.size:
        rows = stored.filter(pa.array(np.isin(s_days, keep_rescaled)))
        kp, ka = _factors(stored, fetched, diff, _days(rows))
        parts.append(_rescale(rows, kp, ka))
    if later.any():
        parts.append(stored.filter(pa.array(later)))
    out = pa.concat_tables([p.cast(BAR_SCHEMA) for p in parts])
    out = out.take(pc.sort_indices(out, [("date", "ascending")])).combine_chunks()
    return Reconciled(
        out, tuple(int(d) for d in keep_rescaled if d not in held), new_pending, confirmed
    )


def inferred_splits(diff: HistoryDiff, fetched: pa.Table, actions: pa.Table) -> pa.Table:
    """Split actions for price scalings no split action explains (ACTION_SCHEMA).

    Where the stored prices of a run of days ending on day L were r times the provider's, and
    the days after L agree, a split of r took effect on the first day after L the provider
    answered for (or L + 1 when it answered for none): the earliest day it can have taken
    effect, which is what `adjust="none"` needs to undo it on every stored day before it.
    Only ratios that are small fractions (20:1, 3:2, 1:10) are inferred."""
    if not diff.scaled:
        return ACTION_SCHEMA.empty_table()
    symbol = fetched.column("symbol")[0].as_py() if fetched.num_rows else ""
    f_days = _days(fetched)
    known = actions.filter(pc.equal(actions.column("kind"), "split"))
    known_days = _days(known) if known.num_rows else np.empty(0, dtype=np.int64)
    days = sorted(diff.scaled)
    rows = []
    for i, d in enumerate(days):
        nxt_scaled = days[i + 1] if i + 1 < len(days) else None
        r = diff.scaled[d]
        r_next = diff.scaled[nxt_scaled] if nxt_scaled is not None else 1.0
        later = f_days[f_days > d]
        effective = int(later[0]) if later.size else d + 1
        if nxt_scaled is not None and (
            effective >= nxt_scaled and _close(np.array(r), np.array(r_next), PRICE_REL_TOL * 4)
        ):
            continue  # the same scaling continues: not the end of a run
        value = r / r_next
        label = _nice_ratio(value)
        if label.count(":") != 1 or not label.replace(":", "").isdigit():
            continue
        num, den = (int(x) for x in label.split(":"))
        if not num or not den:
            continue
        if np.any((known_days > d) & (known_days <= effective)):
            continue
        rows.append(
            {
                "symbol": symbol,
                "date": _EPOCH + timedelta(days=effective),
                "kind": "split",
                "value": num / den,
            }
        )
    return pa.Table.from_pylist(rows, schema=ACTION_SCHEMA)
