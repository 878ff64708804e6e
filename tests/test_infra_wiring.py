"""Terraform ↔ code wiring, checked offline with python-hcl2.

Each check reads infra/*.tf and compares it with what the code says (never with a list typed
into this file): the environment each function reads (Settings' `used_by`), the topic names
(barlake.messages), the object layout (barlake.core.layout), the CloudEvent functions
(barlake.cloudfn), and the storage, state and topic operations each function really performs
(measured by running its code path from its own archive: tests/infra_probe.py). Each check
returns a list of problems; the mutation tests at the end break a copy of infra/ and show
the check names the break.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import hcl2
import pytest
from hcl2 import SerializationOptions

import infra_support as infra
from barlake import cloudfn
from barlake.config import FUNCTIONS, ConfigError, Settings
from barlake.core.layout import DERIVED_PREFIXES, RAW_DAILY_PREFIX
from barlake.messages import (
    DEAD_LETTER,
    INGEST_BATCHES,
    INGEST_REQUESTS,
    RAW_OBJECT_FINALIZED,
    RUN_COMPLETED,
    AuditTick,
    BadMessage,
    IngestRequest,
    is_audit_tick,
)
from barlake.stack import subscriptions

HCL = dict[str, Any]

# Values every deployed function must get (the cloud backends; see barlake.stack).
CLOUD_VALUES = {
    "BARLAKE_STORAGE": "gcs",
    "BARLAKE_EVENTS": "pubsub",
    "BARLAKE_STATE": "firestore",
    "BARLAKE_PROJECT": "${var.project_id}",
    "BARLAKE_PROVIDER": "yahoo",
}
SECRET_NAME = re.compile(r"_(TOKEN|KEYS?|PASSWORD|SECRET)$")

# What each recorded operation needs in IAM terms (resource kind → operation → permissions).
OPERATION_PERMISSIONS: dict[str, dict[str, set[str]]] = {
    "bucket": {
        "get": {"storage.objects.get"},
        "list": {"storage.objects.list"},
        "create": {"storage.objects.create"},
        # GCS: replacing an existing object deletes its old generation.
        "overwrite": {"storage.objects.create", "storage.objects.delete"},
        "delete": {"storage.objects.delete"},
    },
    "state": {
        "read": {"datastore.entities.get", "datastore.entities.list"},
        "write": {"datastore.entities.create", "datastore.entities.update"},
    },
    "topic": {"publish": {"pubsub.topics.publish"}},
    "secret": {"access": {"secretmanager.versions.access"}},
}
# The predefined roles' permissions on the resources above (from Google's IAM role reference).
PREDEFINED_ROLES: dict[str, set[str]] = {
    "roles/datastore.viewer": {"datastore.entities.get", "datastore.entities.list"},
    "roles/datastore.user": {
        "datastore.entities.get",
        "datastore.entities.list",
        "datastore.entities.create",
        "datastore.entities.update",
        "datastore.entities.delete",
    },
    "roles/datastore.owner": {
        "datastore.entities.get",
        "datastore.entities.list",
        "datastore.entities.create",
        "datastore.entities.update",
        "datastore.entities.delete",
        "datastore.indexes.create",
    },
    "roles/storage.objectViewer": {"storage.objects.get", "storage.objects.list"},
    "roles/storage.objectCreator": {"storage.objects.create"},
    "roles/storage.objectUser": {
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.update",
        "storage.objects.restore",
    },
    "roles/storage.objectAdmin": {
        "storage.objects.get",
        "storage.objects.list",
        "storage.objects.create",
        "storage.objects.delete",
        "storage.objects.update",
        "storage.objects.getIamPolicy",
        "storage.objects.setIamPolicy",
    },
    "roles/pubsub.publisher": {"pubsub.topics.publish"},
    "roles/pubsub.editor": {"pubsub.topics.publish", "pubsub.topics.update"},
    "roles/secretmanager.secretAccessor": {"secretmanager.versions.access"},
}
FN_MEMBER = re.compile(r'google_service_account\.fn\[\\?"(\w+)\\?"\]')
REF = re.compile(r"^\$\{(?P<type>google_\w+)\.(?P<name>\w+)\.(?P<attr>\w+)\}$")


# --------------------------------------------------------------------------- helpers


def _functions(hcl: HCL) -> dict[str, dict[str, Any]]:
    return infra.locals_(hcl)["functions"]


def _ref(value: Any) -> tuple[str, str, str] | None:
    m = REF.match(value) if isinstance(value, str) else None
    return (m["type"], m["name"], m["attr"]) if m else None


def _topic_names(hcl: HCL) -> dict[str, str]:
    """Terraform resource name → topic name."""
    return {k: v["name"] for k, v in infra.resources(hcl, "google_pubsub_topic").items()}


def _function_env(hcl: HCL, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(plain environment, secret environment) Terraform gives function `name`."""
    local = infra.locals_(hcl)
    spec = _functions(hcl)[name]
    return infra.eval_map(spec["env"], local), infra.eval_map(spec["secrets"], local)


def _resolve(value: Any, hcl: HCL) -> str:
    """A Terraform value as the function would see it, for the variables' defaults."""
    variables = infra.variables(hcl)
    if not isinstance(value, str):
        return str(value)
    if m := re.fullmatch(r"\$\{(?:tostring\()?var\.(\w+)\)?\}", value):
        default = variables[m[1]].get("default", f"<{m[1]}>")
        return str(default).lower() if isinstance(default, bool) else str(default)
    if ref := _ref(value):
        rtype, rname, attr = ref
        if rtype == "google_pubsub_topic" and attr == "name":
            return _topic_names(hcl)[rname]
        if rtype == "google_storage_bucket" and attr == "name":
            return f"project-barlake-{rname}"
        if rtype == "google_firestore_database" and attr == "name":
            return _resolve(infra.resources(hcl, rtype)[rname]["name"], hcl)
    if "${" not in value:
        return value
    raise AssertionError(f"the wiring test cannot resolve {value!r}")


# --------------------------------------------------------------------------- checks


def check_env(hcl: HCL) -> list[str]:
    """Every variable a function reads is set for it, nothing it does not read is set, secrets
    come from Secret Manager, and the resolved values are a valid configuration."""
    problems: list[str] = []
    known = Settings.variables()
    declared = _functions(hcl)
    for name in FUNCTIONS:
        if name not in declared:
            problems.append(f"{name}: no function in local.functions")
            continue
        env, secrets = _function_env(hcl, name)
        wanted = {f.metadata["env"] for f in fields(Settings) if name in f.metadata["used_by"]}
        given = {k for k in (*env, *secrets) if k.startswith("BARLAKE_")}
        for var in sorted(wanted - given):
            problems.append(f"{name}: reads {var} but Terraform does not set it")
        for var in sorted(given - wanted):
            why = "no such setting (renamed?)" if var not in known else "not read by it"
            problems.append(f"{name}: Terraform sets {var}: {why}")
        for var in sorted(env):
            if SECRET_NAME.search(var):
                problems.append(f"{name}: {var} is a secret: set it from Secret Manager")
        for var, expected in CLOUD_VALUES.items():
            if var in wanted and var in env and env[var] != expected:
                problems.append(f"{name}: {var}={env[var]!r}, the cloud needs {expected!r}")
        if not problems:
            resolved = {k: _resolve(v, hcl) for k, v in env.items()}
            resolved.update({k: "<secret>" for k in secrets})
            try:
                Settings.from_env(resolved)
            except ConfigError as exc:
                problems.append(f"{name}: the deployed settings are refused: {exc}")
    return problems


def check_topics(hcl: HCL) -> list[str]:
    problems: list[str] = []
    names = _topic_names(hcl)
    expected = {INGEST_REQUESTS, INGEST_BATCHES, DEAD_LETTER, RUN_COMPLETED}
    if set(names.values()) != expected:
        problems.append(
            f"topics {sorted(names.values())} != the code's {sorted(expected)} "
            f"({RAW_OBJECT_FINALIZED} is the local stack's only)"
        )
    by_topic = {v: k for k, v in names.items()}
    env, _ = _function_env(hcl, "dispatch")
    batches = env.get("BARLAKE_INGEST_BATCHES_TOPIC")
    if _ref(batches) != ("google_pubsub_topic", by_topic.get(INGEST_BATCHES, "?"), "name"):
        problems.append(f"dispatch publishes to {batches!r}, not the {INGEST_BATCHES} topic")
    # Push subscriptions: the same table as the local stack (subscription → topic, function).
    pushes = infra.locals_(hcl)["push_subscriptions"]
    subs = infra.resources(hcl, "google_pubsub_subscription")
    for sub in subscriptions(Settings()):
        if sub["push"] is None or sub["topic"] == RAW_OBJECT_FINALIZED:
            continue
        topic_ref = f"${{google_pubsub_topic.{by_topic.get(sub['topic'], '?')}.id}}"
        if pushes.get(sub["name"]) != topic_ref:
            problems.append(f"subscription {sub['name']} must read topic {sub['topic']}")
    push = subs.get("push", {})
    policy = (push.get("dead_letter_policy") or [{}])[0]
    if (
        policy.get("dead_letter_topic")
        != f"${{google_pubsub_topic.{by_topic.get(DEAD_LETTER)}.id}}"
    ):
        problems.append(f"push subscriptions must dead-letter to {DEAD_LETTER}")
    if not push.get("retry_policy"):
        problems.append("push subscriptions need a retry policy with backoff")
    if "fn[each.key]" not in json.dumps(push.get("push_config", "")):
        problems.append("push subscriptions must push to the function of the same name")
    for name, job in infra.resources(hcl, "google_cloud_scheduler_job").items():
        target = job["pubsub_target"][0]
        topic = target["topic_name"]
        # The audit tick goes to ingest-batches (handled by ingest); run requests to dispatch.
        wanted = INGEST_BATCHES if name == "audit" else INGEST_REQUESTS
        if topic != f"${{google_pubsub_topic.{by_topic.get(wanted)}.id}}":
            problems.append(f"scheduler {name} publishes to {topic}, not {wanted}")
        problems += _check_payload(target["data"], audit=name == "audit")
    return problems


def _check_payload(data: str, audit: bool = False) -> list[str]:
    """The scheduler's message body must be an IngestRequest the dispatch accepts (or, for
    the audit job, an AuditTick the ingest accepts)."""
    m = re.fullmatch(r"\$\{base64encode\(jsonencode\((\{.*\})\)\)\}", data, re.S)
    if not m:
        return [f"scheduler data is not base64encode(jsonencode({{…}})): {data}"]
    body = m[1].replace("each.value.universe", '"sample-universe"')
    options = SerializationOptions(strip_string_quotes=True, explicit_blocks=False)
    payload = hcl2.loads(f"payload = {body}\n", serialization_options=options)["payload"]
    message = json.loads(base64.b64decode(_b64(payload)))
    if audit:
        try:
            AuditTick.from_json(message)
        except BadMessage as exc:
            return [f"audit scheduler payload is refused by ingest: {exc}"]
        return [] if is_audit_tick(message) else ["audit scheduler sends no audit tick"]
    try:
        request = IngestRequest.from_json(message)
    except BadMessage as exc:
        return [f"scheduler payload is refused by dispatch: {exc}"]
    ok = request.kind == "scheduled" or (request.kind == "repair" and not request.symbols)
    return [] if ok else [f"scheduler sends kind {request.kind!r}"]


def _b64(payload: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


def check_service_accounts(hcl: HCL) -> list[str]:
    problems: list[str] = []
    fn = infra.resources(hcl, "google_cloudfunctions2_function")["fn"]
    accounts = infra.resources(hcl, "google_service_account")
    if accounts.get("fn", {}).get("for_each") != "${local.functions}":
        problems.append("google_service_account.fn must exist once per function (local.functions)")
    elif "${each.key}" not in accounts["fn"]["account_id"]:
        problems.append("service account ids must differ per function (use each.key)")
    sa = fn["service_config"][0]["service_account_email"]
    if sa != "${google_service_account.fn[each.key].email}":
        problems.append(f"functions run as {sa}, not their own service account")
    if set(_functions(hcl)) != set(FUNCTIONS):
        problems.append(f"local.functions {sorted(_functions(hcl))} != {sorted(FUNCTIONS)}")
    return problems


def check_triggers(hcl: HCL) -> list[str]:
    problems: list[str] = []
    kinds = {name: spec["trigger"] for name, spec in _functions(hcl).items()}
    events = set(cloudfn.HANDLERS)  # the CloudEvent functions
    storage = {n for n in events if n in ("weekly", "profile")}
    for name in FUNCTIONS:
        want = "storage" if name in storage else "pubsub" if name in events else "http"
        if kinds.get(name) != want:
            problems.append(f"{name}: trigger {kinds.get(name)!r}, expected {want!r}")
    pushes = set(infra.locals_(hcl)["push_subscriptions"])
    if pushes != {n for n, k in kinds.items() if k == "pubsub"}:
        problems.append(f"push subscriptions {sorted(pushes)} != the Pub/Sub-triggered functions")
    fn = infra.resources(hcl, "google_cloudfunctions2_function")["fn"]
    for dyn in fn.get("dynamic", []):
        if "event_trigger" not in dyn:
            continue
        trig = dyn["event_trigger"]
        if trig["for_each"] != (
            '${each.value.trigger == "storage" ? [google_storage_bucket.raw.name] : []}'
        ):
            problems.append(f"storage triggers must watch the raw bucket only: {trig['for_each']}")
        content = trig["content"][0]
        if content["event_type"] != cloudfn.STORAGE_FINALIZED:
            problems.append(f"storage trigger event {content['event_type']}")
        if content["event_filters"][0] != {
            "attribute": "bucket",
            "value": "${event_trigger.value}",
        }:
            problems.append(f"storage trigger filter {content['event_filters'][0]}")
    for rtype, rname, body in infra.all_resources(hcl):
        text = json.dumps(body)
        if rtype == "google_eventarc_trigger" or (
            "event_trigger" in text and rtype != "google_cloudfunctions2_function"
        ):
            problems.append(f"{rtype}.{rname}: triggers belong on the function resource")
        if "google_storage_bucket.derived" in text and "finalized" in text:
            problems.append(f"{rtype}.{rname}: a trigger on the derived bucket")
    return problems


def check_public(hcl: HCL) -> list[str]:
    """allUsers/allAuthenticatedUsers only behind var.api_public, which defaults to false."""
    problems: list[str] = []
    if infra.variables(hcl).get("api_public", {}).get("default") is not False:
        problems.append("variable api_public must default to false")
    for rtype, rname, body in infra.all_resources(hcl):
        text = json.dumps(body)
        if "allUsers" in text or "allAuthenticatedUsers" in text:
            if body.get("count") != "${var.api_public ? 1 : 0}":
                problems.append(f"{rtype}.{rname} opens access without var.api_public")
            elif 'fn[\\"api\\"]' not in text:
                problems.append(f"{rtype}.{rname}: only the API may be opened")
    return problems


def check_bigquery(hcl: HCL) -> list[str]:
    tables = infra.locals_(hcl)["bigquery_tables"]
    expected = {
        "daily": f"gs://${{google_storage_bucket.raw.name}}/{RAW_DAILY_PREFIX}*.parquet",
        "weekly": f"gs://${{google_storage_bucket.derived.name}}/{DERIVED_PREFIXES['1wk']}*.parquet",
        "monthly": f"gs://${{google_storage_bucket.derived.name}}/{DERIVED_PREFIXES['1mo']}*.parquet",
    }
    problems = [
        f"BigQuery table {k}: {tables.get(k)!r} != layout's {v!r}"
        for k, v in expected.items()
        if tables.get(k) != v
    ]
    table = infra.resources(hcl, "google_bigquery_table")["bars"]
    config = table["external_data_configuration"][0]
    if config["source_format"] != "PARQUET" or config["source_uris"] != ["${each.value}"]:
        problems.append(f"BigQuery tables must read PARQUET from local.bigquery_tables: {config}")
    return problems


def check_biglake(hcl: HCL) -> list[str]:
    """BigLake tables read the panel where barlake.core.panel writes it, through the
    connection, Hive-partitioned on the same key, with the metadata cache on; the connection's
    service account may read the derived bucket."""
    from barlake.core.panel import PANEL_DIRS, PANEL_PREFIX, partition_name

    problems: list[str] = []
    tables = infra.locals_(hcl).get("panel_tables", {})
    if set(tables.values()) != set(PANEL_DIRS.values()):
        problems.append(f"panel tables {sorted(tables.values())} != {sorted(PANEL_DIRS.values())}")
    key = partition_name("1d", 2025).split("/")[-2].split("=")[0]  # "year"
    table = infra.resources(hcl, "google_bigquery_table").get("panel", {})
    config = (table.get("external_data_configuration") or [{}])[0]
    derived = "gs://${google_storage_bucket.derived.name}/"
    if config.get("source_uris") != [f"{derived}{PANEL_PREFIX}${{each.value}}/*"]:
        problems.append(f"panel tables read {config.get('source_uris')}, not the panel layout")
    hive = (config.get("hive_partitioning_options") or [{}])[0]
    if hive.get("source_uri_prefix") != f"{derived}{PANEL_PREFIX}${{each.value}}/{{{key}:INTEGER}}":
        problems.append(f"hive partitioning prefix {hive.get('source_uri_prefix')!r}")
    if config.get("connection_id") != "${google_bigquery_connection.lake.name}":
        problems.append("panel tables must read through google_bigquery_connection.lake")
    if config.get("metadata_cache_mode") != "AUTOMATIC" or not table.get("max_staleness"):
        problems.append("panel tables need metadata caching (AUTOMATIC, max_staleness)")
    grants = [
        body
        for body in infra.resources(hcl, "google_storage_bucket_iam_member").values()
        if "google_bigquery_connection.lake" in json.dumps(body.get("member"))
    ]
    if not any(g["bucket"] == "${google_storage_bucket.derived.name}" for g in grants):
        problems.append("the BigLake connection's service account cannot read the derived bucket")
    return problems


def check_guardrails(hcl: HCL) -> list[str]:
    """The freshness metric counts the log line the code writes when a run completes, the
    uptime check probes the API's health route, and every alert and the budget notify the
    channels (alert_emails + notification_channels)."""
    import logging

    from barlake.services import panel

    problems: list[str] = []
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    class Ledger:
        def get_run(self, run_id: str) -> Any:
            return type("S", (), {"complete": True})()

    class Bus:
        def publish(self, *args: Any) -> str:
            return "1"

    handler, level = Keep(), panel.log.level
    panel.log.addHandler(handler)
    panel.log.setLevel(logging.INFO)
    try:
        panel.announce_if_complete(Ledger(), Bus(), RUN_COMPLETED, "r1")  # type: ignore[arg-type]
    finally:
        panel.log.removeHandler(handler)
        panel.log.setLevel(level)
    fields = next(getattr(r, "fields", {}) for r in records)
    metric = infra.resources(hcl, "google_logging_metric").get("runs_completed", {})
    for key in ("function", "outcome"):
        if f'jsonPayload.{key}="{fields[key]}"' not in metric.get("filter", ""):
            problems.append(f"runs_completed does not count jsonPayload.{key}={fields[key]!r}")
    uptime = infra.resources(hcl, "google_monitoring_uptime_check_config").get("api_health", {})
    path = (uptime.get("http_check") or [{}])[0].get("path")
    if path != "/v1/health":
        problems.append(f"the uptime check probes {path!r}, not /v1/health")
    if "monitoring.googleapis.com/uptime_check" not in json.dumps(
        infra.resources(hcl, "google_monitoring_alert_policy").get("api_down", {})
    ):
        problems.append("no alert on the uptime check")
    for name, policy in infra.resources(hcl, "google_monitoring_alert_policy").items():
        if policy.get("notification_channels") != "${local.channels}":
            problems.append(f"alert {name} does not notify local.channels")
    channels = infra.locals_(hcl).get("channels", "")
    if "var.notification_channels" not in channels:
        problems.append("local.channels ignores var.notification_channels")
    budget = infra.resources(hcl, "google_billing_budget").get("lake", {})
    rule = (budget.get("all_updates_rule") or [{}])[0]
    if rule.get("monitoring_notification_channels") != "${local.channels}":
        problems.append("the budget does not notify local.channels")
    if not budget.get("dynamic") and not budget.get("threshold_rules"):
        problems.append("the budget has no threshold rules")
    return problems


# ------------------------------------------------------------------------------ IAM


def _grant_resource(rtype: str, body: dict[str, Any], hcl: HCL, role: str) -> str:
    if rtype == "google_storage_bucket_iam_member":
        ref = _ref(body["bucket"])
        return f"bucket:{ref[1] if ref else body['bucket']}"
    if rtype == "google_pubsub_topic_iam_member":
        ref = _ref(body["topic"])
        return f"topic:{_topic_names(hcl)[ref[1]] if ref else body['topic']}"
    if rtype == "google_secret_manager_secret_iam_member":
        ref = _ref(body["secret_id"])
        return f"secret:{ref[1] if ref else body['secret_id']}"
    if rtype == "google_project_iam_member" and role.startswith("roles/datastore."):
        return "state:"
    return f"{rtype}:{body.get('project') or body.get('name')}"


def _role_permissions(role: str, hcl: HCL) -> set[str]:
    ref = _ref(role)
    if ref and ref[0] == "google_project_iam_custom_role":
        return set(infra.resources(hcl, ref[0])[ref[1]]["permissions"])
    if role not in PREDEFINED_ROLES:
        raise AssertionError(f"role {role} is not in this test's table: add its permissions")
    return PREDEFINED_ROLES[role]


def function_grants(hcl: HCL) -> dict[str, list[tuple[str, str, str]]]:
    """function → [(terraform address, resource, role)] granted to its service account."""
    out: dict[str, list[tuple[str, str, str]]] = {n: [] for n in FUNCTIONS}
    for rtype, rname, body in infra.all_resources(hcl):
        if not rtype.endswith(("_iam_member", "_iam_binding")):
            continue
        members = json.dumps(body.get("member") or body.get("members"))
        for fn_name in FN_MEMBER.findall(members):
            role = body["role"]
            out.setdefault(fn_name, []).append(
                (f"{rtype}.{rname}", _grant_resource(rtype, body, hcl, role), role)
            )
    return out


def needed_permissions(ops: set[tuple[str, str]], secrets: dict[str, Any]) -> dict[str, set[str]]:
    """Recorded operations (+ secret env vars) → {resource: permissions}."""
    need: dict[str, set[str]] = {}
    for resource, op in ops:
        if resource in ("raw", "derived"):
            key, kind = f"bucket:{resource}", "bucket"
        elif resource == "state":
            key, kind = "state:", "state"
        elif resource.startswith("topic:"):
            key, kind = resource, "topic"
        elif resource == "cache":
            continue  # the cache needs no IAM; its token arrives as a secret (below)
        else:
            raise AssertionError(f"unmapped operation {resource}/{op}")
        need.setdefault(key, set()).update(OPERATION_PERMISSIONS[kind][op])
    for secret in secrets.values():
        ref = _ref(secret) or ("", str(secret), "")
        need.setdefault(f"secret:{ref[1]}", set()).update(OPERATION_PERMISSIONS["secret"]["access"])
    return need


def check_iam(hcl: HCL, ops: dict[str, set[tuple[str, str]]]) -> list[str]:
    problems: list[str] = []
    grants = function_grants(hcl)
    for name in FUNCTIONS:
        _, secrets = _function_env(hcl, name)
        need = needed_permissions(ops[name], secrets)
        have: dict[str, set[str]] = {}
        for address, resource, role in grants.get(name, []):
            perms = _role_permissions(role, hcl)
            have.setdefault(resource, set()).update(perms)
            used = need.get(resource, set())
            if not perms & used:
                problems.append(f"{name}: {address} grants {role} on {resource}, never used")
                continue
            if _ref(role):  # a custom role: every permission must be used
                for perm in sorted(perms - used):
                    problems.append(f"{name}: {address}: {perm} on {resource} is never used")
            else:
                smaller = [
                    r
                    for r, p in PREDEFINED_ROLES.items()
                    if used <= p and len(p) < len(perms) and p < perms
                ]
                if smaller:
                    problems.append(f"{name}: {address}: {role} is more than needed ({smaller[0]})")
        for resource, perms in sorted(need.items()):
            for perm in sorted(perms - have.get(resource, set())):
                problems.append(f"{name}: needs {perm} on {resource}, Terraform grants none")
    return problems


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def hcl() -> HCL:
    return infra.load_hcl()


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[tuple[str, str]]]:
    return infra.operations(infra.shared_tmp(tmp_path_factory))


def test_every_function_gets_exactly_the_variables_it_reads(hcl):
    assert check_env(hcl) == []


def test_topic_names_match_the_code(hcl):
    assert check_topics(hcl) == []


def test_every_function_has_its_own_service_account(hcl):
    assert check_service_accounts(hcl) == []


def test_triggers_pubsub_http_and_raw_bucket_only(hcl):
    assert check_triggers(hcl) == []


def test_no_public_access_unless_the_variable_says_so(hcl):
    assert check_public(hcl) == []


def test_bigquery_tables_follow_the_object_layout(hcl):
    assert check_bigquery(hcl) == []


def test_biglake_tables_follow_the_panel_layout(hcl):
    assert check_biglake(hcl) == []


def test_guardrails_watch_what_the_code_does(hcl):
    assert check_guardrails(hcl) == []


def test_every_role_granted_is_used_and_every_operation_granted(hcl, ops):
    # The recorded operations themselves: each function did its job on the expected resources.
    assert ("topic:" + INGEST_BATCHES, "publish") in ops["dispatch"]
    assert ("topic:" + INGEST_BATCHES, "publish") in ops["ingest"]  # the audit tick's slice
    assert {("raw", "create"), ("raw", "overwrite")} <= ops["ingest"]
    assert ("derived", "overwrite") in ops["weekly"]
    assert ("topic:" + RUN_COMPLETED, "publish") in ops["ingest"]
    assert {("raw", "list"), ("derived", "create"), ("derived", "overwrite")} <= ops["panel"]
    assert all(not r.startswith("topic:") for r, _ in ops["api"])
    assert ("raw", "list") in ops["api"]  # as-of reads list the versions
    assert check_iam(hcl, ops) == []


def test_variables_and_outputs_are_documented(hcl):
    problems = [
        f"variable {name}: missing {key}"
        for name, body in infra.variables(hcl).items()
        for key in ("description", "type")
        if key not in body
    ]
    for block in hcl.get("output", []):
        problems += [
            f"output {n}: no description" for n, b in block.items() if "description" not in b
        ]
    assert problems == []
    outputs = {n for block in hcl["output"] for n in block}
    assert {"api_url", "buckets", "topics", "bigquery_tables"} <= outputs


# ------------------------------------------------------------- the checks catch breakage


def _broken(tmp_path: Path, file: str, old: str, new: str) -> HCL:
    copy = infra.copy_infra(tmp_path)
    path = copy / file
    text = path.read_text()
    assert old in text, f"{old!r} not in {file}: update this test"
    path.write_text(text.replace(old, new, 1))
    return infra.load_hcl(copy)


@pytest.mark.parametrize(
    ("file", "old", "new", "check", "expected"),
    [
        pytest.param(
            "pubsub.tf",
            '"ingest-batches"',
            '"ingest-batch"',
            check_topics,
            "topics ['dead-letter', 'ingest-batch', 'ingest-requests', 'run-completed']",
            id="topic-renamed",
        ),
        pytest.param(
            "functions.tf",
            "    BARLAKE_BATCH_SIZE           = tostring(var.batch_size)\n",
            "",
            check_env,
            "dispatch: reads BARLAKE_BATCH_SIZE but Terraform does not set it",
            id="env-var-dropped",
        ),
        pytest.param(
            "functions.tf",
            "BARLAKE_OVERLAP_SESSIONS ",
            "BARLAKE_OVERLAP_SESSION  ",
            check_env,
            "ingest: Terraform sets BARLAKE_OVERLAP_SESSION: no such setting (renamed?)",
            id="env-var-misspelt",
        ),
        pytest.param(
            "functions.tf",
            'BARLAKE_STATE              = "firestore"',
            'BARLAKE_STATE              = "sqlite"',
            check_env,
            "BARLAKE_STATE='sqlite', the cloud needs 'firestore'",
            id="env-value-wrong",
        ),
        pytest.param(
            "functions.tf",
            "[google_storage_bucket.raw.name]",
            "[google_storage_bucket.derived.name]",
            check_triggers,
            "storage triggers must watch the raw bucket only",
            id="trigger-on-derived",
        ),
        pytest.param(
            "functions.tf",
            "google_service_account.fn[each.key].email\n",
            "google_service_account.invoker.email\n",
            check_service_accounts,
            "functions run as ${google_service_account.invoker.email}",
            id="shared-service-account",
        ),
        pytest.param(
            "functions.tf",
            "  count    = var.api_public ? 1 : 0\n",
            "",
            check_public,
            "google_cloud_run_v2_service_iam_member.api_public opens access without",
            id="all-users-unconditional",
        ),
        pytest.param(
            "bigquery.tf",
            "/daily/*.parquet",
            "/days/*.parquet",
            check_bigquery,
            "BigQuery table daily",
            id="bigquery-prefix",
        ),
        pytest.param(
            "biglake.tf",
            "/{year:INTEGER}",
            "/{yr:INTEGER}",
            check_biglake,
            "hive partitioning prefix",
            id="biglake-partition-key",
        ),
        pytest.param(
            "guardrails.tf",
            'jsonPayload.outcome=\\"run_completed\\"',
            'jsonPayload.outcome=\\"run_complete\\"',
            check_guardrails,
            "runs_completed does not count jsonPayload.outcome='run_completed'",
            id="freshness-metric-filter",
        ),
        pytest.param(
            "guardrails.tf",
            'path         = "/v1/health"',
            'path         = "/health"',
            check_guardrails,
            "the uptime check probes '/health'",
            id="uptime-path",
        ),
        pytest.param(
            "scheduler.tf",
            "version = 1,",
            "version = 2,",
            check_topics,
            "scheduler payload is refused by dispatch: unsupported message version 2",
            id="scheduler-payload",
        ),
    ],
)
def test_a_broken_copy_of_infra_is_reported(tmp_path, file, old, new, check, expected):
    assert check(infra.load_hcl()) == []  # the real files pass this very check
    problems = check(_broken(tmp_path, file, old, new))
    assert any(expected in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            'resource "google_pubsub_topic_iam_member" "dispatch_publish_batches"',
            'resource "google_pubsub_topic_iam_member" "dispatch_publish_batches_gone"',
            None,
            id="renamed-grant-still-fine",
        ),
        pytest.param(
            "topic  = google_pubsub_topic.ingest_batches.name",
            "topic  = google_pubsub_topic.ingest_requests.name",
            "dispatch: needs pubsub.topics.publish on topic:ingest-batches, Terraform grants none",
            id="publish-grant-on-wrong-topic",
        ),
        pytest.param(
            '  role    = "roles/datastore.viewer"',
            '  role    = "roles/datastore.user"',
            "api: google_project_iam_member.api_state: roles/datastore.user is more than needed",
            id="api-given-write-access",
        ),
        pytest.param(
            'permissions = ["storage.objects.get"]',
            'permissions = ["storage.objects.get", "storage.objects.list"]',
            "storage.objects.list on bucket:raw is never used",
            id="custom-role-extra-permission",
        ),
        pytest.param(
            'resource "google_storage_bucket_iam_member" "ingest_raw" {\n'
            "  bucket = google_storage_bucket.raw.name",
            'resource "google_storage_bucket_iam_member" "ingest_raw" {\n'
            "  bucket = google_storage_bucket.derived.name",
            "ingest: needs storage.objects.create on bucket:raw, Terraform grants none",
            id="ingest-writes-the-wrong-bucket",
        ),
    ],
)
def test_a_broken_grant_is_reported(tmp_path, ops, old, new, expected):
    problems = check_iam(_broken(tmp_path, "iam.tf", old, new), ops)
    if expected is None:
        assert problems == []
    else:
        assert any(expected in p for p in problems), problems
