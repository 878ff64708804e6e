"""`barlake market [--exchange XNYS] [--at INSTANT | --date D]`: is the market open now?

Registered from cli.py with one line. No lake needed: the answer comes from exchange_calendars
(barlake.core.market). Exit codes are cli.py's: 2 bad input (an unknown exchange, a bad
instant), 4 outside the calendar's range.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer


def market(
    exchange: Annotated[
        str, typer.Option(help="exchange_calendars code (XNYS, XLON, XTKS…) or ALWAYS.")
    ] = "XNYS",
    at: Annotated[
        str | None, typer.Option(help="An instant with its offset (2025-11-28T15:00:00Z).")
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="A day (YYYY-MM-DD): its status at 12:00 local.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Market status: open / closed (weekend, holiday, before open, after close) / break, early
    close, this session's open and close, the next open and close."""
    from barlake.cli import EXIT_NOT_FOUND, fail, out, parse_date
    from barlake.core import market as m

    if at and date:
        fail("give --at or --date, not both")
    exchange = exchange.upper()
    try:
        if date:
            day = parse_date(date, "--date")
            assert day is not None
            tz = "UTC" if exchange == m.ALWAYS else m._times(exchange).tz
            instant = datetime.combine(day, time(12), ZoneInfo(tz))
        elif at:
            try:
                instant = datetime.fromisoformat(at.replace("z", "Z").replace("Z", "+00:00"))
            except ValueError:
                fail(f"--at must be a date-time like 2025-11-28T15:00:00Z, got {at!r}")
            if instant.tzinfo is None:
                fail(f"--at needs an offset (Z or +HH:MM), got {at!r}")
        else:
            instant = datetime.now(UTC)
        status = m.status(exchange, instant)
    except m.UnknownExchangeError as exc:
        fail(str(exc))
    except ValueError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    body = status.to_json()
    if as_json:
        out.print_json(json.dumps(body))
        return
    tz = ZoneInfo(status.timezone)

    def local(value: datetime | None) -> str:
        return value.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z") if value else "-"

    state = status.state if status.state == status.reason else f"{status.state} ({status.reason})"
    early = " · early close" if status.early_close else ""
    out.print(f"{status.exchange} at {local(status.at)}: [bold]{state}[/]{early}")
    if status.session:
        opens, closes = local(status.session_open), local(status.session_close)
        out.print(f"session {status.session}: {opens} → {closes}")
    out.print(f"next open {local(status.next_open)} · next close {local(status.next_close)}")
