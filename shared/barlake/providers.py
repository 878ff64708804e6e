"""Which bar sources exist, and how `BARLAKE_PROVIDER` names them.

Kept out of config.py so that adding a source is one entry here and one adapter file: the spec
is `yahoo`, `tiingo`, `alphavantage`, `polygon`, `replay:DIR` or `yahoo-sim:URL` (the simulated
Yahoo of the tests and benches, barlake.yahoo_sim, on loopback only). Each adapter is imported only
when built, so read paths (show, the API) never import yfinance or pandas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from barlake.ports import Pacer, Provider

# Display names (CLI messages) of the sources a spec may name.
PROVIDER_NAMES = {
    "yahoo": "Yahoo Finance",
    "tiingo": "Tiingo",
    "alphavantage": "Alpha Vantage",
    "polygon": "Polygon/Massive",
    "yahoo-sim": "Yahoo Finance (simulated)",
}
# One provider fetch may spend this long (waiting for the request budget included): about half
# the ingest function's 540 s timeout, leaving the rest for validating and writing.
FETCH_BUDGET_S = 240.0
SIMULATED_PREFIX = "yahoo-sim:http://127.0.0.1:"


def spec_error(spec: str) -> str | None:
    """Why `spec` is not a valid BARLAKE_PROVIDER, or None. A comma-separated list is a chain
    (first = primary, then the fallbacks in order), each name at most once."""
    if "," in spec:
        names = [n.strip() for n in spec.split(",")]
        if len(set(names)) != len(names):
            return f"BARLAKE_PROVIDER names a provider twice: {spec!r}"
        return next((e for e in map(spec_error, names) if e), None)
    if spec == "yahoo-sim" or spec.startswith("yahoo-sim:"):
        return (
            None if spec.startswith(SIMULATED_PREFIX) else f"yahoo-sim needs {SIMULATED_PREFIX}PORT"
        )
    if spec in PROVIDER_NAMES or (spec.startswith("replay:") and len(spec) > len("replay:")):
        return None
    return (
        f"BARLAKE_PROVIDER must be one of {', '.join(PROVIDER_NAMES)} or replay:DIR, got {spec!r}"
    )


def build_provider(
    spec: str, settings: Any = None, pacer: Pacer | None = None, concurrency: int = 4
) -> Provider:
    """The adapter a spec names; keys and base URLs come from `settings` (config.Settings);
    every adapter draws its requests from `pacer` (barlake.pacing)."""
    if "," in spec:
        from barlake.adapters.chain_provider import ChainProvider

        return ChainProvider(
            [build_provider(n.strip(), settings, pacer, concurrency) for n in spec.split(",")]
        )
    if spec.startswith("replay:"):
        from barlake.adapters.replay_provider import ReplayProvider

        return ReplayProvider(spec.removeprefix("replay:"))
    if spec == "tiingo":
        from barlake.adapters.tiingo_provider import TiingoProvider

        return TiingoProvider(
            getattr(settings, "tiingo_token", ""), getattr(settings, "tiingo_url", ""), pacer=pacer
        )
    if spec == "alphavantage":
        from barlake.adapters.alphavantage_provider import AlphaVantageProvider

        return AlphaVantageProvider(
            getattr(settings, "alphavantage_key", ""),
            getattr(settings, "alphavantage_url", ""),
            pacer=pacer,
        )
    if spec == "polygon":
        from barlake.adapters.polygon_provider import PolygonProvider

        return PolygonProvider(
            getattr(settings, "polygon_key", ""), getattr(settings, "polygon_url", ""), pacer=pacer
        )
    if spec != "yahoo" and not spec.startswith("yahoo-sim:"):
        raise ValueError(spec_error(spec) or spec)
    from barlake.adapters.yfinance_provider import YFinanceProvider  # heavy import: only here

    session = None
    if spec.startswith("yahoo-sim:"):  # the simulated Yahoo (tests, bench): barlake.yahoo_sim
        from barlake.yahoo_sim import forwarding_session

        session = forwarding_session(spec.removeprefix("yahoo-sim:"))
    return YFinanceProvider(
        session,
        pacer=pacer,
        concurrency=concurrency,
        seed_timezones=True,
        fetch_budget_s=FETCH_BUDGET_S,
    )
