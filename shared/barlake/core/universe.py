"""Universes: named symbol lists whose membership has dates, so they can be asked point-in-time.

"The S&P 500 as of 2015-06-30" must list the members of that day, including the ones that left
later — listing today's members for an old date is survivorship bias. So a universe is a set of
membership periods, one row per (symbol, from): `from` is the first day of membership
(inclusive, None = since always), `to` the first day it no longer holds (exclusive, None = still
a member). A symbol that left and came back has two periods; periods of one symbol never
overlap.

Pure functions over plain values: parsing and writing the CSV form, the membership on a day,
and the edits `add` (open a period) and `remove` (close one).

CSV form (UTF-8, a header row): `symbol[,from][,to]`, dates as YYYY-MM-DD, empty = open.
`start`/`end` are accepted as spellings of `from`/`to`; blank lines and lines whose first cell
starts with `#` are skipped.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from barlake.core.schema import InvalidSymbolError, normalize_symbol

NAME_REGEX = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME = re.compile(NAME_REGEX)
MAX_MEMBERS = 100_000  # one CSV: the biggest real lists (all US listings) are ~10k
_COLUMNS = {"symbol": "symbol", "from": "from", "start": "from", "to": "to", "end": "to"}


class InvalidUniverseError(ValueError):
    """A universe name, a CSV or an edit that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Universe:
    """A named list: its tags (free labels: index, etf, crypto…) and where it came from."""

    name: str
    tags: tuple[str, ...] = ()
    source: str = ""  # e.g. "csv:universes/sp500.csv", "manual"
    description: str = ""


@dataclass(frozen=True, order=True)
class Membership:
    """One period of membership: [start, end), either side None = open."""

    symbol: str
    start: date | None = None
    end: date | None = None

    def holds_on(self, day: date) -> bool:
        return (self.start is None or self.start <= day) and (self.end is None or day < self.end)


def validate_name(name: str) -> str:
    """Universe names are lower-case words (they name documents, rows and URL paths)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidUniverseError(
            f"universe name must be 1-64 of a-z 0-9 . _ - (starting with a letter or digit), "
            f"got {str(name)[:70]!r}"
        )
    return name


def _key(m: Membership) -> tuple[str, date]:
    return (m.symbol, m.start or date.min)


def check(members: Iterable[Membership]) -> list[Membership]:
    """Sorted periods, or InvalidUniverseError if one is empty or two of a symbol overlap."""
    out = sorted(members, key=_key)
    for m in out:
        if m.start is not None and m.end is not None and m.end <= m.start:
            raise InvalidUniverseError(f"{m.symbol}: 'to' {m.end} is not after 'from' {m.start}")
    for a, b in itertools.pairwise(out):
        if a.symbol == b.symbol and (a.end is None or (b.start is not None and b.start < a.end)):
            raise InvalidUniverseError(
                f"{a.symbol}: membership periods overlap ({_span(a)} and {_span(b)})"
            )
    if len(out) > MAX_MEMBERS:
        raise InvalidUniverseError(f"at most {MAX_MEMBERS} membership rows, got {len(out)}")
    return out


def _span(m: Membership) -> str:
    return f"{m.start or '…'}→{m.end or '…'}"


def members_on(members: Iterable[Membership], day: date) -> list[str]:
    """The symbols that are members on `day`, sorted."""
    return sorted({m.symbol for m in members if m.holds_on(day)})


def ever_members(members: Iterable[Membership]) -> list[str]:
    return sorted({m.symbol for m in members})


def add(members: Sequence[Membership], symbols: Iterable[str], since: date) -> list[Membership]:
    """Make each symbol a member from `since` on, appending to its history, never rewriting it.

    A symbol already a member on `since` (its latest period open) is left as it is; one whose
    latest period ends after `since` has it reopened; otherwise a new period starts on `since`.
    A `since` before the start of the symbol's latest period would rewrite history: refused
    (edit the CSV and import it for corrections)."""
    out = list(members)
    for symbol in symbols:
        own = sorted((m for m in out if m.symbol == symbol), key=_key)
        last = own[-1] if own else None
        if last is not None and last.start is not None and since < last.start:
            raise InvalidUniverseError(
                f"{symbol}: its latest membership starts on {last.start}, after {since}; "
                "correct history by exporting, editing and importing the CSV"
            )
        if last is not None and last.end is None:
            continue
        if last is not None and last.end is not None and since < last.end:
            out[out.index(last)] = Membership(symbol, last.start, None)
        else:
            out.append(Membership(symbol, since, None))
    return check(out)


def remove(members: Sequence[Membership], symbols: Iterable[str], on: date) -> list[Membership]:
    """Close each symbol's open period on `on` (its first day out). A period that started on
    `on` itself is dropped: the symbol never was a member. Symbols not currently members, and
    an `on` before the open period's start, are errors, so a typo is not silently ignored."""
    out = list(members)
    for symbol in symbols:
        open_ = [m for m in out if m.symbol == symbol and m.end is None]
        if not open_:
            raise InvalidUniverseError(f"{symbol} is not a current member")
        period = open_[0]
        if period.start is not None and on < period.start:
            raise InvalidUniverseError(
                f"{symbol} joined on {period.start}: a removal must be on or after that day"
            )
        out.remove(period)
        if period.start is None or period.start < on:
            out.append(Membership(symbol, period.start, on))
    return check(out)


def parse_csv(text: str) -> list[Membership]:
    """Membership rows from CSV text; InvalidUniverseError naming the line of the first problem."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise InvalidUniverseError("the CSV is empty (a header row 'symbol,from,to' is needed)")
    reader = csv.reader(io.StringIO("\n".join(lines)))
    header = [h.strip().lower().lstrip("\ufeff") for h in next(reader)]
    unknown = [h for h in header if h not in _COLUMNS]
    if unknown or "symbol" not in header:
        raise InvalidUniverseError(
            "CSV header must name 'symbol' and optionally 'from' and 'to', "
            f"got {','.join(header)!r}"
        )
    index = {_COLUMNS[h]: i for i, h in enumerate(header)}
    out = []
    for n, row in enumerate(reader, start=2):
        cells = [c.strip() for c in row]
        if len(cells) > len(header):
            raise InvalidUniverseError(
                f"line {n}: {len(cells)} cells, the header has {len(header)}"
            )
        cells += [""] * (len(header) - len(cells))
        try:
            symbol = normalize_symbol(cells[index["symbol"]])
        except InvalidSymbolError as exc:
            raise InvalidUniverseError(f"line {n}: {exc}") from exc
        out.append(
            Membership(
                symbol,
                _date(cells, index.get("from"), n, "from"),
                _date(cells, index.get("to"), n, "to"),
            )
        )
    return check(out)


def _date(cells: list[str], i: int | None, line: int, column: str) -> date | None:
    if i is None or not cells[i]:
        return None
    try:
        return date.fromisoformat(cells[i])
    except ValueError:
        raise InvalidUniverseError(
            f"line {line}: {column!r} must be a date like 2015-06-30, got {cells[i][:30]!r}"
        ) from None


def to_csv(members: Iterable[Membership]) -> str:
    """The CSV form parse_csv reads back to the same periods."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["symbol", "from", "to"])
    for m in sorted(members, key=_key):
        writer.writerow([m.symbol, m.start or "", m.end or ""])
    return buf.getvalue()
