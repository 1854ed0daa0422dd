"""Registering the bundled core pack and the fixture packs, on SQLite and on the real MariaDB.

Runner plugins are added over time; these tests expect every action whose runner type
``registry.runner_types()`` knows to register, and every other one to fail by name.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config, load_st2_config
from poundcake.db.base import Base
from poundcake.db.engine import make_st2_engine
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.models import (
    ActionDB,
    ConfigDB,
    ConfigSchemaDB,
    PackDB,
    PolicyDB,
    PolicyTypeDB,
    RuleDB,
    RunnerTypeDB,
    SensorTypeDB,
    TriggerDB,
    TriggerTypeDB,
)
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR, content_locations
from poundcake.engine.packs.service import RegistrationReport, register_content
from poundcake.engine.runners.registry import runner_types
from poundcake.engine.triggers.service import BUILTIN_TRIGGER_TYPES
from poundcake.exceptions import NotFoundError
from tests.integration.support.commands import command_environment
from tests.paths import FIXTURE_PACKS

FIXTURES = FIXTURE_PACKS
GOOD = FIXTURES / "good"
BROKEN = FIXTURES / "broken"
REGISTERED_TABLES: tuple[type[Base], ...] = (
    PackDB,
    ConfigSchemaDB,
    ConfigDB,
    RunnerTypeDB,
    ActionDB,
    TriggerTypeDB,
    TriggerDB,
    SensorTypeDB,
    RuleDB,
    PolicyTypeDB,
    PolicyDB,
)
WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


@dataclass
class Target:
    """One engine database with the content configuration of a test."""

    config: St2Config
    conf_file: Path
    factory: sessionmaker[Session]
    engine: sa.Engine

    def register(self, **options: Any) -> RegistrationReport:
        with unit_of_work(self.factory) as session:
            return register_content(
                session=session,
                locations=content_locations(self.config),
                system_user=self.config.system_user,
                **options,
            )

    def session(self) -> Session:
        return self.factory()


def database_section(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'engine.sqlite3'}\n"
    name = request.getfixturevalue("scratch_database")
    return f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {name}\n"


@contextmanager
def make_target(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    backend: str,
    *pack_paths: Path,
    extra_conf: str = "",
) -> Iterator[Target]:
    conf_file = tmp_path / "st2.conf"
    conf_file.write_text(
        database_section(backend, tmp_path, request)
        + f"[content]\npacks_base_paths = {':'.join(str(path) for path in pack_paths)}\n"
        + f"[system]\nbase_path = {FIXTURES}\n"
        + extra_conf
    )
    config = load_st2_config(conf_file)
    setup_engine_schema(config)
    engine = make_st2_engine(config, pool_size=2)
    try:
        yield Target(config, conf_file, make_session_factory(engine), engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "mariadb"])
def target(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    with make_target(tmp_path, request, request.param, GOOD) as built:
        yield built


@pytest.fixture
def sqlite_target(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Target]:
    with make_target(tmp_path, request, "sqlite", GOOD, BROKEN) as built:
        yield built


# The operations packs bundled next to the system packs (docs/packs.md).
OPERATIONS_PACKS = ("email", "http", "jenkins", "linux", "network", "slack")
# Every pack of the repository's packs/ directory, in discovery (name) order.
BUNDLED_REFS = sorted(["core", "packs", "poundcake", *OPERATIONS_PACKS])
PACK_REFS = {
    "core": "core",
    "packs": "packs",
    **{name: name for name in OPERATIONS_PACKS},
    "monitoring": "monitoring",
    "my-utils": "utils",
    "network_tools": "nettools",
}


def action_files(*pack_dirs: Path) -> dict[str, tuple[str, Path]]:
    """Map the ref of every action file in these packs to its runner type and file."""
    found = {}
    for pack_dir in pack_dirs:
        ref = PACK_REFS[pack_dir.name]
        for path in sorted((pack_dir / "actions").glob("*.yaml")):
            document = yaml.safe_load(path.read_text())
            found[f"{ref}.{document['name']}"] = (document["runner_type"], path)
    return found


CORE_ACTIONS = action_files(
    BUNDLED_PACKS_DIR / "core",
    BUNDLED_PACKS_DIR / "packs",
    *(BUNDLED_PACKS_DIR / name for name in OPERATIONS_PACKS),
)
GOOD_ACTIONS = action_files(*sorted(path for path in GOOD.iterdir() if path.is_dir()))


def expected_actions(actions: dict[str, tuple[str, Path]]) -> tuple[set[str], set[str]]:
    """Split actions into those whose runner exists and the files of those whose does not."""
    known = set(runner_types())
    registered = {ref for ref, (runner, _) in actions.items() if runner in known}
    failing = {str(path) for ref, (runner, path) in actions.items() if runner not in known}
    return registered, failing


def rows(session: Session, model: type[Base]) -> list[Any]:
    return list(session.scalars(sa.select(model)))


def snapshot(session: Session) -> dict[str, dict[str, dict[str, Any]]]:
    """Every registered row, by table and id, with every column."""
    tables: dict[str, dict[str, dict[str, Any]]] = {}
    for model in REGISTERED_TABLES:
        columns = [column.key for column in sa.inspect(model).column_attrs]
        tables[model.__tablename__] = {
            row.id: {column: getattr(row, column) for column in columns}
            for row in rows(session, model)
        }
    return tables


def one(session: Session, model: type[Base], **where: Any) -> Any:
    return session.scalars(sa.select(model).filter_by(**where)).one()


# --- the service ----------------------------------------------------------------------------


def test_core_and_fixture_packs_register(target: Target) -> None:
    report = target.register()
    core_registered, core_failing = expected_actions(CORE_ACTIONS)
    good_registered, good_failing = expected_actions(GOOD_ACTIONS)
    assert {failure.path for failure in report.failures} == core_failing | good_failing
    assert all(failure.field == "runner_type" for failure in report.failures)
    assert report.packs == [*BUNDLED_REFS, "monitoring", "utils", "nettools"]
    assert report.counts == {
        "packs": len(BUNDLED_REFS) + 3,
        "triggers": 2,
        "sensors": 1,
        "runners": len(runner_types()),
        "actions": len(core_registered | good_registered),
        "rules": 6,
        "aliases": 0,
        "policy types": 3,
        "policies": 2,
        "configs": 1,
    }
    with target.session() as session:
        assert {row.name for row in rows(session, RunnerTypeDB)} == set(runner_types())
        actions = {row.ref: row for row in rows(session, ActionDB)}
        assert set(actions) == core_registered | good_registered
        assert core_registered <= set(actions), "every core action whose runner exists"
        for ref in core_registered:
            runner, path = CORE_ACTIONS[ref]
            written = yaml.safe_load(path.read_text())
            action = actions[ref]
            assert action.uid == f"action:{action.pack}:{written['name']}"
            assert action.pack in ("core", "packs", *OPERATIONS_PACKS)
            assert action.runner_type == runner
            assert action.parameters == written.get("parameters", {}), ref
            assert action.metadata_file == f"actions/{path.name}"
            assert action.entry_point == written.get("entry_point", "")
        if "core.sendmail" in actions:
            sendmail = actions["core.sendmail"]
            assert sendmail.entry_point == "send_mail/send_mail"
            assert sendmail.parameters["sendmail_binary"]["default"] == "/usr/sbin/sendmail"
            assert sendmail.parameters["to"]["required"] is True
        if "monitoring.collect_metrics" in actions:
            collect = actions["monitoring.collect_metrics"]
            assert collect.parameters["api_token"]["secret"] is True
            assert collect.notify["on-failure"]["routes"] == ["ops"]
            assert collect.output_schema["properties"]["samples"]["type"] == "array"
            assert collect.tags == [{"name": "team", "value": "sre"}]

        packs = {row.ref: row for row in rows(session, PackDB)}
        assert set(packs) == {*BUNDLED_REFS, "monitoring", "utils", "nettools"}
        monitoring = packs["monitoring"]
        assert (monitoring.version, monitoring.uid, monitoring.name) == (
            "0.4.0",
            "pack:monitoring",
            "Monitoring Tools",
        )
        assert monitoring.dependencies == ["core"]
        assert monitoring.path == str((GOOD / "monitoring").resolve())
        assert "actions/scripts/check_host.sh" in monitoring.files
        assert packs["utils"].python_versions == ["3"]
        assert packs["core"].path == str(BUNDLED_PACKS_DIR / "core")


def test_rules_triggers_and_shadow_triggers(target: Target) -> None:
    target.register()
    with target.session() as session:
        rules = {row.ref: row for row in rows(session, RuleDB)}
        assert rules["monitoring.alert_webhook"].enabled is False
        assert rules["monitoring.alert_webhook_audit"].enabled is False
        assert rules["monitoring.remediate_threshold"].enabled is True
        assert rules["monitoring.alert_webhook"].type == {"ref": "standard", "parameters": {}}
        assert rules["monitoring.alert_webhook_audit"].type == {"ref": "backstop", "parameters": {}}
        assert rules["monitoring.alert_webhook"].context == {"user": "stanley"}
        assert rules["monitoring.on_action_failed"].context == {
            "user": "stanley",
            "source": "fixtures",
        }
        threshold = rules["monitoring.remediate_threshold"]
        assert threshold.action_ref == "monitoring.collect_metrics"
        assert threshold.action["parameters"]["labels"] == {"host": "{{ trigger.host }}"}
        assert threshold.criteria["trigger.value"] == {"type": "greaterthan", "pattern": 90}
        assert threshold.uid == "rule:monitoring:remediate_threshold"
        assert threshold.metadata_file == "rules/remediate_threshold.yaml"

        webhook = one(session, TriggerDB, ref=rules["monitoring.alert_webhook"].trigger)
        assert rules["monitoring.alert_webhook_audit"].trigger == webhook.ref
        assert (webhook.type, webhook.pack, webhook.parameters) == (
            "core.st2.webhook",
            "core",
            {"url": "monitoring/alerts"},
        )
        assert uuid.UUID(webhook.name).version == 4
        assert webhook.ref == f"core.{webhook.name}"
        assert webhook.ref_count == 2
        timer = one(session, TriggerDB, ref=rules["monitoring.every_five_minutes"].trigger)
        assert (timer.type, timer.parameters, timer.ref_count) == (
            "core.st2.IntervalTimer",
            {"unit": "minutes", "delta": 5},
            1,
        )
        poll = one(session, TriggerDB, ref=rules["monitoring.cpu_poll"].trigger)
        assert (poll.pack, poll.type, poll.ref_count) == ("monitoring", "monitoring.metric_poll", 1)
        assert rules["monitoring.on_action_failed"].trigger == "core.st2.generic.actiontrigger"
        assert rules["monitoring.remediate_threshold"].trigger == "monitoring.threshold_crossed"

        trigger_types = {row.ref: row for row in rows(session, TriggerTypeDB)}
        assert {spec.ref for spec in BUILTIN_TRIGGER_TYPES} <= set(trigger_types)
        webhook_type = trigger_types["core.st2.webhook"]
        assert webhook_type.parameters_schema["properties"]["url"]["required"] is True
        assert webhook_type.uid == "trigger_type:core:st2.webhook"
        assert set(trigger_types) - {spec.ref for spec in BUILTIN_TRIGGER_TYPES} == {
            "monitoring.threshold_crossed",
            "monitoring.metric_poll",
            "monitoring.maintenance_window",
            "poundcake.alert",
        }
        assert trigger_types["monitoring.threshold_crossed"].metadata_file == (
            "sensors/metric_sensor.yaml"
        )
        triggers = {row.ref: row for row in rows(session, TriggerDB)}
        for ref, trigger_type in trigger_types.items():
            if trigger_type.parameters_schema:
                assert ref not in triggers, f"{ref} takes parameters: no shadow trigger"
                continue
            shadow = triggers[ref]
            assert (shadow.name, shadow.pack, shadow.type, shadow.parameters) == (
                trigger_type.name,
                trigger_type.pack,
                ref,
                {},
            )
        assert (
            len(triggers) == sum(1 for t in trigger_types.values() if not t.parameters_schema) + 3
        )

        sensor = one(session, SensorTypeDB, ref="monitoring.MetricSensor")
        assert sensor.entry_point == "sensors.metric_sensor.MetricSensor"
        assert sensor.trigger_types == ["monitoring.threshold_crossed", "monitoring.metric_poll"]
        assert (sensor.poll_interval, sensor.enabled) == (30, True)


def test_configs_and_policies(target: Target) -> None:
    target.register()
    with target.session() as session:
        config = one(session, ConfigDB, pack="monitoring")
        assert config.values == {
            "api_url": "https://metrics.example.com/api",
            "api_token": "{{ st2kv.system.metrics_token }}",
            "timeout": 10,
            "verify_ssl": True,
            "thresholds": {"warning": 70, "critical": 95},
            "regions": ["eu-west-1"],
            "proxy": None,
        }
        schema = one(session, ConfigSchemaDB, pack="monitoring")
        assert schema.attributes["api_token"] == {
            "description": "Token for the metrics API.",
            "type": "string",
            "secret": True,
            "required": True,
        }
        assert {row.ref for row in rows(session, PolicyTypeDB)} == {
            "action.concurrency",
            "action.concurrency.attr",
            "action.retry",
        }
        policies = {row.ref: row for row in rows(session, PolicyDB)}
        concurrency = policies["monitoring.check_host.concurrency"]
        assert (concurrency.resource_ref, concurrency.policy_type) == (
            "monitoring.check_host",
            "action.concurrency",
        )
        assert concurrency.parameters == {"threshold": 2, "action": "delay"}
        retry = policies["monitoring.http.retry"]
        assert retry.parameters == {"retry_on": "timeout", "delay": 2, "max_retry_count": 2}
        assert retry.enabled is True
        assert retry.uid == "policy:monitoring:http.retry"


def test_registering_again_keeps_ids_and_writes_nothing(target: Target) -> None:
    first = target.register()
    with target.session() as session:
        before = snapshot(session)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if WRITES.match(statement):
            statements.append(statement)

    sa.event.listen(target.engine, "before_cursor_execute", record)
    try:
        second = target.register()
    finally:
        sa.event.remove(target.engine, "before_cursor_execute", record)
    assert statements == []
    assert second.counts == first.counts
    with target.session() as session:
        assert snapshot(session) == before
    assert sum(len(table) for table in before.values()) > 50


def test_re_registration_moves_rule_references_between_triggers(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    packs = tmp_path / "packs"
    shutil.copytree(GOOD / "monitoring", packs / "monitoring")
    rules_dir = packs / "monitoring" / "rules"
    with make_target(tmp_path, request, "sqlite", packs) as target:
        target.register()
        assert webhook_triggers(target) == {"monitoring/alerts": 2}
        audit = rules_dir / "alert_webhook_audit.yaml"
        audit.write_text(audit.read_text().replace("monitoring/alerts", "monitoring/audit"))
        target.register()
        assert webhook_triggers(target) == {"monitoring/alerts": 1, "monitoring/audit": 1}
        main = rules_dir / "alert_webhook.yaml"
        main.write_text(main.read_text().replace("monitoring/alerts", "monitoring/audit"))
        target.register()
        assert webhook_triggers(target) == {"monitoring/audit": 2}


def webhook_triggers(target: Target) -> dict[str, int]:
    """The webhook triggers, by URL, with their reference counts."""
    with target.session() as session:
        found = session.scalars(sa.select(TriggerDB).filter_by(type="core.st2.webhook"))
        return {trigger.parameters["url"]: trigger.ref_count for trigger in found}


@pytest.mark.parametrize("refuse", [True, False])
def test_workflows_failing_inspection_are_refused_unless_configured_otherwise(
    tmp_path: Path, request: pytest.FixtureRequest, refuse: bool
) -> None:
    extra = "" if refuse else "[workflow_engine]\nrefuse_at_registration = False\n"
    pack = FIXTURES / "refused" / "orquesta_refused"
    failing = ("bad_expressions", "lonely_join", "misplaced_join", "unknown_next", "unreachable")
    with make_target(tmp_path, request, "sqlite", pack.parent, extra_conf=extra) as target:
        report = target.register(only_packs=["orquesta_refused"])
        with target.session() as session:
            refs = set(
                session.scalars(sa.select(ActionDB.ref).where(ActionDB.pack == "orquesta_refused"))
            )
    expected = {f"orquesta_refused.{name}" for name in ("fine", "missing_action")}
    problems = {str(failure.path): str(failure) for failure in report.failures}
    warned = [w for w in report.warnings if "fails inspection" in w]
    if refuse:
        assert refs == expected
        assert set(problems) == {str(pack / "actions" / f"{name}.yaml") for name in failing}
        assert not warned
    else:
        # As StackStorm: registered, each run fails with the inspection's errors.
        assert refs == expected | {f"orquesta_refused.{name}" for name in failing}
        assert problems == {}
        assert sorted(w.split(": entry_point: ")[0] for w in warned) == sorted(
            str(pack / "actions" / f"{name}.yaml") for name in failing
        )
    lonely = "lonely_join.yaml fails inspection: tasks.report.join: semantic error: "
    assert any(lonely in text for text in [*problems.values(), *warned])


def test_fields_stackstorm_drops_register_with_a_warning_naming_them(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pack = tmp_path / "content" / "lenient"
    files = {
        "pack.yaml": "name: lenient\ndescription: d\nversion: 1.0.0\nauthor: a\nhomepage: x\n",
        "sensors/s.yaml": "class_name: S\nentry_point: s.py\nname: s\n",
        "aliases/a.yaml": "name: a\naction_ref: core.noop\nformats: ['kv {{k}} = {{v}}', 'ok']\n",
    }
    for relative, text in files.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text)
    with make_target(tmp_path, request, "sqlite", pack.parent) as target:
        report = target.register(only_packs=["lenient"])
    assert report.failures == []
    assert report.counts["sensors"] == report.counts["aliases"] == 1
    assert report.warnings[:2] == [
        f"{pack / 'pack.yaml'}: homepage: is not a StackStorm pack field; ignored",
        f"{pack / 'sensors' / 's.yaml'}: name: is not a StackStorm sensor field; ignored",
    ]
    alias_warning = f"{pack / 'aliases' / 'a.yaml'}: formats.0: format " + '"kv {{k}} = {{v}}"'
    assert report.warnings[2].startswith(alias_warning + " is not a valid expression (")
    assert report.warnings[2].endswith("; it never matches") and len(report.warnings) == 3


def test_broken_files_are_reported_and_the_rest_registers(sqlite_target: Target) -> None:
    report = sqlite_target.register()
    content = BROKEN / "broken_content"
    expected = {
        (str(BROKEN / "no_author" / "pack.yaml"), "author"),
        (str(content / "actions" / "bad_yaml.yaml"), None),
        (str(content / "actions" / "no_runner_type.yaml"), "runner_type"),
        (str(content / "actions" / "unknown_runner.yaml"), "runner_type"),
        (str(content / "actions" / "bad_parameter.yaml"), "parameters.count.type"),
        (str(content / "rules" / "unknown_trigger.yaml"), "trigger.type"),
    }
    expected |= {(path, "runner_type") for path in expected_actions(CORE_ACTIONS)[1]}
    expected |= {(path, "runner_type") for path in expected_actions(GOOD_ACTIONS)[1]}
    assert {(failure.path, failure.field) for failure in report.failures} == expected
    messages = "\n".join(str(failure) for failure in report.failures)
    assert "bad_yaml.yaml: is not valid YAML (line 6" in messages
    assert 'unknown_runner.yaml: runner_type: runner type "no-such-runner" is not registered' in (
        messages
    )
    assert "no_author/pack.yaml: author: is required" in messages
    with sqlite_target.session() as session:
        actions = {row.ref for row in rows(session, ActionDB)}
        rules = {row.ref for row in rows(session, RuleDB)}
        packs = {row.ref for row in rows(session, PackDB)}
    assert "broken_content.good_one" in actions
    assert not {ref for ref in actions if ref.startswith("broken_content.")} - {
        "broken_content.good_one"
    }
    assert expected_actions(GOOD_ACTIONS)[0] <= actions
    assert "core.noop" in actions
    assert "broken_content.good_rule" in rules
    assert "broken_content.unknown_trigger" not in rules
    assert "no_author" not in packs
    assert "noop" in runner_types(), "good_one and good_rule rely on the noop runner"


def test_only_named_packs(sqlite_target: Target) -> None:
    report = sqlite_target.register(only_packs=["utils"])
    assert report.packs == ["utils"]
    assert report.counts["actions"] == 1
    with pytest.raises(NotFoundError, match='Pack "nope" not found on disk'):
        sqlite_target.register(only_packs=["nope"])


# --- the command ----------------------------------------------------------------------------


def st2ctl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "poundcake.cli.st2ctl", *args],
        env=command_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_st2ctl_reload_register_all(target: Target, tmp_path: Path) -> None:
    result = st2ctl(tmp_path, "reload", "--register-all", "--config-file", str(target.conf_file))
    core_registered, core_failing = expected_actions(CORE_ACTIONS)
    good_registered, good_failing = expected_actions(GOOD_ACTIONS)
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == f"Registering content...[flags = --config-file {target.conf_file} --register-all]"
    )
    assert lines[1:] == [
        "Registered 2 triggers.",
        "Registered 1 sensors.",
        f"Registered {len(runner_types())} runners.",
        f"Registered {len(core_registered | good_registered)} actions.",
        "Registered 6 rules.",
        "Registered 0 aliases.",
        "Registered 3 policy types.",
        "Registered 2 policies.",
        "Registered 1 configs.",
    ]
    if core_failing or good_failing:
        assert result.returncode != 0
        for path in core_failing | good_failing:
            assert f"Failed to register: {path}: runner_type:" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    with target.session() as session:
        assert core_registered <= {row.ref for row in rows(session, ActionDB)}


def test_st2ctl_reload_fails_on_broken_packs_unless_told_not_to(
    sqlite_target: Target, tmp_path: Path
) -> None:
    conf = str(sqlite_target.conf_file)
    failing = st2ctl(
        tmp_path, "reload", "--register-actions", "--register-runners", "--config-file", conf
    )
    assert failing.returncode == 1
    assert "--register-runners --register-actions]" in failing.stdout.splitlines()[0]
    assert failing.stdout.splitlines()[1:] == [
        f"Registered {len(runner_types())} runners.",
        f"Registered {len(expected_actions(CORE_ACTIONS | GOOD_ACTIONS)[0]) + 1} actions.",
    ]
    assert "bad_parameter.yaml: parameters.count.type: 'intger' is not one of" in failing.stderr
    assert "no_author/pack.yaml: author: is required" in failing.stderr
    assert failing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in failing.stderr
    tolerant = st2ctl(
        tmp_path, "reload", "--config-file", conf, "--register-no-fail-on-failure", "-v"
    )
    assert tolerant.returncode == 0, tolerant.stderr
    assert "bad_yaml.yaml: is not valid YAML" in tolerant.stderr
    packs = [*BUNDLED_REFS, "monitoring", "utils", "nettools", "broken_content"]
    assert f"Registered {len(packs)} packs: {', '.join(packs)}." in tolerant.stdout
    assert "Registered 7 rules." in tolerant.stdout


def test_st2ctl_reload_needs_the_engine_schema(tmp_path: Path) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\ndb_name = {tmp_path / 'empty.sqlite3'}\n")
    result = st2ctl(tmp_path, "reload", "--config-file", str(conf))
    assert result.returncode == 1
    assert result.stderr.startswith("error: the engine schema in sqlite:///")
    assert "run st2-setup-db first" in result.stderr
