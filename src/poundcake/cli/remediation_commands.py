"""``poundcake alerts|requests|cabs``: what operators ask during an incident.

They read the database directly (the operator is on the host; no API token needed) and show
tables and trees, or the API's JSON with ``--json``. ``cabs validate`` and ``cabs apply`` talk
to the engine's API with ``ST2_API_URL`` and ``ST2_API_KEY``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree
from sqlalchemy.orm import Session, sessionmaker

from poundcake.cli.common import fail, handles_errors, out
from poundcake.config import PoundCakeConfig, load_poundcake_config, load_settings
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.session import make_session_factory
from poundcake.remediation.cabs.definition import load_cab_directory
from poundcake.remediation.cabs.guard_fields import guards_summary
from poundcake.remediation.cabs.run_safety import RunSafety
from poundcake.remediation.cabs.service import (
    applied_cabs,
    apply_cabs,
    cabs_directory,
    cabs_pack_directory,
    run_safety_problems,
    validate_cabs,
)
from poundcake.remediation.engine_api import EngineClient
from poundcake.remediation.tracking.trail import (
    AlertFilters,
    alert_detail,
    alert_document,
    list_alerts,
    request_trail,
)

alerts_app = typer.Typer(no_args_is_help=True, help="Alert episodes and their remediation.")
requests_app = typer.Typer(no_args_is_help=True, help="The trail of a request.")
cabs_app = typer.Typer(no_args_is_help=True, help="CABs: list, validate against the engine, apply.")

EnvFile = Annotated[
    Path | None, typer.Option("--env-file", help="Read settings from this file instead of ./.env.")
]
AsJson = Annotated[bool, typer.Option("--json", "-j", help="Print JSON.")]


def _config(env_file: Path | None) -> PoundCakeConfig:
    return load_poundcake_config(load_settings(env_file))


@contextmanager
def _session(config: PoundCakeConfig) -> Iterator[Session]:
    db_engine = make_poundcake_engine(config, pool_size=1)
    factory: sessionmaker[Session] = make_session_factory(db_engine)
    try:
        with factory() as session:
            yield session
    finally:
        db_engine.dispose()


def _print_json(document: Any) -> None:
    out.print(json.dumps(document, indent=2, default=str), markup=False)


@alerts_app.command("list")
@handles_errors
def alerts_list(
    state: Annotated[str | None, typer.Option(help="received, matched, remediating, ...")] = None,
    severity: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option(help="Part of the alert name.")] = None,
    status: Annotated[str | None, typer.Option(help="firing or resolved")] = None,
    limit: Annotated[int, typer.Option("-n", "--limit")] = 50,
    as_json: AsJson = False,
    env_file: EnvFile = None,
) -> None:
    """Alert episodes, most recently updated first."""
    filters = AlertFilters(state=state, alertmanager_status=status, severity=severity, name=name)
    with _session(_config(env_file)) as session:
        total, alerts = list_alerts(session, filters, limit=limit)
        documents = [alert_document(alert) for alert in alerts]
    if as_json:
        _print_json(documents)
        return
    table = Table("id", "alert", "severity", "status", "state", "cab", "deliveries", "updated")
    for alert in documents:
        table.add_row(
            alert["id"],
            alert["alert_name"],
            alert["severity"] or "",
            alert["status"],
            alert["state"],
            alert["cab_name"] or "",
            str(alert["delivery_count"]),
            alert["updated_at"],
        )
    out.print(table)
    out.print(f"{len(documents)} of {total} episode(s)")


@alerts_app.command("show")
@handles_errors
def alerts_show(alert_id: str, as_json: AsJson = False, env_file: EnvFile = None) -> None:
    """One episode: its deliveries, the requests that carried it, its remediation."""
    with _session(_config(env_file)) as session:
        detail = alert_detail(session, alert_id)
    if as_json:
        _print_json(detail)
        return
    tree = Tree(
        f"alert {detail['id']} {detail['alert_name']} ({detail['status']}, {detail['state']})"
    )
    if detail["state_reason"]:
        tree.add(f"reason: {detail['state_reason']}")
    _add_run_safety(tree, detail)
    labels = tree.add("labels")
    for key, value in sorted(detail["labels"].items()):
        labels.add(f"{key}={value}")
    deliveries = tree.add(f"{len(detail['deliveries'])} delivery(ies)")
    for delivery in detail["deliveries"]:
        deliveries.add(
            f"{delivery['received_at']} {delivery['status']} request {delivery['request_id']}"
            f" -> {delivery['outcome'] or 'pending'}"
        )
    _add_decisions(tree, detail["decisions"])
    _add_remediation(tree, detail["remediation"])
    out.print(tree)


def _add_run_safety(parent: Tree, alert: dict[str, Any]) -> None:
    """Issue 21's outcomes of an episode: its silence, verification and resumed runs."""
    silence = alert.get("silence")
    if silence:
        parent.add(
            f"silence {silence['silence_id'] or '(not created)'}: {silence['state']}"
            + (f" at {silence['expired_at']}" if silence["expired_at"] else "")
        )
    if alert.get("verification"):
        parent.add(f"verification: {alert['verification']} ({alert['verification_reason']})")
    if alert.get("abandoned_retries"):
        parent.add(f"abandoned runs resumed: {alert['abandoned_retries']}")


def _add_decisions(parent: Tree, decisions: list[dict[str, Any]]) -> None:
    """The guards' decisions: matched CABs first; the misses only as a count."""
    misses = [d for d in decisions if d["decision"] == "not_matched"]
    node = parent.add(f"{len(decisions)} guard decision(s)")
    for decision in decisions:
        if decision["decision"] == "not_matched":
            continue
        line = f"{decision['decided_at']} {decision['cab']}: {decision['decision']}"
        if decision["decision"] != "run":
            line += f" ({decision['reason']})"
        if decision["detail"]:
            line += f": {decision['detail']}"
        leaf = node.add(line)
        for step in decision["rendered"] or []:
            leaf.add(f"would run step {step['order']} {step['action']} {step['parameters']}")
    if misses:
        names = ", ".join(f"{d['cab']} ({d['detail']})" for d in misses)
        node.add(f"not matched: {names}")


def _add_remediation(parent: Tree, remediation: dict[str, Any]) -> None:
    instance = remediation["trigger_instance"]
    if instance is None:
        parent.add("not dispatched to the engine")
        return
    node = parent.add(f"trigger instance {instance['id']} ({instance['status']})")
    for enforcement in remediation["rule_enforcements"]:
        line = f"rule {enforcement['rule']}: {enforcement['status']}"
        if enforcement["failure_reason"]:
            line += f" ({enforcement['failure_reason']})"
        node.add(line)
    for execution in remediation["executions"]:
        run = node.add(f"execution {execution['id']} {execution['action']}: {execution['status']}")
        for step in execution["steps"]:
            extension = step["extension"] or {}
            matched = extension.get("result_matched")
            verdict = "" if matched is None else f", result matched: {matched}"
            step_node = run.add(
                f"step {step['step_order'] or '?'} {step['action']} {step['id']}: "
                f"{step['status']}{verdict}"
            )
            output = _output(step["result"])
            if output:
                step_node.add(output)


def _output(result: Any) -> str:
    if not isinstance(result, dict):
        return ""
    text = str(result.get("stdout") or result.get("stderr") or "").strip()
    return text if len(text) <= 200 else text[:200] + "..."


@requests_app.command("show")
@handles_errors
def requests_show(request_id: str, as_json: AsJson = False, env_file: EnvFile = None) -> None:
    """The trail of one request as a tree: the call, its alerts and every step's result."""
    with _session(_config(env_file)) as session:
        trail = request_trail(session, request_id)
    if as_json:
        _print_json(trail)
        return
    call = trail["call"]
    title = f"request {request_id}"
    if call:
        title += (
            f": {call['method']} {call['path']} -> {call['status_code']} at {call['received_at']}"
        )
    tree = Tree(title)
    for alert in trail["alerts"]:
        how = "started the remediation" if alert["started_remediation"] else "repeat delivery"
        node = tree.add(
            f"alert {alert['id']} {alert['alert_name']} ({alert['delivery']['status']}; "
            f"{how}; now {alert['state']})"
        )
        _add_run_safety(node, alert)
        _add_decisions(node, alert["decisions"])
        _add_remediation(node, alert["remediation"])
    if not trail["alerts"]:
        tree.add("no alerts")
    out.print(tree)


@cabs_app.command("dir")
@handles_errors
def cabs_dir(env_file: EnvFile = None) -> None:
    """Print the directory CAB files are read from (POUNDCAKE_CABS_DIR)."""
    out.print(str(cabs_directory(_config(env_file))))


def _run_safety_summary(safety: RunSafety) -> str:
    """``silence, verify 300s -> escalate, retry 2`` (``-`` when every default holds)."""
    parts = []
    if safety.silence:
        parts.append("silence")
    if safety.verify_within is not None:
        then = f" -> {safety.on_unverified}" if safety.on_unverified else ""
        parts.append(f"verify {safety.verify_within}s{then}")
    if safety.retry_on_abandoned:
        parts.append(f"retry abandoned {safety.retry_on_abandoned}")
    return ", ".join(parts) or "-"


@cabs_app.command("list")
@handles_errors
def cabs_list(as_json: AsJson = False, env_file: EnvFile = None) -> None:
    """The CAB files and whether the engine holds each."""
    config = _config(env_file)
    cabs, problems = load_cab_directory(cabs_directory(config))
    with _session(config) as session:
        applied = {row.cab_name for row in applied_cabs(session)}
    if as_json:
        _print_json([{**cab.document(), "applied": cab.name in applied} for cab in cabs])
        return
    table = Table(
        "name",
        "alert_name_pattern",
        "severity",
        "steps",
        "stop on failure",
        "run safety",
        "guards",
        "applied",
    )
    for cab in cabs:
        table.add_row(
            cab.name,
            cab.alert_name_pattern,
            ",".join(cab.severity_filter) or "any",
            str(len(cab.steps)),
            "yes" if cab.stop_on_first_failure else "no",
            _run_safety_summary(cab.run_safety),
            guards_summary(cab.guards),
            "yes" if cab.name in applied else "no",
        )
    out.print(table)
    for problem in problems:
        out.print(f"invalid: {problem}")


def _engine_api(config: PoundCakeConfig) -> EngineClient:
    return EngineClient.from_settings(config.settings)


@cabs_app.command("validate")
@handles_errors
def cabs_validate(env_file: EnvFile = None) -> None:
    """Check every CAB file, and each step's action and parameters against the engine."""
    config = _config(env_file)
    directory = cabs_directory(config)
    cabs, problems = load_cab_directory(directory)
    problems.extend(run_safety_problems(cabs, alertmanager_url=config.settings.alertmanager_url))
    engine_api = _engine_api(config)
    try:
        problems.extend(validate_cabs(cabs, engine_api))
    finally:
        engine_api.close()
    for problem in problems:
        out.print(f"invalid: {problem}")
    if problems:
        fail(f"{len(problems)} problem(s) in {directory}")
    out.print(f"{len(cabs)} CAB(s) in {directory} are valid.")


@cabs_app.command("apply")
@handles_errors
def cabs_apply(env_file: EnvFile = None) -> None:
    """Make the engine hold exactly the CAB files (rules, workflows, extension rows)."""
    config = _config(env_file)
    engine_api = _engine_api(config)
    db_engine = make_poundcake_engine(config, pool_size=1)
    try:
        cabs, problems = load_cab_directory(cabs_directory(config))
        if problems:
            fail("; ".join(str(problem) for problem in problems))
        report = apply_cabs(
            cabs,
            engine_api=engine_api,
            pack_dir=cabs_pack_directory(config),
            sessions=make_session_factory(db_engine),
            alertmanager_url=config.settings.alertmanager_url,
        )
    finally:
        engine_api.close()
        db_engine.dispose()
    out.print(
        f"Applied {len(report.applied)} CAB(s): {len(report.changed)} changed"
        + (f", removed {', '.join(report.removed)}" if report.removed else "")
        + "."
    )


def add_remediation_commands(app: typer.Typer) -> None:
    """Add ``alerts``, ``requests`` and ``cabs`` to the ``poundcake`` command."""
    app.add_typer(alerts_app, name="alerts")
    app.add_typer(requests_app, name="requests")
    app.add_typer(cabs_app, name="cabs")
