"""Security defaults of infra/, checked offline with python-hcl2 (as test_infra_wiring.py).

- `api_public = true` without API keys is refused by a variable validation (evaluated here on
  the condition Terraform would evaluate);
- `redis_url` (which may hold a password) is a sensitive variable;
- the build account writes to Artifact Registry on the functions' repository only, not
  project-wide;
- the repair sweep is scheduled, sending a message dispatch accepts.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

import infra_support as infra
from barlake.messages import IngestRequest

HCL = dict[str, Any]


@pytest.fixture(scope="module")
def hcl() -> HCL:
    return infra.load_hcl()


def evaluate(condition: str, values: dict[str, Any]) -> bool:
    """A boolean Terraform condition over variables (!, ||, &&, var.x) evaluated in Python."""
    expr = condition.strip()
    if expr.startswith("${") and expr.endswith("}"):
        expr = expr[2:-1]
    if not re.fullmatch(r"[\s!|&()a-z_.]+", expr):
        raise AssertionError(f"not a plain boolean condition over variables: {condition}")
    expr = re.sub(r"var\.(\w+)", lambda m: f"values[{m[1]!r}]", expr)
    expr = expr.replace("||", " or ").replace("&&", " and ").replace("!", " not ")
    return bool(eval(expr, {"values": values}))  # only names of variables and boolean operators


def test_a_public_api_without_keys_is_refused(hcl: HCL) -> None:
    variables = infra.variables(hcl)
    assert variables["api_public"]["default"] is False
    validations = variables["api_public"].get("validation", [])
    assert validations, "api_public has no validation"
    conditions = [v["condition"] for v in validations]
    defaults = {"api_keys_configured": variables["api_keys_configured"]["default"]}
    assert defaults["api_keys_configured"] is False  # the operator says so once keys exist

    def accepted(public: bool, keys: bool) -> bool:
        values = {"api_public": public, "api_keys_configured": keys}
        return all(evaluate(c, values) for c in conditions)

    assert not accepted(True, False)
    assert accepted(True, True) and accepted(False, False) and accepted(False, True)


def test_redis_url_is_sensitive(hcl: HCL) -> None:
    assert infra.variables(hcl)["redis_url"].get("sensitive") is True


def test_the_build_account_writes_only_to_its_repository(hcl: HCL) -> None:
    project_roles = infra.resources(hcl, "google_project_iam_member")["build"]
    granted = json.dumps(project_roles)
    assert "artifactregistry" not in granted, "Artifact Registry roles granted project-wide"
    repo_grant = infra.resources(hcl, "google_artifact_registry_repository_iam_member")["build"]
    assert repo_grant["role"] == "roles/artifactregistry.writer"
    assert "google_service_account.build.email" in repo_grant["member"]
    assert repo_grant["repository"] == "${google_artifact_registry_repository.functions.name}"
    function = infra.resources(hcl, "google_cloudfunctions2_function")["fn"]
    build = function["build_config"][0]
    assert build["docker_repository"] == "${google_artifact_registry_repository.functions.id}"


def test_the_repair_sweep_is_scheduled(hcl: HCL) -> None:
    job = infra.resources(hcl, "google_cloud_scheduler_job")["repair"]
    target = job["pubsub_target"][0]
    assert target["topic_name"] == "${google_pubsub_topic.ingest_requests.id}"
    body = re.fullmatch(r"\$\{base64encode\(jsonencode\((\{.*\})\)\)\}", target["data"], re.S)
    assert body is not None
    assert body[1].replace(" ", "") == '{version=1,kind="repair"}'
    request = IngestRequest.from_json({"version": 1, "kind": "repair"})
    assert request.kind == "repair" and not request.symbols
