"""The Pacer contract, run against every pacer adapter: in-process, Redis (real redis-server),
Upstash (the real upstash-redis client through the REST bridge to the same Redis) and the
resilient wrapper over each shared one. Plus what only the shared ones promise: several
processes drawing from one budget never exceed it, and what only the resilient one does: fall
back to this instance's slice while the shared budget is down, and return when it is back.

The law is checked on the reserved start instants each adapter reports (Redis's own clock for
the shared ones), so the checks are exact, not timings; the multi-process test also checks the
wall-clock instants the processes woke at, allowing one request of scheduling slack.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from barlake.adapters.memory_pacer import MemoryPacer, PacerPatienceExceeded
from barlake.core.pacing import Budget
from barlake.ports import Pacer, TransientError

Factory = Callable[..., Any]


def _memory(request: pytest.FixtureRequest, budgets: dict[str, Budget], **kw: Any) -> Any:
    return MemoryPacer(budgets, **kw)


def _redis(request: pytest.FixtureRequest, budgets: dict[str, Budget], **kw: Any) -> Any:
    from barlake.adapters.redis_pacer import RedisPacer

    return RedisPacer(request.getfixturevalue("redis_url"), budgets, timeout_s=2, **kw)


def _upstash(request: pytest.FixtureRequest, budgets: dict[str, Budget], **kw: Any) -> Any:
    from barlake.adapters.upstash_pacer import UpstashPacer

    bridge = request.getfixturevalue("upstash")
    return UpstashPacer(bridge.url, bridge.token, budgets, timeout_s=2, **kw)


def _resilient(inner: Factory) -> Factory:
    def make(request: pytest.FixtureRequest, budgets: dict[str, Budget], **kw: Any) -> Any:
        from barlake.adapters.resilient_pacer import ResilientPacer

        return ResilientPacer(inner(request, budgets, **kw), instances=10)

    return make


PACERS: dict[str, Factory] = {
    "memory": _memory,
    "redis": _redis,
    "upstash": _upstash,
    "resilient-redis": _resilient(_redis),
    "resilient-upstash": _resilient(_upstash),
}


@pytest.fixture(params=sorted(PACERS))
def make_pacer(request: pytest.FixtureRequest) -> Factory:
    return lambda budgets, **kw: PACERS[request.param](request, budgets, **kw)


def assert_within(starts: list[float], budget: Budget, slack: float = 0.0) -> None:
    """Any window [s_i, s_j] of sorted starts holds at most burst + width × rate (+ slack)."""
    starts = sorted(starts)
    for i in range(len(starts)):
        for j in range(i, len(starts)):
            width = starts[j] - starts[i]
            allowed = budget.burst + width * budget.rate + slack + 1e-3
            assert j - i + 1 <= allowed, f"{j - i + 1} requests within {width:.4f} s"


def test_every_adapter_is_a_pacer(make_pacer: Factory) -> None:
    import inspect

    pacer: Pacer = make_pacer({"yahoo": Budget(10)})
    wanted = inspect.signature(Pacer.acquire).parameters
    got = inspect.signature(pacer.acquire).parameters
    assert list(got) == [p for p in wanted if p != "self"]
    assert got["cost"].default == 1


def test_threads_sharing_a_pacer_stay_within_the_budget(make_pacer: Factory) -> None:
    budget = Budget(20, burst=2)
    pacer = make_pacer({"yahoo": budget})
    starts: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(6):
            wait, start = pacer.reserve_slot("yahoo")
            assert wait >= 0
            with lock:
                starts.append(start)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(starts) == 24
    assert_within(starts, budget)
    # 24 requests at 20/s with a burst of 2: the last starts ≥ 1.1 s after the first
    assert max(starts) - min(starts) >= (24 - 2) / 20 - 1e-3


def test_acquire_sleeps_the_reserved_wait_plus_bounded_jitter(make_pacer: Factory) -> None:
    slept: list[float] = []
    pacer = make_pacer({"yahoo": Budget(5)}, jitter_s=0.05, sleep=slept.append)
    waited = [pacer.acquire("yahoo") for _ in range(4)]
    assert waited == pytest.approx(slept) if slept else waited == [0.0] * 4
    # request k waits about k × 0.2 s (the calls take a little time themselves), plus jitter
    for k, w in enumerate(waited):
        assert k * 0.2 - 0.15 <= w <= k * 0.2 + 0.05 + 1e-3, (k, w)


def test_patience_exceeded_is_transient_and_books_nothing(make_pacer: Factory) -> None:
    budget = Budget(2)  # one request per 0.5 s
    pacer = make_pacer({"yahoo": budget}, max_wait_s=1.2)
    waits = [pacer.reserve("yahoo") for _ in range(3)]  # 0, 0.5, 1.0
    assert waits[-1] <= 1.2
    with pytest.raises(PacerPatienceExceeded, match="booked") as refused:
        pacer.reserve("yahoo")
    assert isinstance(refused.value, TransientError)
    with pytest.raises(PacerPatienceExceeded):  # the refusal reserved nothing
        pacer.reserve("yahoo")
    # another provider's budget is its own
    assert pacer.reserve("tiingo") == 0.0  # no budget, no default: not paced


def test_unknown_providers_share_the_default_budget(make_pacer: Factory) -> None:
    pacer = make_pacer({"yahoo": Budget(1)}, default=Budget(1))
    assert pacer.reserve("polygon") == 0.0
    assert pacer.reserve("polygon") > 0.5  # the default budget, per provider
    assert pacer.reserve("tiingo") == 0.0
    assert pacer.reserve("yahoo") == 0.0


# --------------------------------------------------------------------------- many processes

_CHILD = r"""
import json, sys, time
from barlake.core.pacing import Budget
kind, target, token, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
budgets = {"yahoo": Budget(25, burst=1)}
if kind == "redis":
    from barlake.adapters.redis_pacer import RedisPacer
    pacer = RedisPacer(target, budgets, timeout_s=5)
else:
    from barlake.adapters.upstash_pacer import UpstashPacer
    pacer = UpstashPacer(target, token, budgets, timeout_s=5)
slots, woke = [], []
for _ in range(n):
    wait, start = pacer.reserve_slot("yahoo")
    time.sleep(wait)
    woke.append(time.time())
    slots.append(start)
print(json.dumps({"slots": slots, "woke": woke}))
"""


@pytest.mark.parametrize("kind", ["redis", "upstash"])
def test_processes_sharing_the_budget_never_exceed_it(
    kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "redis":
        target, token = request.getfixturevalue("redis_url"), "-"
    else:
        bridge = request.getfixturevalue("upstash")
        target, token = bridge.url, bridge.token
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, kind, target, token, "12"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        results.append(json.loads(out))
    budget = Budget(25, burst=1)
    slots = [s for r in results for s in r["slots"]]
    woke = [w for r in results for w in r["woke"]]
    assert len(slots) == 36 and len(set(slots)) == 36
    assert_within(slots, budget)  # exact, on Redis's clock
    assert_within(woke, budget, slack=1)  # as sent: one request of scheduling slack
    # and the three processes really interleaved rather than ran one after the other
    first_ends = min(max(r["slots"]) for r in results)
    assert sum(1 for s in slots if s <= first_ends) > 12


# --------------------------------------------------------------------------- fallback


def test_resilient_pacer_falls_back_to_its_slice_and_returns(
    upstash: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from barlake.adapters.resilient_pacer import ResilientPacer
    from barlake.adapters.upstash_pacer import UpstashPacer

    now = [1000.0]
    shared = UpstashPacer(upstash.url, upstash.token, {"yahoo": Budget(10)}, timeout_s=2)
    pacer = ResilientPacer(shared, instances=5, clock=lambda: now[0], sleep=lambda s: None)
    assert pacer.reserve("yahoo") == 0.0 and pacer.stats.shared == 1
    upstash.fault = "down"
    with caplog.at_level("WARNING", logger="barlake.pacer"):
        waits = [pacer.reserve("yahoo") for _ in range(3)]
        # this instance's slice: 10/s ÷ 5 instances = one request per 0.5 s
        assert waits == pytest.approx([0.0, 0.5, 1.0])
        assert pacer.degraded and pacer.stats.fallback == 3 and pacer.stats.incidents == 1
        assert upstash.requests  # it asked once, then the breaker kept it away
        asked = upstash.requests
        pacer.reserve("yahoo")
        assert upstash.requests == asked
        upstash.fault = None
        now[0] += 2.0  # past the cool-off: one probe, which succeeds
        assert pacer.reserve("yahoo") >= 0.0
    assert not pacer.degraded and pacer.stats.shared == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "barlake.pacer"]
    assert len(messages) == 2
    assert "unreachable" in messages[0] and "back after" in messages[1]
