"""Universe store on Firestore, with exactly the behaviour of the SQLite adapter.

    {prefix}universes/{name}                      tags, source, description
    {prefix}universes/{name}/members/{symbol}     one per symbol: its periods

A symbol's periods live in one small document (as sorted JSON text, `[[from, to], …]`, '' for
open), so membership reads are one subcollection scan and a point-in-time query is answered in
Python — no composite index. Writes are batched 500 to a commit; a replace of thousands of
symbols is not one transaction (Firestore caps one at 500 writes), but each symbol's periods
change in one write, and an import that dies halfway is healed by running it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any

from google.cloud import firestore

from barlake.adapters.firestore_state import _chunks, _transient, doc_id
from barlake.core.universe import Membership, Universe


class FirestoreUniverseStore:
    def __init__(
        self,
        client: firestore.Client | None = None,
        *,
        project: str | None = None,
        database: str = "(default)",
        prefix: str = "",
    ) -> None:
        self.client = client or firestore.Client(project=project, database=database)
        self.prefix = prefix

    def _doc(self, name: str) -> firestore.DocumentReference:
        return self.client.collection(f"{self.prefix}universes").document(doc_id(name))

    def _members(self, name: str) -> firestore.CollectionReference:
        return self._doc(name).collection("members")

    @_transient
    def put_universe(self, universe: Universe) -> None:
        self._doc(universe.name).set(
            {
                "name": universe.name,
                "tags": sorted(set(universe.tags)),
                "source": universe.source,
                "description": universe.description,
            }
        )

    @staticmethod
    def _universe(data: dict[str, Any]) -> Universe:
        return Universe(data["name"], tuple(data["tags"]), data["source"], data["description"])

    @_transient
    def get_universe(self, name: str) -> Universe | None:
        snap = self._doc(name).get()
        return self._universe(snap.to_dict() or {}) if snap.exists else None

    @_transient
    def list_universes(self) -> list[Universe]:
        docs = self.client.collection(f"{self.prefix}universes").stream()
        return sorted((self._universe(d.to_dict() or {}) for d in docs), key=lambda u: u.name)

    @_transient
    def delete_universe(self, name: str) -> bool:
        existed = self._doc(name).get().exists
        self._write(name, {r.id: None for r in self._members(name).list_documents()})
        self._doc(name).delete()
        return bool(existed)

    def _write(self, name: str, docs: dict[str, dict[str, Any] | None]) -> None:
        """Set (or, for None, delete) member documents, 500 to a commit."""
        for chunk in _chunks(list(docs.items())):
            batch = self.client.batch()
            for key, body in chunk:
                ref = self._members(name).document(key)
                if body is None:
                    batch.delete(ref)
                else:
                    batch.set(ref, body)
            batch.commit()

    @_transient
    def replace_members(
        self, name: str, members: Sequence[Membership], symbols: Sequence[str] | None = None
    ) -> None:
        periods: dict[str, list[list[str]]] = {}
        for m in sorted(members, key=lambda m: (m.symbol, m.start or date.min)):
            periods.setdefault(m.symbol, []).append([_s(m.start), _s(m.end)])
        docs: dict[str, dict[str, Any] | None] = {}
        if symbols is None:
            docs.update({r.id: None for r in self._members(name).list_documents()})
        else:
            docs.update({doc_id(s): None for s in symbols})
        for symbol, spans in periods.items():
            docs[doc_id(symbol)] = {"symbol": symbol, "periods": json.dumps(spans)}
        self._write(name, docs)

    @_transient
    def members(self, name: str, symbol: str | None = None) -> list[Membership]:
        out = []
        if symbol is None:
            snaps: Any = self._members(name).stream()
        else:  # one document read
            snaps = [s for s in [self._members(name).document(doc_id(symbol)).get()] if s.exists]
        for snap in snaps:
            data = snap.to_dict() or {}
            for start, end in json.loads(data["periods"]):
                out.append(Membership(data["symbol"], _d(start), _d(end)))
        return sorted(out, key=lambda m: (m.symbol, m.start or date.min))


def _d(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _s(value: date | None) -> str:
    return value.isoformat() if value else ""
