"""Hostile alert labels and annotations through a CAB into every runner: they stay data.

A CAB (``poundcake cabs`` file -> the ``poundcake_cabs`` pack -> a rule on ``poundcake.alert``
and a steps workflow) renders alert values into each runner: ``local-shell-cmd``,
``local-shell-script``, ``remote-shell-cmd`` (a real sshd on loopback), ``python-script``,
``http-request`` (a real HTTP server on loopback), all in one steps run. The alert arrives as a
``poundcake.alert`` trigger instance and the real rules engine, scheduler and action runner do
the rest. Hypothesis generates the values from shell metacharacters, Jinja syntax, ``st2kv``
references and arbitrary unicode. For every value: the canary file never appears, and each
runner receives the value byte for byte (never rendered a second time).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings

from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.keyvalue.service import set_value
from poundcake.engine.rules.models import RuleEnforcementDB
from poundcake.engine.rules.process import RulesEngine, RulesEngineSettings
from poundcake.engine.triggers.instances import announce_trigger_instances
from poundcake.engine.webhooks.service import dispatch_generic
from poundcake.remediation.cabs.definition import parse_cab
from poundcake.remediation.cabs.pack import PACK as CABS_PACK
from poundcake.remediation.cabs.pack import write_pack
from tests.integration.support.engine_stack import EngineStack
from tests.integration.support.sshd import SshServer, running_sshd
from tests.security.hostile import VALUES, with_canary
from tests.security.peers import HttpPeer, http_peer, running_engine

ALERT_NAME = "HostileValues"
SECRET = "kv-secret-7f3e91"
SHOW_SCRIPT = '#!/bin/sh\nprintf \'<%s|%s>\' "$1" "$2"\n'
SHOW_ACTION = """\
---
name: show
runner_type: local-shell-script
description: Print the first argument between angle brackets.
enabled: true
entry_point: show.sh
parameters:
  value:
    type: string
    position: 0
  other:
    type: string
    position: 1
"""
ECHO_SCRIPT = """\
from st2common.runners.base_action import Action


class Echo(Action):
    def run(self, value, other):
        return [value, other]
"""
ECHO_ACTION = """\
---
name: echo
runner_type: python-script
description: Return the value.
enabled: true
entry_point: echo.py
parameters:
  value:
    type: string
  other:
    type: string
"""


def write_test_pack(packs_dir: Path) -> None:
    actions = packs_dir / "injpack" / "actions"
    actions.mkdir(parents=True)
    (packs_dir / "injpack" / "pack.yaml").write_text(
        "ref: injpack\nname: injpack\ndescription: Injection tests.\nversion: 1.0.0\n"
        "author: tests\n"
    )
    (actions / "show.yaml").write_text(SHOW_ACTION)
    (actions / "show.sh").write_text(SHOW_SCRIPT)
    (actions / "show.sh").chmod(0o755)
    (actions / "echo.yaml").write_text(ECHO_ACTION)
    (actions / "echo.py").write_text(ECHO_SCRIPT)


def cab_document(ssh: SshServer, peer: HttpPeer) -> dict[str, Any]:
    """One CAB whose steps hand the alert's three values to every runner."""
    first, second = "{{ alert.labels.first }}", "{{ alert.labels.second }}"
    third = "{{ alert.annotations.third }}"
    return {
        "name": "hostile_values",
        "alert_name_pattern": f"^{ALERT_NAME}$",
        "stop_on_first_failure": False,
        "steps": [
            {
                "name": "local_cmd",
                "action": "core.local",
                "parameters": {"cmd": f"printf '<%s|%s|%s>' {first} {second} {third}"},
            },
            {
                "name": "local_script",
                "action": "injpack.show",
                "parameters": {"value": first, "other": third},
            },
            {
                "name": "remote_cmd",
                "action": "core.remote",
                "parameters": {
                    "cmd": f"printf '<%s|%s>' {second} {third}",
                    "hosts": ssh.host,
                    "port": ssh.port,
                    "username": ssh.username,
                    "private_key": str(ssh.private_key_path),
                },
            },
            {
                "name": "python",
                "action": "injpack.echo",
                "parameters": {"value": first, "other": f"{second}/{third}"},
            },
            {
                "name": "http",
                "action": "core.http",
                "parameters": {
                    "url": peer.url("/receive"),
                    "method": "POST",
                    "body": second,
                    "url_hosts_whitelist": ["127.0.0.1"],
                },
            },
        ],
    }


@dataclass
class Harness:
    engine: EngineStack
    peer: HttpPeer
    canary: Path


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    directory = tmp_path_factory.mktemp("injection")
    packs_dir = directory / "packs"
    write_test_pack(packs_dir)
    with running_sshd(directory / "sshd") as ssh, http_peer() as peer:
        cab = parse_cab(cab_document(ssh, peer), source="hostile_values.yaml")
        write_pack(packs_dir / CABS_PACK, [cab])
        packs = ("core", "poundcake", "injpack", CABS_PACK)
        with running_engine(directory / "engine", packs_dir, packs) as engine:
            with unit_of_work(engine.runtime.sessions) as session:
                set_value(session, name="secret", value=SECRET)
            rules = RulesEngine(
                engine.runtime, RulesEngineSettings(batch_size=10, poll_interval=0.1)
            )
            thread = threading.Thread(target=rules.run, args=(engine.stop,), daemon=True)
            thread.start()
            engine.threads.append(thread)
            (directory / "canary").mkdir()
            yield Harness(engine, peer, directory / "canary" / "pwned")


def fire(harness: Harness, first: str, second: str, third: str) -> ExecutionDB:
    """Send the alert as PoundCake does (its guard step admitted the CAB); return the CAB's
    finished workflow execution."""
    payload = {
        "admitted_cabs": ["hostile_values"],
        "request_id": f"req-{uuid.uuid4().hex[:8]}",
        "status": "firing",
        "alertname": ALERT_NAME,
        "labels": {"alertname": ALERT_NAME, "first": first, "second": second},
        "annotations": {"third": third},
    }
    engine = harness.engine
    with unit_of_work(engine.runtime.sessions) as session:
        body = {"trigger": "poundcake.alert", "payload": payload}
        instance = dispatch_generic(session=session, body=body)
    announce_trigger_instances(engine.runtime.publisher, [instance])
    deadline = time.monotonic() + 60
    while True:
        with engine.runtime.sessions() as session:
            execution_id = session.scalar(
                sa.select(RuleEnforcementDB.execution_id).where(
                    RuleEnforcementDB.trigger_instance_id == instance.id
                )
            )
        if execution_id:
            return engine.wait(execution_id, timeout=90)
        assert time.monotonic() < deadline, f"no CAB run for trigger instance {instance.id}"
        time.sleep(0.05)


def step_results(workflow: ExecutionDB, engine: EngineStack) -> dict[str, Any]:
    """Each step's full result, by step name (from the child executions, not the summary)."""
    found = {}
    for step in workflow.result["steps"]:
        assert step["execution_id"], step
        found[step["name"]] = engine.execution(step["execution_id"]).result
    return found


@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=VALUES, second=VALUES, third=VALUES)
@example(
    first="$(touch CANARY)",
    second="`touch CANARY`; touch CANARY",
    third="{{ st2kv.system.secret }}",
)
@example(
    first="{{ cycler.__init__.__globals__.os.system('touch CANARY') }}",
    second="{% for i in range(3) %}{{ i }}{% endfor %}",
    third="{{ 7 * 7 }}",
)
@example(first="a'\"\n\r\nb\\", second="' ; touch CANARY ; '", third="ü∑ 😀 \u202e")
def test_alert_values_reach_every_runner_as_data(
    harness: Harness, first: str, second: str, third: str
) -> None:
    first, second, third = (with_canary(value, harness.canary) for value in (first, second, third))
    harness.peer.received.clear()
    workflow = fire(harness, first, second, third)
    assert workflow.status == "succeeded", workflow.result
    results = step_results(workflow, harness.engine)
    assert results["local_cmd"]["stdout"] == f"<{first}|{second}|{third}>"
    assert results["local_script"]["stdout"] == f"<{first}|{third}>"
    [remote] = results["remote_cmd"].values()
    assert remote["stdout"] == f"<{second}|{third}>"
    assert results["python"]["result"] == [first, f"{second}/{third}"]
    [received] = harness.peer.received
    assert received.body == second.encode()
    assert not harness.canary.exists()
    assert SECRET not in str(workflow.result)


def test_a_nul_byte_fails_the_shell_steps_cleanly(harness: Harness) -> None:
    nul = with_canary("a\x00; touch CANARY", harness.canary)
    workflow = fire(harness, nul, "b", "c")
    results = step_results(workflow, harness.engine)
    assert workflow.status == "failed", workflow.result
    for shell_step in ("local_cmd", "local_script"):
        assert "NUL byte" in results[shell_step]["error"], results[shell_step]
        assert "traceback" not in results[shell_step]
    assert results["python"]["result"] == [nul, "b/c"]
    assert not harness.canary.exists()
