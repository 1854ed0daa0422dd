"""``core.inject_trigger`` and the action API client it uses: an action stores a trigger
instance through ``datastore_service.get_api_client().webhooks.post_generic_webhook``, as
StackStorm's ``contrib/core`` action does."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR
from poundcake.engine.packs.resources import TriggerTypeSpec
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.python.runner import PythonRunner
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.engine.triggers.service import upsert_trigger_type
from poundcake.ids import new_id
from tests.integration.support.datastore_helpers import engine_config

CORE = BUNDLED_PACKS_DIR / "core"
PAYLOAD_SCHEMA = {"type": "object", "properties": {"count": {"type": "integer"}}}


def run_action(config_file: Path, entry_point: Path, pack: str, **parameters: Any) -> RunnerOutcome:
    request = RunnerRequest(
        execution_id=new_id(),
        action_ref=f"{pack}.{entry_point.stem}",
        pack=pack,
        runner_type="python-script",
        entry_point=entry_point.name,
        entry_point_path=entry_point,
        pack_path=entry_point.parent.parent,
        action_parameters=parameters,
        timeout=60,
    )
    runner = PythonRunner(
        request, lambda _kind, _data: None, RunnerServices(config_file=config_file)
    )
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


def test_core_inject_trigger_stores_an_instance_and_returns_the_webhook_body(
    tmp_path: Path, scratch_database: str
) -> None:
    config = engine_config(tmp_path, database=scratch_database)
    engine = make_st2_engine(config, pool_size=1)
    with unit_of_work(make_session_factory(engine)) as session:
        spec = TriggerTypeSpec(pack="tests", name="event", payload_schema=PAYLOAD_SCHEMA)
        upsert_trigger_type(session=session, spec=spec)
    entry_point = CORE / "actions" / "inject_trigger.py"
    config_file = Path(config.source)

    outcome = run_action(
        config_file, entry_point, "core", trigger_name="tests.event", payload={"count": 3}
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert outcome.result["result"] == {"trigger": "tests.event", "payload": {"count": 3}}
    with make_session_factory(engine)() as session:
        stored = [
            (row.trigger, row.payload) for row in session.scalars(sa.select(TriggerInstanceDB))
        ]
    assert stored == [("tests.event", {"count": 3})]

    # The older parameter name works; both, neither, an unknown trigger or a payload that breaks
    # the trigger type's schema fail with StackStorm's messages and store nothing.
    assert run_action(config_file, entry_point, "core", trigger="tests.event").status is (
        ExecutionStatus.SUCCEEDED
    )
    both = run_action(
        config_file, entry_point, "core", trigger="tests.event", trigger_name="tests.event"
    )
    assert "mutually exclusive" in both.result["stderr"]
    neither = run_action(config_file, entry_point, "core")
    assert "You must include the `trigger_name` parameter." in neither.result["stderr"]
    unknown = run_action(config_file, entry_point, "core", trigger_name="tests.nothing")
    assert 'Trigger "tests.nothing" does not exist' in unknown.result["stderr"]
    invalid = run_action(
        config_file, entry_point, "core", trigger_name="tests.event", payload={"count": "x"}
    )
    assert invalid.status is ExecutionStatus.FAILED
    with make_session_factory(engine)() as session:
        count = session.scalar(sa.select(sa.func.count()).select_from(TriggerInstanceDB))
    engine.dispose()
    assert count == 2


def test_the_action_api_client_names_what_it_does_not_offer(
    tmp_path: Path, scratch_database: str
) -> None:
    config = engine_config(tmp_path, database=scratch_database)
    entry_point = tmp_path / "packs" / "tests" / "actions" / "list_actions.py"
    entry_point.parent.mkdir(parents=True)
    entry_point.write_text(
        textwrap.dedent(
            """
            from st2common.runners.base_action import Action

            class ListActions(Action):
                def run(self):
                    client = self.action_service.datastore_service.get_api_client()
                    return client.actions.get_all()
            """
        )
    )
    outcome = run_action(Path(config.source), entry_point, "tests")
    assert outcome.status is ExecutionStatus.FAILED
    assert (
        "client.actions needs st2client: list it in the pack's requirements.txt"
        in (outcome.result["stderr"])
    )
