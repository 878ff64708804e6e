"""The operator's dashboard: static pages served by the api function, reading its JSON API.

Why here and not a second service: the dashboard is three small files and a charting library,
and it reads exactly the endpoints a user reads (/v1/symbols, /v1/runs/…, /v1/bars/…,
/v1/profiles/…, /v1/history/…), so it cannot disagree with them. The pages are public (they
hold no data); their data calls carry the `X-API-Key` the page asks for when the API answers 401,
so the same auth rules hold.

The charting library (TradingView's lightweight-charts, Apache-2.0) comes from npm: `npm ci`
installs it into node_modules/, and barlake.package copies it into the api archive under
assets/vendor/. Nothing is fetched from another host at run time: the Content-Security-Policy
below allows this origin only.

Files are read once per instance, on the first dashboard request, so the API's cold import
does not grow by a byte.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

ASSETS = Path(__file__).resolve().parent / "dashboard_assets"
VENDOR_NAME = "lightweight-charts.js"
VENDOR_SOURCE = Path(
    "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js"
)
VENDOR_LICENSE = Path("node_modules/lightweight-charts/LICENSE")
# the repository checkout (for `barlake serve` from a clone; an archive carries assets/vendor/)
_ROOT = Path(__file__).resolve().parents[3]

MEDIA = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HISTORY_LIMIT = 500  # restatements and quarantined rows shown per symbol (newest first)


class MissingAsset(LookupError):
    """No such dashboard file (or the charting library was never installed: run `npm ci`)."""


def vendor_file(name: str = VENDOR_NAME) -> Path | None:
    """The charting library (or its LICENSE): shipped in the archive, else from node_modules."""
    shipped = ASSETS / "vendor" / name
    if shipped.is_file():
        return shipped
    source = VENDOR_SOURCE if name == VENDOR_NAME else VENDOR_LICENSE
    local = _ROOT / source
    return local if local.is_file() else None


class Assets:
    """The dashboard's files, read and hashed once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._files: dict[str, tuple[bytes, str, str]] = {}

    def get(self, rest: str) -> tuple[bytes, str, str]:
        """(body, media type, ETag) of /dashboard/<rest>; "" is the page itself."""
        name = rest or "index.html"
        with self._lock:
            found = self._files.get(name)
            if found is None:
                found = self._load(name)
                self._files[name] = found
        return found

    @staticmethod
    def _load(name: str) -> tuple[bytes, str, str]:
        if name in _VENDOR:
            path = vendor_file(name.removeprefix("vendor/"))
            if path is None:
                raise MissingAsset(
                    f"dashboard file {name} is not installed (run `npm ci` in the checkout)"
                )
        elif name not in _PUBLIC:
            raise MissingAsset(f"no dashboard file {name[:80]}")
        else:
            path = ASSETS / name
        data = path.read_bytes()
        media = MEDIA.get(path.suffix, "application/octet-stream")
        if name == "LICENSE" or path.name == "LICENSE":
            media = MEDIA[".txt"]
        etag = f'"d-{hashlib.sha1(data, usedforsecurity=False).hexdigest()[:20]}"'
        return data, media, etag


# The only names served: a fixed list, so no path can leave these folders.
_PUBLIC = frozenset({"index.html", "dashboard.css", "dashboard.js"})
_VENDOR = frozenset({f"vendor/{VENDOR_NAME}", "vendor/LICENSE"})


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def history(state: Any, symbol: str) -> bytes:
    """/v1/history/{symbol}: the symbol's restatements and quarantined rows, newest first."""
    restated = sorted(state.restatements(symbol), key=lambda r: r.detected_at, reverse=True)
    quarantined = sorted(state.quarantine(symbol), key=lambda q: q.date, reverse=True)
    payload = {
        "symbol": symbol,
        "restatement_count": len(restated),
        "quarantine_count": len(quarantined),
        "restatements": [
            {
                "detected_at": r.detected_at,
                "run_id": r.run_id,
                "kinds": list(r.kinds),
                "evidence": r.evidence,
            }
            for r in restated[:HISTORY_LIMIT]
        ],
        "quarantine": [
            {"date": q.date, "reason": q.reason, "run_id": q.run_id, "row": q.row}
            for q in quarantined[:HISTORY_LIMIT]
        ],
    }
    return json.dumps(_plain(payload), separators=(",", ":"), default=str).encode()


ASSETS_CACHE = Assets()  # one per instance: the files never change while it runs
