"""Function archives: reproducible, self-sufficient, and installing only what each imports.

Every function is run from its own unpacked archive in a fresh interpreter where only the
packages of its requirements.txt can be imported (tests/infra_probe.py), so a missing
requirement fails the run; and every direct dependency kept in it must be imported there or
needed by another kept package (so the API never installs yfinance).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest

import infra_support as infra
from barlake import package
from barlake.config import FUNCTIONS

ROOT = Path(__file__).resolve().parents[1]


def _name(line: str) -> str:
    return re.split(r"[=<>~!; \[]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirements(tmp: Path, name: str) -> set[str]:
    return infra.requirements(tmp, name)


def _lock_graph() -> dict[str, set[str]]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {p["name"]: {d["name"] for d in p.get("dependencies", [])} for p in lock["package"]}


def _direct_dependencies(name: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in package.EXTRAS[name]:
        deps += project["optional-dependencies"][extra]
    return {_name(d) for d in deps}


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return infra.shared_tmp(tmp_path_factory)


def test_same_input_gives_byte_identical_archives(tmp_path):
    from barlake.api.dashboard import vendor_file

    if vendor_file() is None:  # the api archive ships the dashboard's chart library
        infra.require("npm ci", "node_modules/lightweight-charts is missing (run `npm ci`)")
    first = {n: package.build(n, tmp_path / "a") for n in FUNCTIONS}
    # New modification times on every source file must not leak into the archives.
    later = time.time() + 86400
    for path in [*(ROOT / "shared" / "barlake").rglob("*.py"), *(ROOT / "functions").rglob("*")]:
        os.utime(path, (later, later))
    second = {n: package.build(n, tmp_path / "b") for n in FUNCTIONS}
    for name in FUNCTIONS:
        assert first[name].path.read_bytes() == second[name].path.read_bytes(), name
        assert first[name].sha256 == second[name].sha256


def test_archive_layout_is_what_cloud_functions_builds(tmp):
    for name in FUNCTIONS:
        with zipfile.ZipFile(infra.archives_dir(tmp) / f"{name}.zip") as zf:
            infos = zf.infolist()
            names = [i.filename for i in infos]
            assert names == sorted(names)
            assert {"main.py", "requirements.txt", "barlake/__init__.py"} <= set(names)
            assert zf.read("main.py") == (ROOT / "functions" / name / "main.py").read_bytes()
            assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
            assert not [n for n in names if n.startswith("barlake/demo_data/")]
            assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
            assert {i.external_attr >> 16 for i in infos} == {0o100644}


def test_each_function_runs_from_its_archive_alone(tmp):
    for name, reports in infra.chain(tmp).items():
        for report in reports:
            assert report["barlake"].startswith(str(infra.unpacked(tmp, name))), name
            assert report["result"] is not None, (name, report)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_requirements_hold_every_import_and_nothing_unused(tmp, name):
    required = _requirements(tmp, name)
    # The probe ran with nothing outside `required` importable (or it would have failed).
    imported = {m for report in infra.chain(tmp)[name] for m in report["modules"]}
    assert imported <= required, f"{name} imports packages its archive does not install"
    graph = _lock_graph()
    needed_by_others = {d for pkg in required for d in graph.get(pkg, ())}
    unused = {
        d
        for d in _direct_dependencies(name) & required
        if d not in imported and d not in needed_by_others
    }
    assert unused == set(), f"{name} installs direct dependencies it never imports"


def test_heavy_packages_only_where_used(tmp):
    assert "yfinance" in _requirements(tmp, "ingest")
    for name in ("dispatch", "weekly", "profile", "api"):
        assert "yfinance" not in _requirements(tmp, name), name
    for name in FUNCTIONS:
        assert not {"typer", "rich", "pytest", "ruff"} & _requirements(tmp, name), name


def test_requirements_are_pinned_from_the_lockfile(tmp):
    lock: dict[str, set[str]] = {}
    for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]:
        lock.setdefault(p["name"], set()).add(p.get("version", ""))
    for name in FUNCTIONS:
        text = (infra.unpacked(tmp, name) / "requirements.txt").read_text()
        pins = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert pins, name
        for line in pins:
            pkg, _, rest = line.partition("==")
            version = rest.split(";")[0].strip()
            assert version in lock.get(pkg, set()), f"{name}: {line!r} is not a locked version"


def test_unknown_function_is_a_one_line_error():
    done = subprocess.run(
        [sys.executable, "-m", "barlake.package", "nosuch", "--out", "/tmp/unused"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        == "error: unknown function 'nosuch' (known: " + ", ".join(FUNCTIONS) + ")"
    )


def test_the_api_archive_carries_the_dashboard_and_its_chart_library(tmp):
    """The chart library comes from node_modules (`npm ci`), not from the repository."""
    from barlake.api.dashboard import VENDOR_LICENSE, VENDOR_SOURCE

    assert not (ROOT / "shared/barlake/api/dashboard_assets/vendor").exists()
    vendor = "barlake/api/dashboard_assets/vendor"
    with zipfile.ZipFile(infra.archives_dir(tmp) / "api.zip") as zf:
        names = set(zf.namelist())
        for page in ("index.html", "dashboard.js", "dashboard.css"):
            assert f"barlake/api/dashboard_assets/{page}" in names
        assert zf.read(f"{vendor}/lightweight-charts.js") == (ROOT / VENDOR_SOURCE).read_bytes()
        assert b"Apache License" in zf.read(f"{vendor}/LICENSE")
        assert zf.read(f"{vendor}/LICENSE") == (ROOT / VENDOR_LICENSE).read_bytes()
    for name in FUNCTIONS:
        if name != "api":
            with zipfile.ZipFile(infra.archives_dir(tmp) / f"{name}.zip") as zf:
                assert not [n for n in zf.namelist() if "/vendor/" in n], name


def test_packaging_the_api_without_npm_ci_says_so(tmp_path):
    root = tmp_path / "checkout"
    (root / "functions" / "api").mkdir(parents=True)
    (root / "functions" / "api" / "main.py").write_text("")
    with pytest.raises(package.PackageError, match="run `npm ci` first"):
        package.dashboard_vendor(root)
