"""Build each Cloud Function's source archive, reproducibly: `python -m barlake.package`.

An archive holds exactly what Cloud Functions' Python build needs: the function's `main.py`,
the `barlake` package beside it, and a `requirements.txt` exported from uv.lock with only the
packages that function imports (so the API never installs yfinance, and nothing installs the
CLI's typer/rich). Terraform uploads `dist/functions/<name>.zip` under a name that carries the
archive's hash, so a changed archive redeploys its function and an unchanged one does not.

Reproducible means the same checkout gives byte-identical archives: entries sorted, fixed
timestamps (1980-01-01, the zip epoch), fixed permissions (0644), fixed compression, no
`__pycache__`; the requirements come from the lockfile (`uv export --frozen`), never from a
fresh resolution. tests/test_package.py builds twice and compares the bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from barlake.config import FUNCTIONS

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = ROOT / "dist" / "functions"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # a regular file, rw-r--r--

# Optional dependency groups (pyproject extras) each function installs. Every function wires
# all three Google clients (barlake.config.build_app builds the whole App per instance).
EXTRAS: dict[str, tuple[str, ...]] = {
    # the others read the cache (api) or announce new generations to it (the writers; dispatch's
    # repair sweep rebuilds derived outputs)
    "dispatch": ("gcp", "functions", "cache"),
    "ingest": ("gcp", "functions", "cache"),
    "weekly": ("gcp", "functions", "cache"),
    "profile": ("gcp", "functions", "cache"),
    "api": ("gcp", "functions", "cache", "analytics"),
    "panel": ("gcp", "functions"),
}

# Base dependencies a function's code path never imports, pruned with everything only they
# pull in. typer/rich are the CLI's; yfinance is the ingest provider's; exchange-calendars (and
# pandas, which only it and yfinance need) judge sessions in ingest's validation, the weekly
# bars' provisional flag and the profile. tests/test_package.py runs each function from its
# archive with nothing else importable and checks both ways: it runs, and every kept direct
# dependency is imported (or needed by another kept package).
PRUNE: dict[str, tuple[str, ...]] = {
    "dispatch": ("typer", "rich", "yfinance"),  # the repair sweep builds weekly bars, profiles
    "ingest": ("typer", "rich"),
    "weekly": ("typer", "rich", "yfinance"),
    "profile": ("typer", "rich", "yfinance"),
    "api": ("typer", "rich", "yfinance", "exchange-calendars", "pandas"),
    "panel": ("typer", "rich", "yfinance"),
}

# Not shipped: recorded Yahoo answers for `barlake demo` (no function reads them). The api's
# archive also carries the dashboard's charting library from node_modules (dashboard_vendor).
EXCLUDED_DIRS = frozenset({"__pycache__", "demo_data"})
EXCLUDED_SUFFIXES = (".pyc", ".pyo")


class PackageError(RuntimeError):
    """A function cannot be packaged (missing entry point, uv failing); the message says why."""


@dataclass(frozen=True)
class Archive:
    name: str
    path: Path
    size: int
    sha256: str


def requirements(name: str, root: Path = ROOT) -> str:
    """The function's pinned requirements, exported from uv.lock (never re-resolved)."""
    cmd = [
        *_uv(root),
        "export",
        "--frozen",
        "--no-hashes",
        "--no-dev",
        "--no-emit-project",
        "--no-header",
        "--no-annotate",
        "--format",
        "requirements-txt",
    ]
    for extra in EXTRAS[name]:
        cmd += ["--extra", extra]
    for package in PRUNE[name]:
        cmd += ["--prune", package]
    env = {**os.environ, "UV_NO_PROGRESS": "1"}
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise PackageError(f"uv export for {name} failed: {done.stderr.strip()}")
    header = (
        f"# {name}: exported from uv.lock by `python -m barlake.package` "
        f"(extras: {', '.join(EXTRAS[name])}; pruned: {', '.join(PRUNE[name])})\n"
    )
    return header + done.stdout


def _uv(root: Path) -> list[str]:
    wrapper = root / "uvw"
    return [str(wrapper)] if wrapper.is_file() else ["uv"]


def package_files(package_dir: Path = PACKAGE_DIR) -> Iterator[tuple[str, Path]]:
    """(archive name, file) for every file of the barlake package that ships."""
    for path in sorted(package_dir.rglob("*")):
        rel = path.relative_to(package_dir)
        if not path.is_file() or EXCLUDED_DIRS.intersection(rel.parts[:-1]):
            continue
        if path.name.endswith(EXCLUDED_SUFFIXES):
            continue
        yield f"barlake/{rel.as_posix()}", path


def dashboard_vendor(root: Path = ROOT) -> dict[str, bytes]:
    """The dashboard's charting library, from node_modules (`npm ci`), never from the repo."""
    from barlake.api.dashboard import VENDOR_LICENSE, VENDOR_NAME, VENDOR_SOURCE

    target = "barlake/api/dashboard_assets/vendor"
    found: dict[str, bytes] = {}
    for source, arcname in ((VENDOR_SOURCE, VENDOR_NAME), (VENDOR_LICENSE, "LICENSE")):
        path = root / source
        if not path.is_file():
            raise PackageError(f"{path} is missing: run `npm ci` first (the api's dashboard)")
        found[f"{target}/{arcname}"] = path.read_bytes()
    return found


def build(name: str, out: Path = DEFAULT_OUT, root: Path = ROOT) -> Archive:
    if name not in FUNCTIONS:
        raise PackageError(f"unknown function {name!r} (known: {', '.join(FUNCTIONS)})")
    main = root / "functions" / name / "main.py"
    if not main.is_file():
        raise PackageError(f"{main} is missing: every function needs functions/{name}/main.py")
    entries: dict[str, bytes] = {
        "main.py": main.read_bytes(),
        "requirements.txt": requirements(name, root).encode(),
    }
    for arcname, path in package_files(root / "shared" / "barlake"):
        entries[arcname] = path.read_bytes()
    if name == "api":
        entries.update(dashboard_vendor(root))
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{name}.zip"
    tmp = target.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for arcname in sorted(entries):
            info = zipfile.ZipInfo(arcname, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the mode below is honoured
            info.external_attr = FILE_MODE << 16
            zf.writestr(info, entries[arcname], compresslevel=9)
    tmp.replace(target)
    data = target.read_bytes()
    return Archive(name, target, len(data), hashlib.sha256(data).hexdigest())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m barlake.package", description="Build Cloud Functions source archives."
    )
    parser.add_argument("functions", nargs="*", help=f"default: all ({', '.join(FUNCTIONS)})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    try:
        for name in args.functions or FUNCTIONS:
            archive = build(name, args.out)
            print(f"{archive.path}  {archive.size:>9,} bytes  sha256 {archive.sha256}")
    except PackageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
