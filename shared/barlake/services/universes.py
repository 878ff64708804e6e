"""Universes as the CLI, the API and dispatch use them: list, show as of a day, edit, import and
export CSV, and "which symbols does a run of this universe cover on this day".

Edits are whole-symbol rewrites through the store (`replace_members` of the symbols touched),
computed by barlake.core.universe, so the rules (no overlapping periods, `to` after `from`) hold
whichever adapter is behind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from barlake.core import universe as core
from barlake.core.universe import InvalidUniverseError, Membership, Universe
from barlake.ports import UniverseStore


class UniverseNotFoundError(LookupError):
    """No universe of that name (the API answers 404, the CLI exits 4)."""


@dataclass
class UniverseService:
    store: UniverseStore
    clock: Callable[[], datetime]

    def today(self) -> date:
        return self.clock().astimezone(UTC).date()

    def _get(self, name: str) -> Universe:
        found = self.store.get_universe(core.validate_name(name))
        if found is None:
            raise UniverseNotFoundError(f"no universe named {name!r}")
        return found

    def exists(self, name: str) -> bool:
        try:
            return self.store.get_universe(core.validate_name(name)) is not None
        except InvalidUniverseError:
            return False

    def summaries(self, as_of: date | None = None) -> list[dict[str, Any]]:
        day = as_of or self.today()
        out = []
        for u in self.store.list_universes():
            members = self.store.members(u.name)
            out.append(
                {
                    **_describe(u),
                    "members": len(core.members_on(members, day)),
                    "ever_members": len(core.ever_members(members)),
                }
            )
        return out

    def show(self, name: str, as_of: date | None = None) -> dict[str, Any]:
        """The universe and its members on `as_of` (default: today, UTC)."""
        u = self._get(name)
        day = as_of or self.today()
        members = self.store.members(u.name)
        symbols = core.members_on(members, day)
        return {**_describe(u), "as_of": day.isoformat(), "count": len(symbols), "symbols": symbols}

    def periods(self, name: str) -> list[Membership]:
        return self.store.members(self._get(name).name)

    def members_on(self, name: str, day: date) -> list[str] | None:
        """Members on `day`, or None when no universe has that name (dispatch then falls back
        to the symbol registry's `universes` labels)."""
        if not self.exists(name):
            return None
        return core.members_on(self.store.members(name), day)

    def create(
        self, name: str, tags: Sequence[str] = (), source: str = "manual", description: str = ""
    ) -> Universe:
        u = Universe(core.validate_name(name), tuple(tags), source, description)
        existing = self.store.get_universe(u.name)
        if existing is not None:  # keep what was there unless new values are given
            u = Universe(
                u.name,
                tuple(tags) or existing.tags,
                source if source != "manual" else existing.source,
                description or existing.description,
            )
        self.store.put_universe(u)
        return u

    def add(self, name: str, symbols: Sequence[str], since: date | None = None) -> None:
        """Make symbols members from `since` (default today); the universe is created if new."""
        self.create(name)
        self._edit(name, symbols, lambda own: core.add(own, symbols, since or self.today()))

    def remove(self, name: str, symbols: Sequence[str], on: date | None = None) -> None:
        """End the symbols' membership on `on` (default today): their history stays."""
        self._get(name)
        self._edit(name, symbols, lambda own: core.remove(own, symbols, on or self.today()))

    def _edit(
        self,
        name: str,
        symbols: Sequence[str],
        change: Callable[[list[Membership]], list[Membership]],
    ) -> None:
        touched = set(symbols)
        own = [m for s in sorted(touched) for m in self.store.members(name, s)]
        new = change(own)
        self.store.replace_members(name, new, sorted(touched))

    def import_csv(
        self,
        name: str,
        text: str,
        *,
        tags: Sequence[str] = (),
        source: str = "",
        description: str = "",
    ) -> int:
        """Replace the universe's membership by the CSV's; returns the number of periods."""
        members = core.parse_csv(text)
        self.create(name, tags, source or "csv", description)
        self.store.replace_members(name, members)
        return len(members)

    def export_csv(self, name: str) -> str:
        return core.to_csv(self.periods(name))

    def delete(self, name: str) -> None:
        if not self.store.delete_universe(core.validate_name(name)):
            raise UniverseNotFoundError(f"no universe named {name!r}")


def _describe(u: Universe) -> dict[str, Any]:
    return {
        "name": u.name,
        "tags": list(u.tags),
        "source": u.source,
        "description": u.description,
    }
