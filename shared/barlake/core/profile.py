"""The data-quality profile of one symbol, and the inventory of the whole lake.

A profile answers "can I trust this series, and is it current?" without reading the bars: what
is missing (gaps against the symbol's own exchange calendar), how far behind it is (staleness in
sessions, so a weekend or a holiday does not make a symbol look stale), what looks wrong but is
kept (rows on non-session days, runs of zero-volume sessions, 100× price jumps), and what was
refused (quarantined rows) or restated. The inventory sums profiles for the dashboard.

Both are pure functions of their inputs (no clock: `as_of` comes in) and return JSON-ready dicts
(dates as ISO strings, plain ints and floats), so the same dict is written to the derived bucket
and to the state store.

Definitions:
- gaps: sessions in [first_date, last_date] with no row, judged only inside the calendar's
  authoritative range (`calendar_first`..`calendar_last`, see barlake.core.calendar).
- staleness_sessions: sessions in (last_date, as_of]. A session still trading on `as_of` counts,
  so a symbol fetched after yesterday's close reads 1 during today's session; the inventory
  calls a symbol stale above 1.
- unscheduled_sessions: rows on days the calendar says are closed. Validation keeps such rows only
  when they traded (NSE's Saturday budget session), so they are real sessions the calendar lacks.
- zero_volume_runs: ≥ ZERO_VOLUME_MIN_RUN consecutive rows with volume 0 (a suspended stock, or a
  provider feed that stopped). Consecutive rows, not calendar days: a gap inside a run does not
  break it (it is reported as a gap anyway).
- jumps: consecutive closes whose ratio is above JUMP_RATIO or below 1/JUMP_RATIO. Yahoo's
  close is split-adjusted, so a move that large is a unit flip (GBP vs GBp is exactly 100×) or a
  split Yahoo failed to adjust. Split days are NOT excused: in an adjusted series a split shows
  no step at all, so a jump on a split day is exactly an unadjusted split.
- unadjusted_splits: split actions the stored prices do not reflect (the close steps by about
  1/r on the split day: core/adjust.unadjusted_splits). `adjust=none` leaves those alone.
- verified_at, audit_differences, pending_revisions, suspect_answer, provider_purged_before:
  the symbol's history audit record (core/history.py, services/audit.py): when the whole
  history was last compared bar for bar with the provider, what differed, revisions waiting for
  confirmation, the last suspect answer, and the day before which the provider purged history
  the lake keeps.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.adjust import unadjusted_splits
from barlake.core.calendar import exchange_match, get_calendar
from barlake.core.schema import SCHEMA_VERSION

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

JUMP_RATIO = 3.0
ZERO_VOLUME_MIN_RUN = 3
MAX_LISTED = 50  # dates/runs/jumps listed per profile; the counts are always complete


def _date(day: int) -> date:
    return date.fromordinal(int(day) + _EPOCH_ORDINAL)


def _iso(day: int) -> str:
    return _date(day).isoformat()


def _days(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return array.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int32, copy=False)


def _zero_volume_runs(days: np.ndarray, volume: np.ndarray) -> list[dict[str, Any]]:
    """Runs of ≥ ZERO_VOLUME_MIN_RUN consecutive zero-volume rows (rows sorted by date)."""
    zero = np.concatenate([[False], volume == 0, [False]])
    edges = np.flatnonzero(np.diff(zero.astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]  # [start, end) row indices of each zero run
    return [
        {"start": _iso(days[s]), "end": _iso(days[e - 1]), "length": int(e - s)}
        for s, e in zip(starts, ends, strict=True)
        if e - s >= ZERO_VOLUME_MIN_RUN
    ]


def _jumps(days: np.ndarray, close: np.ndarray) -> list[dict[str, Any]]:
    """Close-to-close moves beyond JUMP_RATIO either way."""
    if close.size < 2:
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = close[1:] / close[:-1]
    big = np.isfinite(ratio) & ((ratio > JUMP_RATIO) | (ratio < 1.0 / JUMP_RATIO))
    return [
        {
            "date": _iso(days[i + 1]),
            "previous_date": _iso(days[i]),
            "previous_close": float(close[i]),
            "close": float(close[i + 1]),
            "ratio": float(ratio[i]),
        }
        for i in np.flatnonzero(big)
    ]


def build_profile(
    bars: pa.Table,
    *,
    symbol: str,
    as_of: date,
    generation: int,
    object_bytes: int,
    quarantined: int,
    last_restatement: Mapping[str, Any] | None,
    actions: pa.Table | None = None,
    audit: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The profile of one symbol's stored daily bars (BAR_SCHEMA), as a JSON-ready dict.

    `as_of` is the day the profile is judged on (staleness counts sessions up to it);
    `quarantined` is how many of the symbol's rows were ever refused; `actions` (ACTION_SCHEMA)
    lets unadjusted splits be found; `audit` is the symbol's AuditRecord as JSON.
    """
    match = exchange_match(symbol)
    cal = get_calendar(match.code)
    bars = bars.select(["date", "close", "volume"])
    days = _days(bars.column("date"))
    if days.size > 1 and not bool(np.all(days[1:] >= days[:-1])):  # stored bars are sorted
        bars = bars.take(pc.sort_indices(bars, [("date", "ascending")]))
        days = _days(bars.column("date"))
    close = bars.column("close").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    unadjusted = unadjusted_splits(bars, actions) if actions is not None else []
    volume = bars.column("volume").fill_null(-1).to_numpy(zero_copy_only=False)

    profile: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "symbol": symbol,
        "exchange": match.code,
        "calendar_known": match.known,
        "calendar_first": cal.first.isoformat(),
        "calendar_last": cal.last.isoformat(),
        "as_of": as_of.isoformat(),
        "generation": int(generation),
        "bytes": int(object_bytes),
        "rows": int(bars.num_rows),
        "quarantined": int(quarantined),
        "last_restatement": dict(last_restatement) if last_restatement is not None else None,
        "unadjusted_splits": unadjusted,
        **audit_summary(audit),
    }
    if days.size == 0:
        profile.update(
            first_date=None,
            last_date=None,
            sessions_expected=0,
            sessions_present=0,
            gap_count=0,
            gaps=[],
            staleness_sessions=None,
            unscheduled_sessions=0,
            unscheduled_dates=[],
            zero_volume_runs=[],
            jumps=[],
        )
        return profile

    first, last = _date(days[0]), _date(days[-1])
    on_session = cal.is_session(bars.column("date")).to_numpy(zero_copy_only=False)
    gaps = _days(cal.gaps(bars.column("date")))
    unscheduled = days[~on_session]
    runs = _zero_volume_runs(days, volume)
    jumps = _jumps(days, close)
    profile.update(
        first_date=first.isoformat(),
        last_date=last.isoformat(),
        sessions_expected=cal.session_count(first, last),
        sessions_present=int(np.unique(days[on_session]).size),
        gap_count=int(gaps.size),
        gaps=[_iso(d) for d in gaps[:MAX_LISTED]],
        staleness_sessions=cal.session_count(last + timedelta(days=1), as_of),
        unscheduled_sessions=int(unscheduled.size),
        unscheduled_dates=[_iso(d) for d in unscheduled[:MAX_LISTED]],
        zero_volume_runs=runs[:MAX_LISTED],
        zero_volume_run_count=len(runs),
        jumps=jumps[:MAX_LISTED],
        jump_count=len(jumps),
    )
    return profile


def audit_summary(audit: Mapping[str, Any] | None) -> dict[str, Any]:
    """The profile's view of a symbol's AuditRecord (as JSON): JSON-ready, the same keys
    whether or not the symbol was ever audited."""
    audit = audit or {}
    pending = audit.get("pending") or {}
    return {
        "verified_at": audit.get("verified_at"),
        "audit_differences": audit.get("differences") or None,
        "pending_revisions": sorted(pending)[:MAX_LISTED],
        "pending_revision_count": len(pending),
        "suspect_answer": audit.get("suspect"),
        "provider_purged_before": audit.get("purged_before"),
    }


def build_inventory(profiles: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over symbol profiles for the dashboard: size, freshness, quality, per exchange.

    Reads profiles as stored (JSON round-tripped), so missing keys count as zero/absent rather
    than failing the whole inventory over one old profile.
    """
    symbols = rows = total_bytes = quarantined = 0
    stale: list[str] = []
    with_gaps: list[str] = []
    with_jumps: list[str] = []
    unknown_calendar: list[str] = []
    unadjusted: list[str] = []
    pending: list[str] = []
    never_verified = 0
    oldest_verified: tuple[str, str] | None = None  # (verified_at, symbol)
    per_exchange: dict[str, int] = {}
    oldest: tuple[str, str] | None = None  # (last_date, symbol)
    for p in profiles:
        symbol = str(p.get("symbol"))
        symbols += 1
        rows += int(p.get("rows") or 0)
        total_bytes += int(p.get("bytes") or 0)
        quarantined += int(p.get("quarantined") or 0)
        exchange = str(p.get("exchange"))
        per_exchange[exchange] = per_exchange.get(exchange, 0) + 1
        if (p.get("staleness_sessions") or 0) > 1:
            stale.append(symbol)
        if (p.get("gap_count") or 0) > 0:
            with_gaps.append(symbol)
        if (p.get("jump_count") or len(p.get("jumps") or ())) > 0:
            with_jumps.append(symbol)
        if p.get("calendar_known") is False:
            unknown_calendar.append(symbol)
        if p.get("unadjusted_splits"):
            unadjusted.append(symbol)
        if p.get("pending_revision_count"):
            pending.append(symbol)
        verified = p.get("verified_at")
        if not verified:
            never_verified += 1
        elif oldest_verified is None or (verified, symbol) < oldest_verified:
            oldest_verified = (str(verified), symbol)
        last = p.get("last_date")
        if last is not None and (oldest is None or (last, symbol) < oldest):
            oldest = (last, symbol)
    return {
        "schema_version": SCHEMA_VERSION,
        "symbols": symbols,
        "rows": rows,
        "bytes": total_bytes,
        "quarantined": quarantined,
        "stale": len(stale),
        "stale_symbols": sorted(stale),
        "with_gaps": len(with_gaps),
        "symbols_with_gaps": sorted(with_gaps),
        "with_jumps": len(with_jumps),
        "symbols_with_jumps": sorted(with_jumps),
        "unknown_calendar_symbols": sorted(unknown_calendar),
        "symbols_with_unadjusted_splits": sorted(unadjusted),
        "symbols_with_pending_revisions": sorted(pending),
        "never_verified": never_verified,
        "oldest_verified_at": oldest_verified[0] if oldest_verified else None,
        "oldest_verified_symbol": oldest_verified[1] if oldest_verified else None,
        "per_exchange": dict(sorted(per_exchange.items())),
        "oldest_last_date": oldest[0] if oldest else None,
        "oldest_symbol": oldest[1] if oldest else None,
    }
