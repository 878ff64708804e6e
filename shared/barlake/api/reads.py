"""The API's reads, cached and coherent: a body is cached under the generation it was built from.

A request first learns the current generation of the object it reads (one shared-cache round
trip, or a storage stat: barlake.services.generations), which gives its ETag and the cache key
of its body; only a miss reads storage. Written against the ports only.

Every bar view is keyed by the *daily* object's generation, weekly/monthly ones included: the
weekly/monthly objects are rebuilt asynchronously after a daily write, so they are used only
when their `source_generation` is that very generation; until then the periods are aggregated
from the daily bars on the fly (the same function the weekly builder runs). A read right after
a write therefore returns the new bars at every interval.

The inventory (/v1/symbols) summarises the profiles in the state store, which the profile
function rebuilds asynchronously anyway; it is the one read cached by time
(INVENTORY_TTL_SECONDS) rather than by generation.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from barlake.api import render
from barlake.api.params import ApiError, BarsQuery
from barlake.core.adjust import adjust as adjust_bars
from barlake.core.codec import decode_daily, decode_periods
from barlake.core.layout import DERIVED_PREFIXES, period_name, profile_name
from barlake.core.layout import daily_name as _daily_name
from barlake.ports import Cache, ObjectStore, RunStatus, StateStore, StoredObject
from barlake.services.generations import (
    KEY_PREFIX,
    Generations,
    generation_key,
    value_key,
    value_prefix,
)

VALUE_TTL_SECONDS = 86_400  # bodies are immutable per key: the TTL only bounds memory
INVENTORY_TTL_SECONDS = 60
INVENTORY_KEY = f"{KEY_PREFIX}inventory:r{render.RENDER_VERSION}"


daily_name = functools.lru_cache(maxsize=65_536)(_daily_name)  # per request, so kept


class NotFoundError(LookupError):
    """Nothing stored under that name."""


@dataclass(frozen=True)
class Body:
    data: bytes
    generation: int
    tier: str  # where it came from: "l1", "shared" (Redis/Upstash) or "miss" (built now)


def _window(table: pa.Table, q: BarsQuery) -> pa.Table:
    if q.start is not None:
        table = table.filter(pc.greater_equal(table["date"], pa.scalar(q.start, pa.date32())))
    if q.end is not None:
        table = table.filter(pc.less_equal(table["date"], pa.scalar(q.end, pa.date32())))
    if q.limit is not None and table.num_rows > q.limit:
        table = table.slice(table.num_rows - q.limit)  # the most recent `limit` bars
    return table


class CachedReads:
    def __init__(
        self, raw: ObjectStore, derived: ObjectStore, state: StateStore, cache: Cache
    ) -> None:
        self.raw = raw
        self.derived = derived
        self.state = state
        self.cache = cache
        self.generations = Generations(cache)
        # Daily objects this instance found undecodable: name → (generation, error), for
        # /v1/health until a good generation replaces them.
        self.corrupt_seen: dict[str, tuple[int, str]] = {}
        self._tiered: Callable[[str], tuple[bytes | None, str]] | None = getattr(
            cache, "get_tiered", None
        )

    # ------------------------------------------------------------------ cache plumbing

    def _get(self, key: str) -> tuple[bytes | None, str]:
        if self._tiered is not None:
            return self._tiered(key)
        value = self.cache.get(key)
        return value, ("miss" if value is None else "l1")

    # ------------------------------------------------------------------ bars

    def bars_generations(
        self, symbols: Sequence[str], as_of: datetime | None = None
    ) -> list[int | None]:
        """The current generation of each symbol's daily object (None: no bars), or with
        `as_of` the generation live then (None: none kept; barlake.services.asof)."""
        if as_of is not None:
            from barlake.services.asof import version_at

            chosen = [version_at(self.raw.versions(daily_name(s)), as_of) for s in symbols]
            return [v.generation if v is not None else None for v in chosen]
        return self.generations.current(self.raw, [daily_name(s) for s in symbols])

    def bars(self, symbol: str, q: BarsQuery, generation: int) -> Body:
        name = daily_name(symbol)
        key = value_key(self.raw.bucket, name, generation, self._variant(q))
        data, tier = self._get(key)
        if data is not None:
            return Body(data, generation, tier)
        data, built_from = self._build_bars(symbol, q, generation)
        if built_from != generation:
            self.generations.saw(self.raw, name, built_from, generation)
            key = value_key(self.raw.bucket, name, built_from, self._variant(q))
        self.cache.set(key, data, VALUE_TTL_SECONDS)
        return Body(data, built_from, "miss")

    def bars_many(
        self, symbols: Sequence[str], q: BarsQuery, generations: Sequence[int]
    ) -> list[Body | ApiError]:
        """Bodies of several symbols (an ApiError for a symbol whose object is corrupt):
        their cache lookups in one round trip."""
        names = [daily_name(s) for s in symbols]
        keys = [
            value_key(self.raw.bucket, n, g, self._variant(q))
            for n, g in zip(names, generations, strict=True)
        ]
        found = self.cache.get_many(keys)
        out: list[Body | ApiError] = []
        for symbol, generation, data in zip(symbols, generations, found, strict=True):
            if data is not None:
                out.append(Body(data, generation, "cache"))
                continue
            try:
                out.append(self.bars(symbol, q, generation))
            except ApiError as exc:  # a corrupt object fails its symbol, not the batch
                out.append(exc)
        return out

    @staticmethod
    def _variant(q: BarsQuery) -> str:
        return f"bars:r{render.RENDER_VERSION}:{q.key}"

    def _build_bars(self, symbol: str, q: BarsQuery, generation: int) -> tuple[bytes, int]:
        """The body for q, and the daily generation it was built from."""
        if q.interval != "1d" and q.adjust == "split":
            derived = self.derived.read(period_name(symbol, q.interval))
            if derived is not None and (
                derived.info.metadata.get("source_generation") == str(generation)
            ):
                periods = _window(decode_periods(derived.data), q)
                return self._render(symbol, q, periods, None, generation), generation
        if q.as_of is not None:  # that very version, live or not
            obj = self.raw.read_version(daily_name(symbol), generation)
        else:
            obj = self.raw.read(daily_name(symbol))
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        built_from = obj.info.generation
        bars, actions = self._decode(obj)  # checked even when served as is: never corrupt
        if q.interval == "1d" and q.adjust == "split" and q.whole and q.format == "parquet":
            return obj.data, built_from  # the stored object is that very body
        bars = adjust_bars(bars, actions, q.adjust)
        if q.interval != "1d":
            from barlake.core.aggregate import aggregate
            from barlake.services.derived import complete_through

            last = bars.column("date")[-1].as_py() if bars.num_rows else None
            bars = aggregate(bars, q.interval, complete_through(symbol, last) if last else None)
        return self._render(symbol, q, _window(bars, q), actions, built_from), built_from

    def _decode(self, obj: StoredObject) -> tuple[pa.Table, pa.Table]:
        """The daily object's bars and actions; a 500 `corrupt_object` when it cannot be
        decoded (remembered for /v1/health; `barlake repair SYMBOL` heals it)."""
        try:
            found = decode_daily(obj.data)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
            self.corrupt_seen[obj.info.name] = (obj.info.generation, error)
            raise ApiError(
                500,
                "corrupt_object",
                f"the stored object {obj.info.name} (generation {obj.info.generation}) cannot "
                f"be decoded; it is not served (operators: barlake repair)",
            ) from exc
        self.corrupt_seen.pop(obj.info.name, None)
        return found

    @staticmethod
    def _render(
        symbol: str, q: BarsQuery, table: pa.Table, actions: pa.Table | None, generation: int
    ) -> bytes:
        if q.format == "json":
            return render.bars_json(symbol, q.interval, q.adjust, generation, table)
        if q.format == "csv":
            return render.bars_csv(table)
        return render.bars_parquet(table, actions, generation)

    # ------------------------------------------------------------------ provenance

    def provenance(self, symbol: str, generation: int) -> Body:
        """Which provider gave each stored row, as runs (core.provenance.runs), as JSON."""
        name = daily_name(symbol)
        key = value_key(self.raw.bucket, name, generation, "provenance:v1")
        data, tier = self._get(key)
        if data is not None:
            return Body(data, generation, tier)
        obj = self.raw.read(name)
        if obj is None:
            raise NotFoundError(f"no bars for {symbol}")
        from barlake.core.codec import decode_provenance
        from barlake.core.provenance import runs

        payload = {
            "symbol": symbol,
            "generation": obj.info.generation,
            "runs": runs(decode_provenance(obj.data)),
        }
        data = json.dumps(payload, separators=(",", ":")).encode()
        if obj.info.generation != generation:
            self.generations.saw(self.raw, name, obj.info.generation, generation)
            key = value_key(self.raw.bucket, name, obj.info.generation, "provenance:v1")
        self.cache.set(key, data, VALUE_TTL_SECONDS)
        return Body(data, obj.info.generation, "miss")

    # ------------------------------------------------------------------ profiles

    def profile(self, symbol: str) -> Body:
        name = profile_name(symbol)
        (generation,) = self.generations.current(self.derived, [name])
        if generation is None:
            raise NotFoundError(f"no profile for {symbol}")
        key = value_key(self.derived.bucket, name, generation, "profile")
        data, tier = self._get(key)
        if data is not None:
            return Body(data, generation, tier)
        obj = self.derived.read(name)
        if obj is None:
            raise NotFoundError(f"no profile for {symbol}")
        if obj.info.generation != generation:
            self.generations.saw(self.derived, name, obj.info.generation, generation)
            key = value_key(self.derived.bucket, name, obj.info.generation, "profile")
        self.cache.set(key, obj.data, VALUE_TTL_SECONDS)
        return Body(obj.data, obj.info.generation, "miss")

    # ------------------------------------------------------------------ inventory

    def inventory(self) -> tuple[dict[str, Any], str]:
        data, tier = self._get(INVENTORY_KEY)
        if data is not None:
            try:
                return json.loads(data), tier
            except ValueError:
                pass
        from barlake.core.profile import build_inventory
        from barlake.services.inventory import lake_profiles, lake_totals

        profiles = lake_profiles(self.raw, self.state)  # counted from the daily objects
        entries = [_inventory_entry(p) for p in profiles]
        # Delisted symbols (services/lifecycle.py) keep their data and stay listed, marked.
        delisted = {
            r.symbol
            for r in self.state.list_symbols(active_only=False)
            if not r.active and "delisted" in r.tags
        }
        for entry in entries:
            entry["delisted"] = entry["symbol"] in delisted
        totals = {**build_inventory(profiles), **lake_totals(profiles)}
        inventory = {"totals": totals, "symbols": entries}
        body = json.dumps(inventory, separators=(",", ":"), default=str).encode()
        self.cache.set(INVENTORY_KEY, body, INVENTORY_TTL_SECONDS)
        return inventory, "miss"

    # ------------------------------------------------------------------ runs

    def run(self, run_id: str | None) -> dict[str, Any]:
        status = self.state.get_run(run_id) if run_id else self.state.latest_run()
        if status is None:
            raise NotFoundError(f"no run {run_id}" if run_id else "no run yet")
        return run_json(status)

    # ------------------------------------------------------------------ admin

    def forget(self, symbol: str) -> int:
        """Drop every cached body and generation of the symbol's objects."""
        names = [(self.raw.bucket, daily_name(symbol))]
        names += [(self.derived.bucket, period_name(symbol, i)) for i in DERIVED_PREFIXES]
        names.append((self.derived.bucket, profile_name(symbol)))
        dropped = 0
        for bucket, name in names:
            dropped += self.cache.delete_prefix(value_prefix(bucket, name))
            self.cache.delete(generation_key(bucket, name))
        return dropped

    # ------------------------------------------------------------------ health

    def health(self) -> dict[str, Any]:
        checks: dict[str, Any] = {}
        checks["storage"] = _timed(lambda: self.raw.stat(f"{daily_name('HEALTH')}.probe"))
        checks["state"] = _timed(lambda: self.state.get_run("health-probe"))
        probe = getattr(self.cache, "probe", None)
        cache: dict[str, Any] = {"backend": type(self.cache).__name__, "shared": self.cache.shared}
        if probe is not None:
            ok, ms, error = probe()
            cache.update(status="ok" if ok else "down", latency_ms=round(ms, 3), error=error)
            cache.update(self.cache.health())  # type: ignore[attr-defined]
        else:
            cache.update(status="ok", latency_ms=0.0)
        checks["cache"] = cache
        checks["lake"] = self._lake_health()
        return checks

    def _lake_health(self) -> dict[str, Any]:
        """Corrupt daily objects: the profiles' marks (the inventory, cached 60 s) and what
        this instance has just failed to decode."""
        corrupt = {n: {"generation": g, "error": e} for n, (g, e) in self.corrupt_seen.items()}
        out: dict[str, Any] = {"status": "ok"}
        try:
            inventory, _ = self.inventory()
        except Exception as exc:
            out.update(status="unknown", error=type(exc).__name__)
        else:
            totals = inventory["totals"]
            for symbol in totals.get("corrupt_symbols", []):
                corrupt.setdefault(daily_name(symbol), {"generation": None, "error": "profile"})
            out["profiles_pending"] = totals.get("profiles_pending", 0)
        if corrupt:
            out.update(status="corrupt", corrupt_objects=dict(sorted(corrupt.items())))
        return out


def _timed(call: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        call()
    except Exception as exc:
        ms = (time.perf_counter() - started) * 1000
        return {"status": "down", "latency_ms": round(ms, 3), "error": f"{type(exc).__name__}"}
    return {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 3)}


def _inventory_entry(p: dict[str, Any] | Any) -> dict[str, Any]:
    staleness = p.get("staleness_sessions")
    return {
        "symbol": str(p.get("symbol")),
        "exchange": p.get("exchange"),
        "first_date": p.get("first_date"),
        "last_date": p.get("last_date"),
        "rows": int(p.get("rows") or 0),
        "staleness_sessions": staleness,
        "stale": bool((staleness or 0) > 1),
        "gap_count": int(p.get("gap_count") or 0),
        "quarantined": int(p.get("quarantined") or 0),
        "generation": p.get("generation"),
        "as_of": p.get("as_of"),
        "verified_at": p.get("verified_at"),
        "pending_revisions": int(p.get("pending_revision_count") or 0),
        "unadjusted_splits": len(p.get("unadjusted_splits") or ()),
        "corrupt": bool(p.get("corrupt")),
        "profile_pending": bool(p.get("profile_pending")),
    }


def _iso(value: date | Any) -> str | None:
    return value.isoformat() if value is not None else None


def run_json(status: RunStatus) -> dict[str, Any]:
    outcomes = status.outcomes()
    counts = {s: sum(o.status == s for o in outcomes) for s in ("ok", "unchanged", "restated")}
    counts["failed"] = sum(o.status == "failed" for o in outcomes)
    errors = [
        {
            "symbol": o.symbol,
            "kind": o.error_kind or "unknown",
            "message": o.error or "",
            "retryable": o.retryable,
        }
        for o in sorted(outcomes, key=lambda o: o.symbol)
        if o.status == "failed"
    ]
    return {
        "run_id": status.run.run_id,
        "kind": status.run.kind,
        "created_at": _iso(status.run.created_at),
        "complete": status.complete,
        "batches_expected": len(status.run.batch_ids),
        "batches_done": len(status.batches),
        "symbols": status.run.symbols,
        "counts": counts,
        "rows_written": sum(o.rows_written for o in outcomes),
        "rows_quarantined": sum(o.rows_quarantined for o in outcomes),
        "errors": errors,
    }
