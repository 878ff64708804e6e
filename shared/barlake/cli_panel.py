"""`barlake panel build`: bring the cross-sectional panel up to date now (barlake.services.panel).

The pipeline does this by itself after every complete run; the command is for a lake built
before the panel existed, after an interrupted build, or to rebuild from nothing (`--full`).
Kept apart from cli.py as a sub-command group.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from barlake.core.panel import MANIFEST_NAME

# Not imported from barlake.cli, which imports this module (`python -m barlake.cli` would
# otherwise import a half-built cli): the shared helpers are imported when the command runs.
LakeOption = Annotated[
    str | None, typer.Option("--lake", help="Lake folder (default: $BARLAKE_LAKE_DIR or ./lake).")
]
panel_app = typer.Typer(no_args_is_help=True, help="The cross-sectional panel (panel/…).")


@panel_app.command("build")
def panel_build(
    full: Annotated[
        bool, typer.Option("--full", help="Forget the manifest: republish every symbol.")
    ] = False,
    lake: LakeOption = None,
) -> None:
    """Publish every changed symbol's rows into panel/{daily,weekly,monthly}/year=YYYY/."""
    from barlake.cli import EXIT_FAILED, fail, open_lake, out, settings
    from barlake.services.panel import PanelBusyError

    app_ = open_lake(settings(lake), existing=True)
    if full:
        app_.derived.delete(MANIFEST_NAME)
    started = time.perf_counter()
    try:
        report = app_.panel.build()
    except PanelBusyError as exc:
        fail(f"{exc} (try again later)", EXIT_FAILED)
    seconds = time.perf_counter() - started
    out.print(
        f"panel: {report.symbols} symbols, {report.changed} changed, {report.removed} removed; "
        f"{len(report.partitions)} partitions written ({report.rows:,} rows) in {seconds:.2f} s",
        highlight=False,
    )
    for name in report.partitions:
        out.print(f"  {name}", highlight=False)
