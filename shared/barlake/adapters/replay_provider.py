"""Replay provider: serves bars from recorded provider answers instead of the network.

A replay folder holds either files directly (one recording) or one sub-folder per recording,
taken in name order (`1-2021-11-22/`, `2-2025-02-20/`…). `advance()` / `use(name)` switch to a
later recording, which is how a restatement (a split, a dividend, a revised volume) is replayed
through the real pipeline; across processes, a `CURRENT` file in the root names the
recording. A recording is a snapshot that inherits from the ones before it: a symbol absent
from the current recording is served from the latest earlier one that has it.

Files: Yahoo chart JSON (`*.json`, bare body or recorded HTTP exchange: errors replay as the
same classified ProviderError), yfinance CSV (`SYMBOL.csv`: Date, Open, High, Low, Close,
Adj Close, Volume, [Dividends, Stock Splits]) and Parquet in the lake's own daily format.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from barlake.adapters.yahoo_chart import ChartRecording, load_chart
from barlake.core.codec import decode_daily
from barlake.core.layout import key_symbol, symbol_key
from barlake.core.schema import BAR_SCHEMA, actions_from_pylist, normalize_symbol
from barlake.ports import ErrorKind, FetchResult, ProviderError

CURRENT = "CURRENT"


def _num(rec: dict[str, str], key: str) -> float | None:
    v = rec.get(key)
    return float(v) if v not in (None, "") else None


def _load_csv(path: Path) -> ChartRecording:
    symbol = normalize_symbol(key_symbol(path.stem))
    rows: list[dict] = []
    actions: list[tuple[date, str, float]] = []
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            stamp = rec.get("Date") or rec.get("Datetime") or ""
            day = date.fromisoformat(stamp[:10])

            volume = _num(rec, "Volume")
            rows.append(
                {
                    "date": day,
                    "open": _num(rec, "Open"),
                    "high": _num(rec, "High"),
                    "low": _num(rec, "Low"),
                    "close": _num(rec, "Close"),
                    "adj_close": _num(rec, "Adj Close")
                    if "Adj Close" in rec
                    else _num(rec, "Close"),
                    "volume": int(volume) if volume is not None else None,
                }
            )
            if (div := _num(rec, "Dividends")) and div != 0:
                actions.append((day, "dividend", div))
            if (split := _num(rec, "Stock Splits")) and split != 0:
                actions.append((day, "split", split))
    bars = pa.Table.from_pylist([{"symbol": symbol, **r} for r in rows], schema=BAR_SCHEMA)
    bars = bars.take(pc.sort_indices(bars, [("date", "ascending")]))
    return ChartRecording(symbol, bars, actions_from_pylist(symbol, sorted(actions)), None)


def _load_parquet(path: Path) -> ChartRecording:
    bars, actions = decode_daily(path.read_bytes())
    symbol = normalize_symbol(key_symbol(path.stem))
    return ChartRecording(symbol, bars, actions, None)


_LOADERS = {".json": load_chart, ".csv": _load_csv, ".parquet": _load_parquet}


def load_recording_dir(folder: Path) -> dict[str, ChartRecording]:
    out: dict[str, ChartRecording] = {}
    for path in sorted(folder.iterdir()):
        loader = _LOADERS.get(path.suffix.lower())
        if loader is None or not path.is_file():
            continue
        rec = loader(path)
        if rec.symbol:
            out[rec.symbol] = rec
    return out


class ReplayProvider:
    """A Provider over recorded answers; see the module docstring for the folder layout."""

    name = "replay"

    def __init__(self, root: str | Path, recording: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"replay folder not found: {self.root}")
        subdirs = sorted(
            p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
        self.recordings: list[str] = [p.name for p in subdirs] or [""]
        self._cache: dict[str, dict[str, ChartRecording]] = {}
        self._index = 0
        self.calls: list[tuple[tuple[str, ...], date | None, date | None]] = []
        if recording is not None:
            self.use(recording)

    @property
    def recording(self) -> str:
        return self.recordings[self._index]

    def use(self, name: str) -> None:
        if name not in self.recordings:
            raise KeyError(f"no recording {name!r} in {self.root} (have {self.recordings})")
        self._index = self.recordings.index(name)

    def advance(self) -> bool:
        """Switch to the next recording; False when already at the last one."""
        if self._index + 1 >= len(self.recordings):
            return False
        self._index += 1
        return True

    def _snapshot(self, name: str) -> dict[str, ChartRecording]:
        if name not in self._cache:
            self._cache[name] = load_recording_dir(self.root / name if name else self.root)
        return self._cache[name]

    def recorded(self, symbol: str) -> ChartRecording | None:
        """The recording serving `symbol` now: the current one, or the latest earlier one."""
        for i in range(self._index, -1, -1):
            rec = self._snapshot(self.recordings[i]).get(symbol)
            if rec is not None:
                return rec
        return None

    def symbols(self) -> list[str]:
        names: set[str] = set()
        for i in range(self._index + 1):
            names.update(self._snapshot(self.recordings[i]))
        return sorted(names)

    def _follow_pointer(self) -> None:
        """A `CURRENT` file in the root names the recording to serve: how a test switches the
        recording of a provider running in another process (a function under the local stack)."""
        pointer = self.root / CURRENT
        if pointer.is_file():
            self.use(pointer.read_text().strip())

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        self._follow_pointer()
        self.calls.append((tuple(symbols), start, end))
        out: dict[str, FetchResult] = {}
        for symbol in symbols:
            rec = self.recorded(symbol)
            if rec is None:
                out[symbol] = FetchResult(
                    symbol, error=ProviderError(ErrorKind.NOT_FOUND, "not in the replay recordings")
                )
                continue
            if rec.error is not None:
                out[symbol] = FetchResult(symbol, error=rec.error)
                continue
            bars, actions = rec.bars, rec.actions
            if start is not None:
                bars = bars.filter(pc.greater_equal(bars["date"], pa.scalar(start, pa.date32())))
                actions = actions.filter(
                    pc.greater_equal(actions["date"], pa.scalar(start, pa.date32()))
                )
            if end is not None:
                bars = bars.filter(pc.less_equal(bars["date"], pa.scalar(end, pa.date32())))
                actions = actions.filter(
                    pc.less_equal(actions["date"], pa.scalar(end, pa.date32()))
                )
            if bars.num_rows == 0:
                out[symbol] = FetchResult(
                    symbol, error=ProviderError(ErrorKind.NO_DATA, "no bars in the requested range")
                )
                continue
            out[symbol] = FetchResult(symbol, bars=bars, actions=actions, as_of=rec.as_of)
        return out


def clone_recording(source: Path, symbol: str, folder: Path, *, status: int = 200) -> Path:
    """Write `source`'s Yahoo chart recording as `symbol` into folder (a synthetic universe of
    real bars, for the stack tests and the pipeline bench). status != 200 records the same
    exchange as that HTTP error instead (a 503 replays as a transient provider failure)."""
    doc = json.loads(source.read_text())
    resp = doc.setdefault("response", {"status": 200, "bodyJson": doc.pop("chart", None)})
    body = resp.get("bodyJson") or {}
    for result in (body.get("chart") or {}).get("result") or []:
        result.setdefault("meta", {})["symbol"] = symbol
    if status != 200:
        resp["status"] = status
        resp["bodyJson"] = {"chart": {"result": None, "error": {"code": str(status)}}}
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{symbol_key(symbol)}.json"
    target.write_text(json.dumps(doc))
    return target
