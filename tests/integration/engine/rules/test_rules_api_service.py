"""Rules, webhooks, trigger instances and rule enforcements as the API services keep them, on
MariaDB (scratch database) and SQLite: ``ref_count`` and ``webhook_db`` follow every rule."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.db.types import utcnow
from poundcake.engine.messaging import Publisher
from poundcake.engine.packs.resources import RuleSpec
from poundcake.engine.rules.enforcements import (
    EnforcementFilters,
    get_rule_enforcement,
    list_rule_enforcements,
)
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.rules.service import (
    RuleFilters,
    create_rule,
    delete_rule,
    find_rule,
    list_rules,
    register_rule,
    rule_documents,
    update_rule,
)
from poundcake.engine.triggers.instances import (
    announce_trigger_instances,
    create_trigger_instance,
    get_trigger_instance,
    list_trigger_instances,
    re_emit_trigger_instance,
)
from poundcake.engine.triggers.models import TriggerDB
from poundcake.engine.triggers.service import register_builtin_trigger_types
from poundcake.engine.webhooks.models import WebhookDB
from poundcake.engine.webhooks.service import dispatch_generic, dispatch_webhook, list_webhooks
from poundcake.exceptions import ConflictError, NotFoundError, ValidationError
from poundcake.ids import new_id
from tests.integration.support.datastore_helpers import engine_config

USER = "alice"


@pytest.fixture(params=["mariadb", "sqlite"])
def config(tmp_path: Path, request: pytest.FixtureRequest) -> St2Config:
    database = request.getfixturevalue("scratch_database") if request.param == "mariadb" else None
    return engine_config(tmp_path, database=database)


@pytest.fixture
def factory(config: St2Config) -> Iterator[sessionmaker[Session]]:
    engine = make_st2_engine(config, pool_size=2)
    with unit_of_work(make_session_factory(engine)) as session:
        register_builtin_trigger_types(session=session)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with unit_of_work(factory) as session:
        yield session


def webhook_rule(name: str, url: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "pack": "examples",
        "trigger": {"type": "core.st2.webhook", "parameters": {"url": url}},
        "action": {"ref": "core.local", "parameters": {"cmd": "echo {{ trigger.body.x }}"}},
        **extra,
    }


def webhooks(session: Session) -> dict[str, tuple[str, str]]:
    """``webhook_db`` by URL: (row id, trigger ref)."""
    return {row.url: (row.id, row.trigger) for row in session.scalars(sa.select(WebhookDB))}


def webhook_triggers(session: Session) -> dict[str, int]:
    found = session.scalars(sa.select(TriggerDB).where(TriggerDB.type == "core.st2.webhook"))
    return {trigger.parameters["url"]: trigger.ref_count for trigger in found}


def test_webhook_rows_follow_rules_created_updated_and_deleted(session: Session) -> None:
    first = create_rule(session=session, document=webhook_rule("first", "alerts"), user=USER)
    second = create_rule(session=session, document=webhook_rule("second", "alerts"), user=USER)
    assert first.trigger == second.trigger
    assert webhook_triggers(session) == {"alerts": 2}
    row = session.scalars(sa.select(WebhookDB)).one()
    assert (row.url, row.name, row.type, row.trigger) == (
        "alerts",
        "alerts",
        "core.st2.webhook",
        first.trigger,
    )

    update_rule(session=session, rule=first, document=webhook_rule("first", "/other/"), user=USER)
    assert webhook_triggers(session) == {"alerts": 1, "/other/": 1}
    assert set(webhooks(session)) == {"alerts", "other"}
    assert webhooks(session)["other"][1] == first.trigger

    delete_rule(session=session, rule=second)
    assert webhook_triggers(session) == {"/other/": 1}
    assert set(webhooks(session)) == {"other"}
    delete_rule(session=session, rule=first)
    assert webhook_triggers(session) == {}
    assert webhooks(session) == {}


def test_urls_differing_in_slashes_share_one_row_that_outlives_its_first_trigger(
    session: Session,
) -> None:
    first = create_rule(session=session, document=webhook_rule("a", "/hooks/a/"), user=USER)
    second = create_rule(session=session, document=webhook_rule("b", "hooks/a"), user=USER)
    assert first.trigger != second.trigger
    row_id, trigger = webhooks(session)["hooks/a"]
    assert trigger == first.trigger
    delete_rule(session=session, rule=first)
    assert webhooks(session) == {"hooks/a": (row_id, second.trigger)}
    delete_rule(session=session, rule=second)
    assert webhooks(session) == {}


def test_rules_registered_from_pack_files_keep_webhook_rows(session: Session) -> None:
    def spec(url: str) -> RuleSpec:
        return RuleSpec(
            pack="monitoring",
            name="alert_webhook",
            trigger_type="core.st2.webhook",
            action_ref="core.local",
            trigger_parameters={"url": url},
        )

    rule = register_rule(session=session, spec=spec("monitoring/alerts"), system_user="stanley")
    assert webhooks(session)["monitoring/alerts"][1] == rule.trigger
    register_rule(session=session, spec=spec("monitoring/alerts"), system_user="stanley")
    assert webhook_triggers(session) == {"monitoring/alerts": 1}
    rule = register_rule(session=session, spec=spec("monitoring/moved"), system_user="stanley")
    assert set(webhooks(session)) == {"monitoring/moved"}
    assert webhooks(session)["monitoring/moved"][1] == rule.trigger


def test_create_refuses_bad_rules_and_taken_refs(session: Session) -> None:
    with pytest.raises(ValidationError, match=r'Trigger "core\.nope" defined in the rule'):
        create_rule(
            session=session,
            document={**webhook_rule("bad", "x"), "trigger": {"type": "core.nope"}},
            user=USER,
        )
    with pytest.raises(ValidationError, match="url"):
        create_rule(
            session=session,
            document={**webhook_rule("bad", "x"), "trigger": {"type": "core.st2.webhook"}},
            user=USER,
        )
    with pytest.raises(ValidationError, match="sounds_like"):
        create_rule(
            session=session,
            document=webhook_rule("bad", "x", criteria={"trigger.a": {"type": "sounds_like"}}),
            user=USER,
        )
    with pytest.raises(ValidationError, match="backwards"):
        create_rule(
            session=session,
            document=webhook_rule("bad", "x", type={"ref": "backwards"}),
            user=USER,
        )
    assert webhooks(session) == {}
    create_rule(session=session, document=webhook_rule("taken", "x"), user=USER)
    with pytest.raises(ConflictError, match=r"examples\.taken"):
        create_rule(session=session, document=webhook_rule("taken", "y"), user=USER)


def test_update_accepts_the_document_the_cli_sends_back_and_renames(session: Session) -> None:
    rule = create_rule(
        session=session,
        document=webhook_rule("original", "keep", context={"user": "mallory", "note": "n"}),
        user=USER,
    )
    assert rule.context == {"user": USER, "note": "n"}
    document = rule_documents(session=session, rules=[rule])[0]
    sent_back = {key: value for key, value in document.items() if key != "ref"}
    updated = update_rule(
        session=session, rule=rule, document={**sent_back, "enabled": True}, user="bob"
    )
    assert (updated.id, updated.enabled, updated.context["user"]) == (rule.id, True, "bob")
    assert webhook_triggers(session) == {"keep": 1}

    renamed = update_rule(
        session=session, rule=rule, document={**sent_back, "name": "renamed"}, user=USER
    )
    assert (renamed.id, renamed.ref, renamed.uid) == (
        rule.id,
        "examples.renamed",
        "rule:examples:renamed",
    )
    assert find_rule(session=session, ref_or_id="examples.renamed").id == rule.id
    with pytest.raises(NotFoundError):
        find_rule(session=session, ref_or_id="examples.original")
    create_rule(session=session, document=webhook_rule("other", "keep"), user=USER)
    with pytest.raises(ConflictError):
        update_rule(
            session=session, rule=renamed, document={**sent_back, "name": "other"}, user=USER
        )


def test_list_filters(session: Session) -> None:
    create_rule(session=session, document=webhook_rule("w1", "one", enabled=True), user=USER)
    create_rule(session=session, document=webhook_rule("w2", "two"), user="bob")
    create_rule(
        session=session,
        document={
            "name": "on_failure",
            "pack": "ops",
            "trigger": {"type": "core.st2.generic.actiontrigger"},
            "action": {"ref": "core.echo"},
        },
        user=USER,
    )

    def refs(**filters: Any) -> list[str]:
        _total, found = list_rules(
            session=session, filters=RuleFilters(**filters), offset=0, limit=None
        )
        return [rule.ref for rule in found]

    assert refs() == ["examples.w1", "examples.w2", "ops.on_failure"]
    assert refs(pack="ops") == ["ops.on_failure"]
    assert refs(trigger="core.st2.webhook") == ["examples.w1", "examples.w2"]
    assert refs(trigger="core.st2.generic.actiontrigger") == ["ops.on_failure"]
    assert refs(action="core.echo") == ["ops.on_failure"]
    assert refs(enabled=True) == ["examples.w1"]
    assert refs(enabled=False) == ["examples.w2", "ops.on_failure"]
    assert refs(user="bob") == ["examples.w2"]
    total, page = list_rules(session=session, filters=RuleFilters(), offset=1, limit=1)
    assert (total, [rule.ref for rule in page]) == (3, ["examples.w2"])


def test_webhook_dispatch_stores_one_instance_per_trigger(session: Session) -> None:
    first = create_rule(session=session, document=webhook_rule("a", "shared"), user=USER)
    second = create_rule(session=session, document=webhook_rule("b", "/shared"), user=USER)
    assert len(list_webhooks(session=session)) == 2
    headers = [("content-type", "application/json"), ("x-auth-token", "secret")]
    instances = dispatch_webhook(session=session, url="shared/", headers=headers, body={"x": 1})
    assert sorted(instance.trigger for instance in instances) == sorted(
        [first.trigger, second.trigger]
    )
    assert instances[0].payload == {
        "headers": {"Content-Type": "application/json"},
        "headers_lower": {"content-type": "application/json"},
        "body": {"x": 1},
    }
    assert instances[0].status == "pending"
    with pytest.raises(NotFoundError, match="Webhook missing not registered with st2"):
        dispatch_webhook(session=session, url="/missing/", headers=[], body={})


def test_generic_dispatch(session: Session) -> None:
    instance = dispatch_generic(
        session=session,
        body={"trigger": "core.st2.key_value_pair.create", "payload": {"object": {"name": "k"}}},
    )
    assert (instance.trigger, instance.payload) == (
        "core.st2.key_value_pair.create",
        {"object": {"name": "k"}},
    )
    with pytest.raises(ValidationError, match=r"^Trigger not specified\.$"):
        dispatch_generic(session=session, body={"payload": {}})
    with pytest.raises(ValidationError, match="needs to be an object"):
        dispatch_generic(session=session, body=["core.st2.key_value_pair.create"])
    with pytest.raises(ValidationError, match="does not exist"):
        dispatch_generic(session=session, body={"trigger": "core.unknown"})


def test_trigger_instances_newest_first_filters_and_re_emit(session: Session) -> None:
    older = create_trigger_instance(session=session, trigger_ref="core.t1", payload={"n": 1})
    older.occurrence_time = utcnow() - timedelta(hours=1)
    newer = create_trigger_instance(session=session, trigger_ref="core.t2", payload={"n": 2})
    newer.status = "processed"
    session.flush()

    def ids(**filters: Any) -> list[str]:
        _total, found = list_trigger_instances(session=session, offset=0, limit=None, **filters)
        return [instance.id for instance in found]

    assert ids() == [newer.id, older.id]
    assert ids(trigger="core.t1") == [older.id]
    assert ids(status="processed") == [newer.id]
    assert ids(after=utcnow() - timedelta(minutes=5)) == [newer.id]
    assert ids(before=utcnow() - timedelta(minutes=5)) == [older.id]

    copy = re_emit_trigger_instance(session=session, instance_id=older.id)
    assert (copy.trigger, copy.status) == ("core.t1", "pending")
    assert copy.payload == {"n": 1, "__context": {"original_id": older.id}}
    assert get_trigger_instance(session=session, instance_id=older.id).payload == {"n": 1}
    with pytest.raises(NotFoundError):
        re_emit_trigger_instance(session=session, instance_id=new_id())


def test_rule_enforcements_filters(session: Session) -> None:
    rule_id = new_id()

    def enforcement(rule_ref: str, age: int, execution_id: str | None) -> RuleEnforcementDB:
        row = RuleEnforcementDB(
            id=new_id(),
            trigger_instance_id=new_id(),
            execution_id=execution_id,
            rule={"ref": rule_ref, "id": rule_id if rule_ref == "a.one" else new_id()},
            rule_ref=rule_ref,
            enforced_at=utcnow() - timedelta(minutes=age),
            status="succeeded" if execution_id else "failed",
            failure_reason=None if execution_id else "action missing",
        )
        session.add(row)
        return row

    old = enforcement("a.one", 30, new_id())
    new = enforcement("b.two", 1, None)
    session.flush()

    def ids(**filters: Any) -> list[str]:
        _total, found = list_rule_enforcements(
            session=session, filters=EnforcementFilters(**filters), offset=0, limit=None
        )
        return [row.id for row in found]

    assert ids() == [new.id, old.id]
    assert ids(rule_ref="a.one") == [old.id]
    assert ids(rule_id=rule_id) == [old.id]
    assert ids(execution=old.execution_id) == [old.id]
    assert ids(trigger_instance=new.trigger_instance_id) == [new.id]
    assert ids(enforced_after=utcnow() - timedelta(minutes=10)) == [new.id]
    assert ids(enforced_before=utcnow() - timedelta(minutes=10)) == [old.id]
    assert get_rule_enforcement(session=session, enforcement_id=new.id).failure_reason == (
        "action missing"
    )
    with pytest.raises(NotFoundError):
        get_rule_enforcement(session=session, enforcement_id=new_id())


def test_rule_documents_expand_triggers(session: Session) -> None:
    rule = create_rule(session=session, document=webhook_rule("doc", "doc/url"), user=USER)
    document = rule_documents(session=session, rules=[rule])[0]
    assert document["trigger"] == {
        "type": "core.st2.webhook",
        "parameters": {"url": "doc/url"},
        "ref": rule.trigger,
    }
    assert session.scalar(sa.select(sa.func.count()).select_from(RuleDB)) == 1


def test_an_unreachable_broker_leaves_the_instance_pending_and_is_logged(
    session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    instance = create_trigger_instance(session=session, trigger_ref="core.t", payload={})
    closed_port = Publisher("amqp://guest:guest@127.0.0.1:9//")
    try:
        with caplog.at_level(logging.ERROR, logger="poundcake.engine.triggers.instances"):
            announce_trigger_instances(closed_port, [instance])
    finally:
        closed_port.close()
    assert f"Could not announce trigger instance {instance.id}" in caplog.text
    assert instance.status == "pending"
