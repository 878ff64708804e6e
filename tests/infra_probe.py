"""Run one function's code path from its unpacked source archive and report what it touched.

Used by tests/test_package.py and tests/test_infra_wiring.py in a subprocess, so each function
starts with a fresh interpreter: the third-party modules it imports are exactly its own, and
`barlake` must come from the archive (proving the archive is self-sufficient).

    python tests/infra_probe.py ARCHIVE_DIR FUNCTION LAKE_DIR INPUT_JSON

INPUT_JSON: {"message": the event payload, "clock": ISO time, "replay": recording folder,
"allowed": the distributions in the archive's requirements.txt}.

Third-party packages outside "allowed" cannot be imported (an import hook raises
ModuleNotFoundError, exactly as in the deployed function, where they are not installed): a
package the function needs but does not list makes the probe fail, and optional imports
(pyarrow looking for pandas) take their fallback path as they would in the cloud.

Every adapter is the real embedded one (local folder, SQLite, in-process bus) behind a thin
recorder that notes which port methods the function called on which resource (raw bucket,
derived bucket, state, topic, cache). The tests map those operations to IAM permissions and
compare them with what Terraform grants that function's service account. Output: one JSON
object on stdout: {"ops": [...], "modules": [...], "barlake": path, "result": ...}.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ARCHIVE, FUNCTION, LAKE, INPUT = sys.argv[1:5]
sys.path[:] = [ARCHIVE, *[p for p in sys.path[1:] if Path(p).resolve() != Path(__file__).parent]]

# The cloud settings Terraform gives every function (the probe swaps in embedded backends
# below, since no cloud is reachable; the adapters' modules are imported all the same).
CLOUD = {"BARLAKE_STORAGE": "gcs", "BARLAKE_EVENTS": "pubsub", "BARLAKE_STATE": "firestore"}
READ_METHODS = {
    "list_symbols",
    "get_batch",
    "get_run",
    "latest_run",
    "quarantine",
    "restatements",
    "get_profile",
    "list_profiles",
}


class OnlyRequirements:
    """Meta path finder refusing top-level modules of distributions not in `allowed`."""

    def __init__(self, allowed: set[str]) -> None:
        from importlib.metadata import packages_distributions

        self.owners = packages_distributions()
        self.allowed = allowed

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if "." in fullname or fullname in sys.stdlib_module_names:
            return None
        dists = {d.lower().replace("_", "-") for d in self.owners.get(fullname, ())}
        if dists and not dists & self.allowed:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


class Recorder:
    """Delegates every call to the real adapter and notes (resource, operation)."""

    def __init__(self, inner: Any, resource: str, ops: list[list[str]]) -> None:
        self._inner, self._resource, self._ops = inner, resource, ops

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._ops.append(self._describe(name, args, kwargs))
            return attr(*args, **kwargs)

        return call

    def _describe(self, name: str, args: tuple, kwargs: dict) -> list[str]:
        r = self._resource
        if r in ("raw", "derived"):
            if name == "write":
                target = args[0]
                exists = self._inner.stat(target) is not None
                # GCS: replacing an existing object needs storage.objects.delete as well.
                return [r, "overwrite" if exists else "create"]
            ops = {"read": "get", "stat": "get", "read_version": "get", "versions": "list"}
            return [r, ops.get(name, name)]
        if r == "state":
            return ["state", "read" if name in READ_METHODS else "write"]
        if r == "bus":
            return [f"topic:{args[0]}", "publish"]
        return [r, name]


def main() -> None:
    given = json.loads(INPUT)
    sys.meta_path.insert(0, OnlyRequirements(set(given["allowed"])))
    import barlake
    from barlake.adapters.replay_provider import ReplayProvider
    from barlake.config import App, Settings, build_embedded, make_provider

    __import__("main")  # the entry point itself: functions_framework, cloudevents, cloudfn
    settings = Settings.from_env({**CLOUD, "BARLAKE_PROJECT": "probe", "BARLAKE_LAKE_DIR": LAKE})
    _import_cloud_adapters(settings)
    if FUNCTION == "ingest":
        make_provider(settings.provider)  # the deployed provider's imports (yfinance)
    now = datetime.fromisoformat(given["clock"])

    def clock() -> datetime:
        return now

    embedded = Settings.from_env({"BARLAKE_LAKE_DIR": LAKE})
    base = build_embedded(embedded, provider=ReplayProvider(given["replay"]), clock=clock)
    ops: list[list[str]] = []
    app = App(
        settings=base.settings,
        raw=Recorder(base.raw, "raw", ops),
        derived=Recorder(base.derived, "derived", ops),
        state=Recorder(base.state, "state", ops),
        bus=Recorder(base.bus, "bus", ops),
        cache=Recorder(base.cache, "cache", ops),
        provider=base.provider,
        clock=clock,
    )
    data = given["message"]
    published: list[Any] = []
    if FUNCTION == "api":
        result = _api(app, data)
    else:
        from barlake import handlers

        inner_publish = base.bus.publish

        def publish(topic: str, message: Any, attributes: Any = None) -> str:
            published.append(message)
            return inner_publish(topic, message, attributes)

        base.bus.publish = publish  # type: ignore[method-assign]
        result = getattr(handlers, FUNCTION)(app, data)
    dists = _distributions()
    print(
        json.dumps(
            {
                "ops": sorted({tuple(o) for o in ops}),
                "modules": dists,
                "barlake": barlake.__file__,
                "result": result,
                "published": published,
            }
        )
    )


def _api(app: Any, data: dict[str, Any]) -> Any:
    """The API's read path (bars, profiles, inventory, run status)."""
    symbol = data["symbol"]
    out = {
        "daily": app.read.bars(symbol).table.num_rows,
        "weekly": app.read.bars(symbol, "1wk").table.num_rows,
        "profile": app.read.profile(symbol) is not None,
        "inventory": app.read.inventory() is not None,
        "run": app.read.run(data["run_id"]) is not None,
        "indicators": _indicators(app, symbol),
        # ?as_of= lists the daily object's versions and reads one
        "as_of": app.read.bars(symbol, as_of=datetime.now(UTC)).table.num_rows,
    }
    app.cache.get(f"probe:{symbol}")
    return out


def _indicators(app: Any, symbol: str) -> int:
    """The analytics read path (TA-Lib from the archive's own requirements)."""
    from barlake.core import indicators
    from barlake.services.analytics import Analytics, IndicatorQuery

    q = IndicatorQuery((indicators.request("macd", {}), indicators.request("bbands", {})))
    table, _ = Analytics(app.raw, app.derived).indicators(symbol, q)
    return table.num_rows


def _import_cloud_adapters(settings: Any) -> None:
    """Import the adapters build_app imports for the cloud settings, without connecting."""
    import importlib

    assert (settings.storage, settings.events, settings.state) == ("gcs", "pubsub", "firestore")
    modules = ["gcs_store", "pubsub_bus", "firestore_state"]
    if FUNCTION in {"dispatch", "ingest", "weekly", "profile", "api"}:  # read or announce
        modules += ["upstash_cache", "redis_cache", "resilient_cache"]  # cache_backend's choices
    for module in modules:
        importlib.import_module(f"barlake.adapters.{module}")


def _distributions() -> list[str]:
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    names: set[str] = set()
    for module in list(sys.modules):
        top = module.partition(".")[0]
        if top in sys.stdlib_module_names or top in ("barlake", "main", "__main__"):
            continue
        for dist in owners.get(top, ()):
            names.add(dist.lower().replace("_", "-"))
    return sorted(names)


if __name__ == "__main__":
    main()
