"""Universe membership laws (barlake.core.universe): point-in-time answers, CSV round trips,
and edits that never rewrite the past."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from barlake.core import universe as u
from barlake.core.universe import InvalidUniverseError, Membership

D = date.fromisoformat
SYMBOLS = st.sampled_from(["AAPL", "MSFT", "BRK-B", "^GSPC", "7203.T", "EURUSD=X"])
DAYS = st.dates(min_value=date(1990, 1, 1), max_value=date(2030, 12, 31))


@st.composite
def periods(draw: st.DrawFn) -> list[Membership]:
    """Valid memberships: per symbol, sorted non-overlapping periods, ends open or closed."""
    out = []
    for symbol in draw(st.lists(SYMBOLS, unique=True, max_size=5)):
        cuts = sorted(draw(st.lists(DAYS, unique=True, min_size=0, max_size=6)))
        open_start = draw(st.booleans())
        open_end = draw(st.booleans())
        bounds: list[date | None] = [None, *cuts] if open_start else list(cuts)
        if open_end or len(bounds) % 2:
            bounds.append(None)
        for a, b in zip(bounds[::2], bounds[1::2], strict=False):
            out.append(Membership(symbol, a, b))
    return u.check(out)


@given(periods())
def test_csv_round_trip(members: list[Membership]) -> None:
    assert u.parse_csv(u.to_csv(members)) == members


@given(periods(), DAYS)
def test_members_on_a_day_are_those_whose_period_holds(
    members: list[Membership], day: date
) -> None:
    on = u.members_on(members, day)
    for m in members:
        inside = (m.start is None or m.start <= day) and (m.end is None or day < m.end)
        assert (not inside) or m.symbol in on
    assert set(on) <= {m.symbol for m in members}


@given(periods(), SYMBOLS, DAYS, DAYS)
def test_add_then_remove_leaves_the_past_alone(
    members: list[Membership], symbol: str, join: date, leave_after: date
) -> None:
    """Adding on `join` makes the symbol a member from then on; removing later ends it there;
    the answer for every day before `join` is what it was."""
    history = [d for m in members if m.symbol == symbol for d in (m.start, m.end) if d]
    assume(all(d <= join for d in history))  # add appends; earlier history is refused below
    before = {d: u.members_on(members, d) for d in (join - timedelta(days=1), D("1989-12-31"))}
    added = u.add(members, [symbol], join)
    assert symbol in u.members_on(added, join)
    leave = max(join, leave_after) + timedelta(days=1)
    removed = u.remove(added, [symbol], leave)
    assert symbol not in u.members_on(removed, leave)
    assert symbol in u.members_on(removed, leave - timedelta(days=1))
    for day, was in before.items():
        assert u.members_on(added, day) == was


def test_point_in_time_membership_has_no_survivorship_bias() -> None:
    members = u.parse_csv(
        "symbol,from,to\n"
        "# an index that lost ENRN and gained TSLA\n"
        "AAPL,,\n"
        "ENRN,1990-01-02,2001-11-29\n"
        "TSLA,2020-12-21,\n"
    )
    assert u.members_on(members, D("2000-06-30")) == ["AAPL", "ENRN"]
    assert u.members_on(members, D("2001-11-29")) == ["AAPL"]  # `to` is the first day out
    assert u.members_on(members, D("2025-06-30")) == ["AAPL", "TSLA"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("ticker\nAAPL\n", "header must name 'symbol'"),
        ("symbol,from\nAAPL,2020-13-01\n", "line 2: 'from' must be a date"),
        ("symbol\nAAPL\nA A\n", "line 3"),
        ("symbol,from,to\nAAPL,2020-01-02,2020-01-02\n", "is not after"),
        ("symbol,from,to\nAAPL,2020-01-01,2021-01-01\nAAPL,2020-06-01,\n", "overlap"),
        ("symbol\nAAPL,extra\n", "2 cells"),
    ],
)
def test_bad_csv_is_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(InvalidUniverseError, match=message):
        u.parse_csv(text)


def test_names_and_edits_refused_clearly() -> None:
    for bad in ("", "S&P", "Sp500", "-x", "a" * 65, "a/b"):
        with pytest.raises(InvalidUniverseError, match="universe name"):
            u.validate_name(bad)
    assert u.validate_name("sp500.2024_q1-x") == "sp500.2024_q1-x"
    with pytest.raises(InvalidUniverseError, match="correct history"):
        u.add([Membership("AAPL", D("2000-01-03"))], ["AAPL"], D("1999-01-04"))
    with pytest.raises(InvalidUniverseError, match="a removal must be on or after"):
        u.remove([Membership("AAPL", D("2000-01-03"))], ["AAPL"], D("1999-01-04"))
    with pytest.raises(InvalidUniverseError, match="not a current member"):
        u.remove([Membership("AAPL", None, D("2020-01-01"))], ["AAPL"], D("2021-01-01"))


def test_remove_before_the_join_day_erases_the_period() -> None:
    members = u.add([], ["TSLA"], D("2020-12-21"))
    assert u.remove(members, ["TSLA"], D("2020-12-21")) == []
    reopened = u.add(u.remove(members, ["TSLA"], D("2022-01-03")), ["TSLA"], D("2023-01-03"))
    assert reopened == [
        Membership("TSLA", D("2020-12-21"), D("2022-01-03")),
        Membership("TSLA", D("2023-01-03"), None),
    ]
