"""Offline Terraform checks: `terraform fmt -check` and checkov, as CI runs them.

checkov lives in its own virtual environment (.tools/checkov): it installs a module named
`hcl2` that clashes with python-hcl2, which the wiring tests use. `.ci/run` installs it; here
it is found there (or through $CHECKOV), never installed by a test run, and under
BARLAKE_REQUIRE_EMULATORS=1 (CI) a missing terraform or checkov is a failure, not a skip.
`terraform init/validate/plan` need the google provider from the registry: Cloud Build runs
them (cloudbuild.yaml), this machine cannot.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import infra_support as infra

ROOT = Path(__file__).resolve().parents[1]
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / ".tools" / "checkov"
SKIP = re.compile(r"#\s*checkov:skip=(?P<id>CKV2?_[A-Z]+_\d+)(?::(?P<reason>.*))?")


@pytest.fixture(scope="module")
def checkov() -> str:
    """checkov from its venv (.ci/run installs it there; a test run never installs 194 MB by
    itself): skipped with the reason where it is missing, a failure in CI."""
    found = os.environ.get("CHECKOV") or str(CHECKOV_VENV / "bin" / "checkov")
    if not Path(found).is_file():
        infra.require(
            "checkov",
            f"not in {CHECKOV_VENV}: install it as .ci/run does "
            f"(uv venv {CHECKOV_VENV} && uv pip install --python {CHECKOV_VENV}/bin/python "
            f"checkov=={CHECKOV_VERSION})",
        )
    return found


def test_terraform_fmt_check():
    done = subprocess.run(
        [infra.terraform(), "fmt", "-check", "-recursive", "-diff", str(infra.INFRA)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"terraform fmt would change:\n{done.stdout}"


def test_terraform_fmt_catches_a_misformatted_file(tmp_path):
    copy = infra.copy_infra(tmp_path)
    path = copy / "outputs.tf"
    path.write_text(path.read_text().replace("  description = ", "  description   =   ", 1))
    done = subprocess.run(
        [infra.terraform(), "fmt", "-check", "-recursive", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "outputs.tf" in done.stdout


def scan(checkov, directory):
    """checkov's JSON report on one Terraform folder (offline: --skip-download)."""
    argv = [checkov, "-d", str(directory), "--skip-download", "--framework", "terraform"]
    argv += ["--quiet", "-o", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    return json.loads(done.stdout)


def test_checkov_passes_with_every_skip_justified(checkov):
    report = scan(checkov, infra.INFRA)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report.get("results", {}).get("failed_checks", [])
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 50  # the scan really covered the resources
    # Every skip sits next to its resource, with a reason of a few words.
    skips = [
        (path.name, m["id"], (m["reason"] or "").strip())
        for path in sorted(infra.INFRA.glob("*.tf"))
        for m in SKIP.finditer(path.read_text())
    ]
    assert [s for s in skips if len(s[2].split()) < 5] == []
    assert summary["skipped"] >= len(skips) > 0


def test_checkov_catches_a_public_bucket(checkov, tmp_path):
    copy = infra.copy_infra(tmp_path)
    path = copy / "storage.tf"
    path.write_text(path.read_text().replace('"enforced"', '"inherited"', 1))
    failed = {c["check_id"] for c in scan(checkov, copy)["results"]["failed_checks"]}
    assert "CKV_GCP_114" in failed


def test_cloudbuild_runs_every_stage_and_applies_only_on_the_deploy_branch():
    import yaml

    text = (ROOT / "cloudbuild.yaml").read_text()
    build = yaml.safe_load(text)
    steps = {s["id"]: s for s in build["steps"]}
    order = ["test", "package", "terraform-fmt", "terraform-init", "terraform-validate"]
    assert [i for i in steps if i in order] == order
    assert {"checkov", "terraform-plan", "terraform-apply"} <= set(steps)
    assert "pytest" in json.dumps(steps["test"]) and "ruff check" in json.dumps(steps["test"])
    assert "barlake.package" in json.dumps(steps["package"])
    plan_waits = set(steps["terraform-plan"]["waitFor"])
    assert {"package", "checkov", "terraform-validate"} <= plan_waits
    apply = json.dumps(steps["terraform-apply"])
    assert "BRANCH_NAME" in apply and "_DEPLOY_BRANCH" in apply and "apply tfplan" in apply
    assert "_TF_STATE_BUCKET" in json.dumps(steps["terraform-init"])
    # Every substitution is documented in the header.
    header = text.split("substitutions:")[0]
    assert all(f"#   {name}" in header for name in build["substitutions"])
