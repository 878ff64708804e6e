"""The operator's side of the CLI: following a run through Pub/Sub, a run's state and exit code.

Kept apart from cli.py so the commands there stay thin: a run published to the stack or to
Google Cloud is followed here (the same progress bar as an embedded run), and every command
that ends on a run (run, backfill, status) turns it into the README's exit code the same way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from barlake.config import App
    from barlake.messages import IngestRequest
    from barlake.ports import RunStatus

EXIT_OK, EXIT_FAILED, EXIT_UNREACHABLE = 0, 1, 3
RECORD_WAIT_S = 15.0  # dispatch records a run within seconds of its request
POLL_S = 0.5


class FollowError(RuntimeError):
    """The run cannot be followed to its end; the message says why, in one line."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def run_state(status: RunStatus, embedded: bool) -> str:
    """complete, failed or in progress. An embedded run is over when its command returns (the
    in-process bus has delivered everything, retries included), so an incomplete one failed:
    its batch was dead-lettered or still failing when the retries ran out."""
    if status.complete:
        return "complete"
    return "failed" if embedded else "in progress"


def exit_code(status: RunStatus, embedded: bool) -> int:
    """The README's table: 0 success, 1 some symbols failed (or the run did), 3 unreachable."""
    outcomes = status.outcomes()
    if outcomes and all(o.error_kind == "unreachable" for o in outcomes):
        return EXIT_UNREACHABLE
    failed = any(o.status == "failed" for o in outcomes)
    if failed or run_state(status, embedded) == "failed":
        return EXIT_FAILED
    return EXIT_OK


def wait_for_run(app: App, run_id: str, wait_s: float = RECORD_WAIT_S) -> RunStatus | None:
    """The run, once dispatch has recorded it (None after wait_s: still pending)."""
    deadline = time.monotonic() + wait_s
    while True:
        status = app.state.get_run(run_id)
        if status is not None or time.monotonic() >= deadline:
            return status
        time.sleep(POLL_S)


def follow(
    app: App,
    request: IngestRequest,
    on_progress: Callable[[int, int], None],
    timeout_s: float,
) -> RunStatus:
    """Publish the request to the deployed (or stack) functions and wait for its run to end.

    on_progress(symbols done, symbols in the run) is called as batches are recorded."""
    topic = app.settings.ingest_requests_topic
    try:
        app.bus.publish(topic, request.to_json())
    except Exception as exc:
        message = f"cannot publish to {topic}: {_one_line(exc)}"
        raise FollowError(message, EXIT_UNREACHABLE) from None
    run_id = request.run_id or ""
    deadline = time.monotonic() + timeout_s
    status = wait_for_run(app, run_id, min(RECORD_WAIT_S, timeout_s))
    if status is None:
        raise FollowError(
            f"run {run_id} was published to {topic} but no dispatch function recorded it within "
            f"{min(RECORD_WAIT_S, timeout_s):.0f} s: is the stack up (barlake stack up)?",
            EXIT_FAILED,
        )
    while True:
        on_progress(len(status.outcomes()), status.run.symbols)
        if status.complete:
            return status
        if time.monotonic() >= deadline:
            raise FollowError(
                f"run {run_id} still in progress after {timeout_s:.0f} s "
                f"({len(status.batches)}/{len(status.run.batch_ids)} batches); "
                f"follow it: barlake status --run {run_id}",
                EXIT_FAILED,
            )
        time.sleep(POLL_S)
        status = app.state.get_run(run_id) or status


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
