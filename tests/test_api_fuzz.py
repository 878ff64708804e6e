"""schemathesis over /openapi.json, against the `api` function as Cloud Run runs it:
functions-framework (gunicorn) serving functions/api/main.py, a lake filled from the real
recordings, the real Redis cache behind it and API keys on.

Every phase but the stateful one (examples, coverage — including undocumented methods —, and
fuzzing), positive and negative data, every check. Bounded: FUZZ_EXAMPLES per operation and
mode keeps the run near 40 s on 2 cores; the request count is read from the server itself.
"""

from __future__ import annotations

import collections
import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from apilake import SYMBOLS, open_lake
from barlake.emulators import Emulator, start_function

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"
KEY = "fuzz-key-7d1f"
FUZZ_EXAMPLES = int(os.environ.get("BARLAKE_FUZZ_EXAMPLES", "150"))


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory, redis_server: Emulator) -> Iterator[str]:
    root = tmp_path_factory.mktemp("fuzz")
    lake = open_lake(root / "lake")
    lake.ingest()
    while lake.provider.advance():
        lake.ingest(*SYMBOLS, "NOSUCH")
    env = {
        "BARLAKE_LAKE_DIR": str(root / "lake"),
        "BARLAKE_CACHE": "redis",
        "BARLAKE_REDIS_URL": redis_server.env["BARLAKE_REDIS_URL"],
        "BARLAKE_CACHE_BUDGET_MS": "500",
        "BARLAKE_API_KEYS": f"other-key,{KEY}",
    }
    server = start_function("api", FUNCTIONS / "api", "http", root / "logs", env)
    yield server.url
    server.stop()


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/health", timeout=10) as r:
        return json.loads(r.read())


def test_fuzz_openapi_document_against_the_running_function(api_server: str) -> None:
    import schemathesis
    from schemathesis.engine import events, from_schema

    before = health(api_server)["responses"]
    config = schemathesis.Config.from_dict(
        {
            "seed": 20261121,
            "headers": {"X-API-Key": KEY},
            "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
            "request-timeout": 30,
        }
    )
    schema = schemathesis.openapi.from_url(f"{api_server}/openapi.json", config=config)

    @schema.hook
    def filter_query(ctx: object, query: dict | None) -> bool:
        # The one rule a schema cannot state (start ≤ end; test_api checks its 400).
        start, end = (query or {}).get("start"), (query or {}).get("end")
        return not (isinstance(start, str) and isinstance(end, str) and start > end)

    failures: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    errors: list[str] = []
    cases = 0
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            cases += len(event.recorder.cases)
            for case_id, checks in event.recorder.checks.items():
                for check in checks:
                    if check.status.name == "FAILURE":
                        key = f"{event.recorder.label}: {check.name}"
                        failures[key] += 1
                        seen = event.recorder.interactions.get(case_id)
                        if seen is not None and key not in examples:
                            status = seen.response.status_code if seen.response else "-"
                            examples[key] = f"{seen.request.method} {seen.request.uri} → {status}"
        elif isinstance(event, events.NonFatalError | events.FatalError):
            errors.append(f"{getattr(event, 'label', '')}: {event.info.message}")
    after = health(api_server)["responses"]
    served = {k: after.get(k, 0) - before.get(k, 0) for k in ("2xx", "3xx", "4xx", "5xx")}
    requests = sum(served.values())
    print(f"schemathesis: {cases} cases, {requests} requests served: {served}")
    assert not errors, errors
    for key, n in failures.items():
        print(f"FAILED {n}× {key}: {examples.get(key)}")
    assert not failures
    assert served["5xx"] == 0
    assert requests >= 1000, served
