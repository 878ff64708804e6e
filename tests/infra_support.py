"""Helpers shared by the infra and packaging tests: archives, the per-function probe chain,
Terraform parsing, and finding terraform/checkov.

Kept out of conftest.py on purpose (the infra tests own these). Results are cached per test
session: the archives are built once and the probe chain runs once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from barlake import package
from barlake.config import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
PROBE = Path(__file__).with_name("infra_probe.py")
DEMO = ROOT / "shared" / "barlake" / "demo_data"


def require(tool: str, reason: str) -> None:
    """Skip with the reason, or fail under BARLAKE_REQUIRE_EMULATORS=1 (CI)."""
    if os.environ.get("BARLAKE_REQUIRE_EMULATORS") == "1":
        pytest.fail(f"BARLAKE_REQUIRE_EMULATORS=1 but {tool} is unavailable: {reason}")
    pytest.skip(f"{tool} unavailable: {reason}")


def shared_tmp(factory: pytest.TempPathFactory) -> Path:
    """One folder per test session for the archives and the probe chain (cached on it)."""
    path = factory.getbasetemp() / "infra-shared"
    path.mkdir(exist_ok=True)
    return path


# --------------------------------------------------------------------------- archives


@functools.cache
def archives_dir(tmp: Path) -> Path:
    from barlake.api.dashboard import vendor_file

    if vendor_file() is None:  # the api archive ships the dashboard's chart library
        require("npm ci", "node_modules/lightweight-charts is missing (run `npm ci`)")
    out = tmp / "dist"
    for name in FUNCTIONS:
        package.build(name, out)
    return out


@functools.cache
def unpacked(tmp: Path, name: str) -> Path:
    target = tmp / "unpacked" / name
    with zipfile.ZipFile(archives_dir(tmp) / f"{name}.zip") as zf:
        zf.extractall(target)
    return target


# --------------------------------------------------------------------------- probe chain


def requirements(tmp: Path, name: str) -> set[str]:
    """Distribution names in the archive's requirements.txt (normalised)."""
    text = (unpacked(tmp, name) / "requirements.txt").read_text()
    return {
        re.split(r"[=<>~!; \[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
        for line in text.splitlines()
        if line.strip() and not line.startswith("#")
    }


def probe(tmp: Path, name: str, lake: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    given = {**given, "allowed": sorted(requirements(tmp, name))}
    done = subprocess.run(
        [sys.executable, str(PROBE), str(unpacked(tmp, name)), name, str(lake), json.dumps(given)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"probe {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@functools.cache
def chain(tmp: Path) -> dict[str, list[dict[str, Any]]]:
    """The pipeline, one stage per function, each from its own archive on one embedded lake:
    dispatch → ingest → weekly and profile, twice (recording 1 creates the objects, recording 2
    replaces them); a third ingest whose finalize events are lost (a crash), healed by the
    repair sweep (dispatch); then the API reads. Returns each function's probe reports."""
    lake = tmp / "lake"
    rec1 = str(DEMO / "1-recorded-2021-11-22")
    rec2 = str(DEMO / "2-recorded-2025-08-15")
    day1, day2 = "2021-11-23T12:00:00+00:00", "2025-08-16T12:00:00+00:00"
    reports: dict[str, list[dict[str, Any]]] = {name: [] for name in FUNCTIONS}

    def run(name: str, message: Any, clock: str, replay: str) -> dict[str, Any]:
        report = probe(tmp, name, lake, {"message": message, "clock": clock, "replay": replay})
        reports[name].append(report)
        return report

    for run_id, clock, rec in (("probe-1", day1, rec1), ("probe-2", day2, rec2)):
        request = {"version": 1, "kind": "backfill", "run_id": run_id, "symbols": ["AAPL"]}
        finalized: list[dict[str, Any]] = []
        completed: list[dict[str, Any]] = []
        for batch in run("dispatch", request, clock, rec)["published"]:
            for message in run("ingest", batch, clock, rec)["published"]:
                (finalized if "generation" in message else completed).append(message)
        assert finalized, f"{run_id}: ingest wrote no daily object"
        assert completed, f"{run_id}: ingest did not announce the run complete"
        for event in finalized:  # what the raw bucket's finalize trigger delivers
            run("weekly", event, clock, rec)
            run("profile", event, clock, rec)
        for message in completed:  # what the run-completed push subscription delivers
            run("panel", message, clock, rec)
    # The scheduled audit tick: ingest dispatches the day's slice (AAPL) as an audit run.
    for batch in run("ingest", {"version": 1, "kind": "audit"}, day2, rec2)["published"]:
        run("ingest", batch, day2, rec2)
    # MSFT built from its intraday recording (the last bar set aside), then completed by the
    # final one with its finalize events lost (a crash): the repair sweep replaces its outputs
    for run_id, clock, rec in (("probe-3", day2, rec1), ("probe-4", day2, rec2)):
        request = {"version": 1, "kind": "backfill", "run_id": run_id, "symbols": ["MSFT"]}
        for batch in run("dispatch", request, clock, rec)["published"]:
            for event in run("ingest", batch, clock, rec)["published"]:
                if run_id == "probe-3" and "generation" in event:
                    run("weekly", event, clock, rec)
                    run("profile", event, clock, rec)
    swept = run("dispatch", {"version": 1, "kind": "repair"}, day2, rec2)
    assert swept["result"] == "repair", swept
    run("api", {"symbol": "AAPL", "run_id": "probe-2"}, day2, rec2)
    return reports


def operations(tmp: Path) -> dict[str, set[tuple[str, str]]]:
    """Function → {(resource, operation)} over every probe of that function."""
    return {
        name: {tuple(op) for report in reports for op in report["ops"]}  # type: ignore[misc]
        for name, reports in chain(tmp).items()
    }


# --------------------------------------------------------------------------- terraform


def load_hcl(infra: Path = INFRA) -> dict[str, list[dict[str, Any]]]:
    """Every .tf file under infra (not modules' caches), merged per top-level block type."""
    import hcl2
    from hcl2 import SerializationOptions

    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    merged: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(infra.glob("*.tf")):
        with path.open() as fh:
            parsed = hcl2.load(fh, serialization_options=options)
        for key, blocks in parsed.items():
            if key.startswith("__"):
                continue
            merged.setdefault(key, []).extend(blocks if isinstance(blocks, list) else [blocks])
    return merged


def resources(hcl: Mapping[str, Any], rtype: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in hcl.get("resource", []):
        for name, body in block.get(rtype, {}).items():
            out[name] = body
    return out


def all_resources(hcl: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for block in hcl.get("resource", []):
        for rtype, named in block.items():
            for name, body in named.items():
                yield rtype, name, body


def locals_(hcl: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for block in hcl.get("locals", []):
        out.update(block)
    return out


def variables(hcl: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for block in hcl.get("variable", []):
        out.update(block)
    return out


_MERGE = re.compile(r"^\$\{merge\((?P<args>[\w.\s,]+)\)\}$")
_LOCAL = re.compile(r"^\$\{(?P<ref>local\.\w+)\}$")


def eval_map(expr: Any, local: Mapping[str, Any]) -> dict[str, Any]:
    """A map written as a literal, `local.x` or `merge(local.a, local.b, …)`. Anything else
    is refused loudly: the wiring tests must be able to read every function's environment."""
    if isinstance(expr, dict):
        return dict(expr)
    if isinstance(expr, str):
        if m := _LOCAL.match(expr):
            return eval_map(local[m["ref"].removeprefix("local.")], local)
        if m := _MERGE.match(expr):
            out: dict[str, Any] = {}
            for ref in (a.strip() for a in m["args"].split(",")):
                if not ref.startswith("local."):
                    break
                out.update(eval_map(local[ref.removeprefix("local.")], local))
            else:
                return out
    raise AssertionError(
        f"cannot evaluate {expr!r}: keep function maps as literals, local.x or merge(local.…)"
    )


def copy_infra(tmp: Path) -> Path:
    target = tmp / "infra"
    shutil.copytree(INFRA, target, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    return target


# --------------------------------------------------------------------------- tools


def terraform() -> str:
    path = shutil.which("terraform")
    if path is None:
        require("terraform", "not on PATH (install Terraform >= 1.9)")
    assert path is not None
    return path
