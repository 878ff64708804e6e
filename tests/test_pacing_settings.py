"""The pacing settings as an operator meets them: bad values are one clear error naming the
variable, the wiring builds the pacer they name (an instance pacing alone takes its slice),
the progress line, and a fetch that stops sending once its time budget is spent."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import pytest

from barlake.adapters.memory_pacer import MemoryPacer
from barlake.adapters.resilient_pacer import ResilientPacer
from barlake.config import ConfigError, Settings
from barlake.core.pacing import Budget
from barlake.pacing import make_pacer, pacing_status
from barlake.ports import ErrorKind


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BARLAKE_PACER": "cloudtasks"}, "BARLAKE_PACER='cloudtasks' is not available"),
        ({"BARLAKE_PACER": "redis"}, "BARLAKE_PACER=redis needs BARLAKE_REDIS_URL"),
        ({"BARLAKE_PACER": "upstash"}, "BARLAKE_PACER=upstash needs BARLAKE_UPSTASH_URL"),
        ({"BARLAKE_YAHOO_REQUESTS_PER_MINUTE": "0"}, "BARLAKE_YAHOO_REQUESTS_PER_MINUTE must"),
        ({"BARLAKE_YAHOO_REQUESTS_PER_MINUTE": "nan"}, "must be a number from 0.1 to 10000"),
        ({"BARLAKE_PACER_MAX_WAIT_S": "1.5"}, "BARLAKE_PACER_MAX_WAIT_S must be a whole number"),
        ({"BARLAKE_PACER_INSTANCES": "0"}, "BARLAKE_PACER_INSTANCES must be a whole number"),
        ({"BARLAKE_YAHOO_CONCURRENCY": "65"}, "BARLAKE_YAHOO_CONCURRENCY must be"),
        ({"BARLAKE_YAHOO_QUOTES": "yes"}, "BARLAKE_YAHOO_QUOTES must be on or off"),
        ({"BARLAKE_OUTAGE_SHARE": "1.5"}, "BARLAKE_OUTAGE_SHARE must be a number"),
        ({"BARLAKE_OUTAGE_MIN_SYMBOLS": "0"}, "BARLAKE_OUTAGE_MIN_SYMBOLS must be"),
        ({"BARLAKE_DELIST_AFTER_DAYS": "30"}, "BARLAKE_DELIST_AFTER_DAYS must be"),
    ],
)
def test_bad_pacing_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        Settings.from_env(env)


def test_an_instance_pacing_alone_takes_its_slice(tmp_path: Path) -> None:
    alone = make_pacer(
        Settings.from_env(
            {"BARLAKE_YAHOO_REQUESTS_PER_MINUTE": "60", "BARLAKE_PACER_INSTANCES": "10"}
        )
    )
    assert isinstance(alone, MemoryPacer)
    assert alone.budgets["yahoo"].rate == pytest.approx(0.1)  # 60/min ÷ 10 instances
    shared = make_pacer(
        Settings.from_env(
            {
                "BARLAKE_PACER": "redis",
                "BARLAKE_REDIS_URL": "redis://127.0.0.1:1/0",
                "BARLAKE_PACER_INSTANCES": "10",
            }
        )
    )
    assert isinstance(shared, ResilientPacer)
    assert shared.shared.budgets["yahoo"].rate == pytest.approx(55 / 60)
    assert shared.fallback.budgets["yahoo"].rate == pytest.approx(55 / 60 / 10)
    # Redis on a closed port: this instance paces at its slice, it does not fail
    assert shared.reserve("yahoo") == 0.0 and shared.degraded
    assert shared.reserve("yahoo") == pytest.approx(600 / 55, rel=1e-3)


def test_the_progress_line_shows_the_pacing_and_an_eta() -> None:
    settings = Settings.from_env({"BARLAKE_YAHOO_REQUESTS_PER_MINUTE": "60"})
    pacer = MemoryPacer({"yahoo": Budget.per_minute(60)}, sleep=lambda s: None)
    assert pacing_status(pacer, settings, 0, 100) == "0 req · paced 60/min · waited 0 s"
    for _ in range(20):
        pacer.acquire("yahoo")
    line = pacing_status(pacer, settings, 10, 100)
    # 2 requests per symbol so far, 90 symbols left at 60/min: 3 minutes
    assert line.startswith("20 req · paced 60/min · waited ")
    assert line.endswith("· ETA 3:00")


def test_a_fetch_stops_sending_when_its_time_budget_is_spent(tmp_path: Path) -> None:
    warnings.filterwarnings("ignore", module="yfinance")
    from barlake.adapters.yfinance_provider import YFinanceProvider
    from barlake.yahoo_sim import SimTransport, SimulatedYahoo, utc_close

    sim = SimulatedYahoo(today=date(2025, 6, 13))
    provider = YFinanceProvider(
        SimTransport(sim).session(),
        cache_dir=tmp_path / "yf",
        pacer=MemoryPacer({"yahoo": Budget(5)}, max_wait_s=60),
        concurrency=2,
        clock=lambda: utc_close(sim),
        seed_timezones=True,
        fetch_budget_s=1.0,
    )
    symbols = [f"T{i:02d}" for i in range(16)]
    results = provider.fetch(symbols, date(2025, 5, 1), None)
    ok = [s for s, r in results.items() if r.error is None]
    held = [r.error for r in results.values() if r.error is not None]
    assert ok and held and len(ok) + len(held) == len(symbols)
    assert {e.kind for e in held} == {ErrorKind.RATE_LIMITED}
    assert all("time budget is spent" in e.message for e in held)
    assert sim.stats["api"] <= 5 * 1.0 + 3  # the budget's second, plus a first burst
