"""Wiring of the request budget (issue #11): the pacing settings, checked, and the pacer they
name. Kept out of config.py so the settings' rules live next to the pacer they build; config
calls `check` from Settings.check and `make_pacer` from build_app.

Defaults and their sources (README "Pacing and the request budget"):
- BARLAKE_YAHOO_REQUESTS_PER_MINUTE=55: yfinance's maintainers quote about 60 price requests a
  minute per client (bug-report template; ranaroussi/yfinance#1432, #2325); 55 keeps ~8 % of
  headroom for clock and latency jitter between instances. Their caching docs pace at 2
  requests per 5 s (24/min): the setting to use from an IP that others share.
- BARLAKE_PACER_INSTANCES=1 (embedded: one process); Terraform sets ingest_max_instances. An
  instance that paces alone (BARLAKE_PACER=memory, or the shared budget unreachable) takes the
  budget divided by it, so the fleet stays within the budget even then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from barlake.core.pacing import Budget

if TYPE_CHECKING:
    from barlake.config import Settings

YAHOO = "yahoo"  # the budget's name: every Yahoo request of every instance draws from it
PACERS = ("memory", "redis", "upstash")
# Providers without a budget of their own share this conservative one.
DEFAULT_REQUESTS_PER_MINUTE = 30


def _number(settings: Settings, name: str, low: float, high: float, *, whole: bool) -> None:
    from barlake.config import ConfigError, _var

    raw = getattr(settings, name)
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "a whole number" if whole else "a number"
        raise ConfigError(f"{_var(name)} must be {kind} from {low:g} to {high:g}, got {raw!r}")


def check(settings: Settings) -> None:
    from barlake.config import ConfigError

    if settings.pacer not in PACERS:
        raise ConfigError(
            f"BARLAKE_PACER={settings.pacer!r} is not available (choose from {', '.join(PACERS)})"
        )
    if settings.pacer == "redis" and not settings.redis_url.startswith(
        ("redis://", "rediss://", "unix://")
    ):
        raise ConfigError("BARLAKE_PACER=redis needs BARLAKE_REDIS_URL=redis://host:port/db")
    if settings.pacer == "upstash" and not (
        settings.upstash_url.startswith(("https://", "http://")) and settings.upstash_token
    ):
        raise ConfigError(
            "BARLAKE_PACER=upstash needs BARLAKE_UPSTASH_URL and BARLAKE_UPSTASH_TOKEN"
        )
    _number(settings, "yahoo_requests_per_minute", 0.1, 10_000, whole=False)
    _number(settings, "pacer_max_wait_s", 1, 3600, whole=True)
    _number(settings, "pacer_jitter_ms", 0, 10_000, whole=True)
    _number(settings, "pacer_instances", 1, 1000, whole=True)
    _number(settings, "yahoo_concurrency", 1, 64, whole=True)
    _number(settings, "outage_share", 0.01, 1, whole=False)
    _number(settings, "outage_min_symbols", 1, 1000, whole=True)
    _number(settings, "delist_after_days", 1, 14, whole=True)
    if settings.yahoo_quotes not in ("on", "off"):
        raise ConfigError(f"BARLAKE_YAHOO_QUOTES must be on or off, got {settings.yahoo_quotes!r}")


def budgets(settings: Settings) -> dict[str, Budget]:
    """Yahoo's budget from the settings; the key-based providers' documented free-tier limits
    (adapters/provider_http.FREE_LIMITS, README "Providers") shared the same way."""
    from barlake.adapters.provider_http import FREE_LIMITS

    free = {name: Budget(lim.per_second, lim.burst) for name, lim in FREE_LIMITS.items()}
    return {**free, YAHOO: Budget.per_minute(float(settings.yahoo_requests_per_minute))}


def make_pacer(settings: Settings) -> Any:
    """The pacer BARLAKE_PACER names. Redis and Upstash come behind the resilient wrapper:
    while they cannot be reached, this instance paces itself at its slice of the budget."""
    kw: dict[str, Any] = {
        "default": Budget.per_minute(DEFAULT_REQUESTS_PER_MINUTE),
        "max_wait_s": float(settings.pacer_max_wait_s),
        "jitter_s": int(settings.pacer_jitter_ms) / 1000,
    }
    instances = int(settings.pacer_instances)
    if settings.pacer == "memory":
        from barlake.adapters.memory_pacer import MemoryPacer

        # This process knows only its own requests: it takes its slice of the budget.
        share = 1.0 / instances
        kw["default"] = kw["default"].scaled(share)
        return MemoryPacer({p: b.scaled(share) for p, b in budgets(settings).items()}, **kw)
    from barlake.adapters.resilient_pacer import ResilientPacer

    # No namespace: Yahoo counts requests per client, so every lake on one Redis (and every
    # instance of the fleet) shares the one budget.
    shared: Any
    if settings.pacer == "redis":
        from barlake.adapters.redis_pacer import RedisPacer

        shared = RedisPacer(settings.redis_url, budgets(settings), **kw)
    else:
        from barlake.adapters.upstash_pacer import UpstashPacer

        shared = UpstashPacer(settings.upstash_url, settings.upstash_token, budgets(settings), **kw)
    return ResilientPacer(shared, instances=instances)


def pacing_status(pacer: Any, settings: Settings, done: int, total: int) -> str:
    """One line for a progress bar: the requests sent, the wait for the budget, and an ETA at
    the budget (requests per symbol so far × symbols left ÷ the rate)."""
    granted = int(getattr(pacer, "granted", 0) or 0)
    waited = float(getattr(pacer, "waited_s", 0.0) or 0.0)
    rate = float(settings.yahoo_requests_per_minute)
    if settings.pacer == "memory":
        rate /= int(settings.pacer_instances)
    line = f"{granted} req · paced {rate:g}/min · waited {waited:.0f} s"
    if done and granted:
        eta = (total - done) * granted / done / rate * 60
        line += f" · ETA {int(eta // 60)}:{int(eta % 60):02d}"
    return line
