"""Issue #9's cases, each through the real embedded pipeline with replayed Yahoo answers.

The truth is Yahoo's ^GSPC daily history 1999-01-04 .. 2018-12-31 (5,031 sessions, shipped
with the `arch` package, a test dependency). Each test writes the provider's successive answers
as yfinance CSV recordings (replay_provider.py), runs real ingests / audits over them
(dispatch → ingest → weekly + profile, SQLite state, local buckets) and asserts the stored
history bar for bar against the provider's latest full truth (or, for a suspect answer,
unchanged and recorded). docs/data-quality.md states each rule.
"""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from barlake.adapters.replay_provider import ReplayProvider
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.layout import symbol_key
from barlake.core.merge import bars_equal
from barlake.core.schema import BAR_SCHEMA
from barlake.messages import IngestRequest
from barlake.ports import RunStatus, SymbolOutcome
from barlake.services.audit import audit_request

SYM = "^GSPC"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
_ids = itertools.count()

Row = dict[str, Any]


@pytest.fixture(scope="module")
def truth() -> list[Row]:
    from arch.data import sp500

    frame = sp500.load()
    rows = [
        {
            "symbol": SYM,
            "date": day.date(),
            "open": float(r["Open"]),
            "high": float(r["High"]),
            "low": float(r["Low"]),
            "close": float(r["Close"]),
            "adj_close": float(r["Adj Close"]),
            "volume": int(r["Volume"]),
        }
        for day, r in frame.iterrows()
    ]
    assert len(rows) == 5031
    return rows


def table(rows: list[Row]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=BAR_SCHEMA)


def scaled(
    rows: list[Row], price: float, volume: float = 1.0, adj: float | None = None
) -> list[Row]:
    """Every price × price (adj_close × adj, default price), volume × volume (rounded)."""
    adj = price if adj is None else adj
    return [
        {
            **r,
            **{c: r[c] * price for c in ("open", "high", "low", "close")},
            "adj_close": r["adj_close"] * adj,
            "volume": round(r["volume"] * volume),
        }
        for r in rows
    ]


def fat_finger(row: Row) -> Row:
    return {**row, **{c: row[c] * 1000 for c in ("open", "high", "low", "close", "adj_close")}}


class Yahoo:
    """The provider's successive answers, as yfinance CSV recordings replayed by ReplayProvider."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def answer(
        self, rows: list[Row], actions: dict[date, tuple[float, float]] | None = None
    ) -> str:
        """Record the next answer: rows (None prices allowed) and {day: (dividend, split)}."""
        self.count += 1
        name = f"{self.count:02d}"
        folder = self.root / name
        folder.mkdir(parents=True)
        actions = actions or {}
        lines = ["Date,Open,High,Low,Close,Adj Close,Volume,Dividends,Stock Splits"]
        for r in rows:
            div, split = actions.get(r["date"], (0.0, 0.0))
            values = [r[c] for c in ("open", "high", "low", "close", "adj_close")]
            text = ["" if v is None else repr(float(v)) for v in values]
            lines.append(
                ",".join([r["date"].isoformat(), *text, str(r["volume"]), repr(div), repr(split)])
            )
        (folder / f"{symbol_key(SYM)}.csv").write_text("\n".join(lines) + "\n")
        return name


@pytest.fixture
def yahoo(tmp_path: Path) -> Yahoo:
    return Yahoo(tmp_path / "replay")


def lake(tmp_path: Path, yahoo: Yahoo) -> tuple[App, ReplayProvider]:
    provider = ReplayProvider(yahoo.root)
    app = build_embedded(
        Settings.from_env({}, lake_dir=str(tmp_path / "lake")), provider=provider, clock=lambda: NOW
    )
    return app, provider


def ingest(app: App, provider: ReplayProvider, recording: str) -> SymbolOutcome:
    provider.use(recording)
    request = IngestRequest(kind="manual", run_id=f"run-{next(_ids)}", symbols=(SYM,))
    return only(run_embedded(app, request))


def audit(app: App, provider: ReplayProvider, recording: str) -> SymbolOutcome:
    provider.use(recording)
    return only(run_embedded(app, audit_request([SYM], f"audit-{next(_ids)}")))


def only(status: RunStatus) -> SymbolOutcome:
    (o,) = status.outcomes()
    return o


def stored(app: App) -> pa.Table:
    return app.read.bars(SYM).table


def assert_lake(app: App, rows: list[Row]) -> None:
    got = stored(app)
    want = table(rows)
    if not bars_equal(got, want):
        g, w = got.to_pylist(), want.to_pylist()
        diff = [(a, b) for a, b in zip(g, w, strict=False) if a != b][:3]
        raise AssertionError(f"lake has {len(g)} rows, truth {len(w)}; first differences {diff}")


def profile(app: App) -> dict[str, Any]:
    return app.read.profile(SYM)


def reasons(app: App) -> dict[str, list[date]]:
    out: dict[str, list[date]] = {}
    for q in app.state.quarantine(SYM):
        out.setdefault(q.reason, []).append(q.date)
    return out


# --------------------------------------------------------------- 1. history never shrinks


@pytest.mark.parametrize("answer_rows", [1, 500])
def test_a_truncated_full_refetch_is_suspect_and_changes_nothing(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row], answer_rows: int
) -> None:
    """A 2:1 split shows in the overlap; the full refetch comes back cut down to its last
    `answer_rows` rows (Yahoo throttling). Before: replace_history(5,000 stored, 1 row) left 1."""
    first = yahoo.answer(truth[:5000])
    split = scaled(truth, 0.5, 2.0)
    cut = yahoo.answer(split[-answer_rows:] if answer_rows > 1 else split[4995:5000])
    full = yahoo.answer(split)
    app, provider = lake(tmp_path, yahoo)
    assert ingest(app, provider, first).status == "ok"
    before = stored(app)

    o = ingest(app, provider, cut)
    assert (o.status, o.error_kind) == ("failed", "transient")
    assert "suspect answer, nothing applied" in (o.error or "")
    assert bars_equal(stored(app), before)  # unchanged: 5,000 rows
    suspect = app.state.get_audits([SYM])[SYM].suspect
    assert suspect is not None and suspect["stored_rows"] == 5000

    o = ingest(app, provider, full)  # the next run gets the whole history again
    assert o.status == "restated" and "split" in o.restatement["kinds"]
    assert_lake(app, split)
    assert app.state.get_audits([SYM])[SYM].suspect is None


def test_a_refused_row_1000_sessions_back_keeps_the_good_stored_day(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth[:5020])
    split = scaled(truth, 0.5, 2.0)
    bad = [dict(r) for r in split]
    bad[4020]["close"] = None  # the refetch's copy of a day 1,000 sessions back is refused
    restated = yahoo.answer(bad)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    o = ingest(app, provider, restated)
    assert o.status == "restated" and o.restatement["kinds"] == ["split", "missing"]
    assert o.restatement["evidence"]["missing_dates"] == [truth[4020]["date"].isoformat()]
    assert_lake(app, split)  # the stored day is kept, rescaled 2:1: exactly the provider's truth
    assert reasons(app) == {"missing_value": [truth[4020]["date"]]}


def test_a_provider_that_purges_its_oldest_100_days_leaves_them_in_the_lake(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth)
    restated = scaled(truth, 1.0, 1.0, adj=0.99)  # a dividend rescales adj_close everywhere
    purged = yahoo.answer(restated[100:])
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)

    o = ingest(app, provider, purged)  # first sight: suspect, nothing applied
    assert o.status == "failed" and "starts at 1999-05-27" in (o.error or "")
    assert_lake(app, truth)
    o = ingest(app, provider, purged)  # another run, the same start: a genuine purge
    assert o.status == "restated"
    assert o.restatement["kinds"] == ["dividend", "provider_purge"]
    got = stored(app).to_pylist()
    assert len(got) == 5031
    assert bars_equal(table(got[100:]), table(restated[100:]))
    for kept, want in zip(got[:100], restated[:100], strict=True):  # rescaled by the factor
        assert {k: kept[k] for k in ("date", "open", "close", "volume")} == {
            k: want[k] for k in ("date", "open", "close", "volume")
        }
        assert kept["adj_close"] == pytest.approx(want["adj_close"], rel=1e-12)
    p = profile(app)
    assert p["provider_purged_before"] == "1999-05-27" and p["rows"] == 5031


# --------------------------------------------------------------- 2. the deep audit


def test_a_split_yahoo_adjusts_late_is_healed_and_flagged_meanwhile(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    """A 10:1 split on session 4,991: Yahoo first serves the days before it unadjusted (raw
    prices, a step at the split), adjusting them days later. Before: 4,991 rows stayed at the
    old scale forever, the profile saw no jump and --adjust none multiplied by 10 again."""
    d = truth[4991]["date"]
    raw = scaled(truth[:4991], 10.0, 0.1) + truth[4991:]
    unadjusted = yahoo.answer(raw, {d: (0.0, 10.0)})
    adjusted = yahoo.answer(truth, {d: (0.0, 10.0)})
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, unadjusted)
    assert_lake(app, raw)
    p = profile(app)
    assert [u["date"] for u in p["unadjusted_splits"]] == [d.isoformat()]
    assert [j["date"] for j in p["jumps"]] == [d.isoformat()]
    none = app.read.bars(SYM, adjust="none").table
    assert bars_equal(none, table(raw).cast(none.schema))  # nothing undone: already raw

    o = ingest(app, provider, adjusted)  # the daily run, once Yahoo has adjusted
    assert o.status == "restated" and o.restatement["kinds"][0] == "split"
    assert o.restatement["evidence"]["split_days"] == 4991
    assert_lake(app, truth)
    p = profile(app)
    assert p["unadjusted_splits"] == [] and p["jumps"] == []
    none = app.read.bars(SYM, adjust="none").table.to_pylist()
    assert none[4990]["close"] == pytest.approx(truth[4990]["close"] * 10)
    assert none[4991]["close"] == truth[4991]["close"]


def test_an_inferred_split_gives_way_to_the_provider_s_event_arriving_later(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    """Yahoo rescales the history for a 10:1 split before it lists the split event, and its
    answer lacks the split's first session: the audit infers the split on the first session it
    answered after the step (the earliest day the split can have taken effect). The event then
    arrives in a daily fetch, dated on the real first session, a day earlier. Before: both
    split actions were kept and `--adjust none` multiplied the days before the split by 100."""
    rows = truth[:4000]
    s = 3997  # inside the last answer's 5-session overlap
    adjusted = scaled(rows[:s], 0.1, 10.0) + rows[s:]
    first = yahoo.answer(rows)
    rescaled = yahoo.answer(adjusted[:s] + adjusted[s + 1 :])  # no event; session s missing
    with_event = yahoo.answer(adjusted, {rows[s]["date"]: (0.0, 10.0)})
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    o = audit(app, provider, rescaled)
    assert o.status == "restated" and o.restatement["evidence"]["split_ratios"] == ["10:1"]
    inferred = [a["date"] for a in app.read.actions(SYM).to_pylist() if a["kind"] == "split"]
    assert inferred == [rows[s + 1]["date"]]
    ingest(app, provider, with_event)
    splits = [a for a in app.read.actions(SYM).to_pylist() if a["kind"] == "split"]
    assert [(a["date"], a["value"]) for a in splits] == [(rows[s]["date"], 10.0)]
    assert_lake(app, adjusted)
    none = app.read.bars(SYM, adjust="none").table.to_pylist()
    assert none[s - 1]["close"] == pytest.approx(truth[s - 1]["close"])
    assert none[s]["close"] == pytest.approx(truth[s]["close"])


def test_a_close_revised_300_sessions_back_is_applied_once_confirmed(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth)
    revised = [dict(r) for r in truth]
    i = 5031 - 300
    revised[i]["close"] *= 1.01
    revised[i]["high"] = max(revised[i]["high"], revised[i]["close"])
    later = yahoo.answer(revised)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    assert ingest(app, provider, later).status == "unchanged"  # the overlap cannot see it

    o = audit(app, provider, later)
    assert o.status == "unchanged"  # found, recorded, pending: not applied on one answer
    record = app.state.get_audits([SYM])[SYM]
    assert list(record.pending) == [truth[i]["date"].isoformat()]
    assert record.differences["kinds"] == ["close_revision"]
    assert_lake(app, truth)
    assert profile(app)["pending_revision_count"] == 1

    o = audit(app, provider, later)  # a later answer agrees: confirmed, applied
    assert o.status == "restated" and o.restatement["kinds"] == ["close_revision"]
    assert_lake(app, revised)
    record = app.state.get_audits([SYM])[SYM]
    assert record.pending == {} and record.verified_at == NOW


def test_a_volume_revised_20_sessions_back_is_healed_by_the_audit(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth)
    revised = [dict(r) for r in truth]
    revised[5011]["volume"] += 12_345
    later = yahoo.answer(revised)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    assert ingest(app, provider, later).status == "unchanged"
    o = audit(app, provider, later)
    assert o.status == "restated" and o.restatement["kinds"] == ["volume_revision"]
    assert_lake(app, revised)
    assert profile(app)["verified_at"] == NOW.isoformat()
    from werkzeug.test import Client

    from barlake.api.app import build_api

    (entry,) = Client(build_api(app=app)).get("/v1/symbols").get_json()["symbols"]
    assert (entry["symbol"], entry["verified_at"], entry["pending_revisions"]) == (
        SYM,
        NOW.isoformat(),
        0,
    )


def test_sessions_yahoo_restores_later_are_refilled_by_the_audit(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    holes = {4000, 4500, 5000}
    first = yahoo.answer([r for i, r in enumerate(truth) if i not in holes])
    restored = yahoo.answer(truth)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    assert profile(app)["gap_count"] == 3
    ingest(app, provider, restored)
    assert profile(app)["gap_count"] == 3  # older than the overlap: the daily run cannot see it
    o = audit(app, provider, restored)
    assert o.status == "restated" and o.restatement["kinds"] == ["restored_session"]
    assert_lake(app, truth)
    assert profile(app)["gap_count"] == 0


# --------------------------------------------------------------- 3. plausibility


def weekly_high(app: App) -> float:
    return max(app.read.bars(SYM, "1wk").table.column("high").to_pylist())


def test_a_fat_finger_bar_inside_the_overlap_never_overwrites_the_good_stored_bar(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth[:5029])
    bad = [dict(r) for r in truth]
    bad[5027] = fat_finger(bad[5027])
    later = yahoo.answer(bad)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    o = ingest(app, provider, later)
    assert o.status == "ok" and o.restatement is None and o.rows_quarantined == 1
    assert_lake(app, truth)  # 5,031 rows: the stored good bar stays, the new days arrive
    (q,) = app.state.quarantine(SYM)
    assert (q.reason, q.date) == ("outlier", truth[5027]["date"])
    assert q.row["evidence"]["factor"] > 900
    assert weekly_high(app) < 3000


def test_a_fat_finger_bar_outside_the_overlap_is_quarantined_then_filled(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    first = yahoo.answer(truth[:5020])
    bad = [dict(r) for r in truth]
    bad[5025] = fat_finger(bad[5025])
    later = yahoo.answer(bad)
    fixed = yahoo.answer(truth)
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, first)
    o = ingest(app, provider, later)
    assert o.status == "ok" and o.rows_quarantined == 1
    assert_lake(app, truth[:5025] + truth[5026:])
    assert weekly_high(app) < 3000  # before: a weekly high of 2,795,580
    assert reasons(app) == {"outlier": [truth[5025]["date"]]}
    ingest(app, provider, fixed)  # Yahoo corrects it; the day is inside the next overlap
    assert_lake(app, truth)


def test_a_fat_finger_bar_deep_in_a_new_history_is_quarantined(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    bad = [dict(r) for r in truth]
    bad[2000] = fat_finger(bad[2000])
    answer = yahoo.answer(bad)
    app, provider = lake(tmp_path, yahoo)
    o = ingest(app, provider, answer)
    assert o.rows_quarantined == 1
    assert_lake(app, truth[:2000] + truth[2001:])


def test_rows_on_days_the_exchange_was_closed_are_quarantined(
    tmp_path: Path, yahoo: Yahoo, truth: list[Row]
) -> None:
    by_day = {r["date"]: r for r in truth}
    closed = [date(2001, 9, 12), date(2018, 7, 4), date(2018, 7, 7)]  # 9/11, a holiday, a Sat
    extra = [{**by_day[date(2018, 7, 3)], "date": d, "volume": 1_000_000} for d in closed]
    answer = yahoo.answer(sorted(truth + extra, key=lambda r: r["date"]))
    app, provider = lake(tmp_path, yahoo)
    ingest(app, provider, answer)
    assert_lake(app, truth)
    assert reasons(app) == {"not_a_session": closed}
    assert profile(app)["unscheduled_sessions"] == 0


# --------------------------------------------------------------- 4. splits in every view


def test_the_demo_s_goog_and_amzn_unadjusted_views_are_the_printed_prices(tmp_path: Path) -> None:
    from werkzeug.test import Client

    from barlake.api.app import build_api
    from barlake.demo import run_demo

    app, _, checks = run_demo(tmp_path / "lake")
    assert all(c.matches_latest for c in checks)
    printed = {"GOOG": 1367.3699951171875, "AMZN": 1898.010009765625}  # 2020-01-02, pre-split
    api = Client(build_api(app=app))
    for symbol, close in printed.items():
        split = app.read.bars(symbol).table.to_pylist()[0]
        none = app.read.bars(symbol, adjust="none").table.to_pylist()[0]
        assert split["close"] == pytest.approx(close / 20, rel=1e-6)  # 68.37, 94.90
        assert none["close"] == pytest.approx(close, rel=1e-6)
        body = api.get(f"/v1/bars/{symbol}?adjust=none").get_json()
        assert body["bars"][0]["close"] == pytest.approx(close, rel=1e-6)
    # And the inferred split is an action of the stored object, dated the day after.
    from barlake.core.codec import decode_daily
    from barlake.core.layout import daily_name

    obj = app.raw.read(daily_name("GOOG"))
    assert obj is not None
    _, actions = decode_daily(obj.data)
    assert actions.to_pylist() == [
        {"symbol": "GOOG", "date": date(2020, 1, 3), "kind": "split", "value": 20.0}
    ]
