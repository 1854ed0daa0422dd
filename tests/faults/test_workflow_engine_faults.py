"""Orquesta workflows while their processes are killed: two ``st2workflowengine`` and two
``st2actionrunner`` processes on one database and broker, SIGKILLed under a with-items workflow.

The engine runs as a user deploys it (st2api, st2auth, st2scheduler from ``running_engine``,
plus the engines and runners started here, each in its own session), with the test harness's
short ``[actionrunner] lease_seconds`` (5 s) and ``[scheduler] sweep_interval`` (0.5 s). The
workflows come from a pack written into the test's directory and are started through the API.
Side effects are lines the items' ``core.local`` commands append to a file, one per run.

Both tests share the running engine (one module, one worker); each leaves every process running
again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faults.load import TERMINAL_EXECUTIONS
from tests.integration.support.commands import BIN, command_environment
from tests.integration.support.mariadb import (
    admin_sql,
    create_fixture_database,
    drop_fixture_database,
)
from tests.integration.support.st2cli import (
    RunningEngine,
    api_key_for,
    child_executions,
    eventually,
    running_engine,
)
from tests.integration.support.workflow_pack import write_workflow_pack

PACK = "faults_orquesta"
EFFECT_ITEMS = 40
NOOP_ITEMS = 300
ENGINE_KILLS = 4
MARIADB_PORT = 3306
RETRIED_ITEMS = 4
SLOW_ITEM = 2
WORKFLOW_WITHIN = 180
# The harness's lease (5 s) plus the scheduler's sweep, with room for a loaded machine.
ABANDON_WITHIN = 30
CATCH_CONDUCTING_WITHIN = 5

EFFECTS_WORKFLOW = f"""\
version: 1.0
description: Two with-items tasks at once; every item of the first appends its id to a file.
input:
  - lines
tasks:
  effects:
    with:
      items: <% range({EFFECT_ITEMS}) %>
      concurrency: 8
    action: core.local
    input:
      cmd: sleep 0.1; echo <% item() %> >> <% ctx(lines) %>
  noops:
    with:
      items: <% range({NOOP_ITEMS}) %>
      concurrency: 50
    action: core.noop
"""

# Every item appends its id; the slow item, the first time only (mkdir is the once-only
# guard), then records its pid and sleeps far past the lease.
RETRIED_WORKFLOW = f"""\
version: 1.0
description: A with-items task retried once when it fails; one item sleeps the first time.
input:
  - lines
  - marker
tasks:
  each:
    with:
      items: <% range({RETRIED_ITEMS}) %>
    action: core.local
    input:
      cmd: >-
        echo <% item() %> >> <% ctx(lines) %>;
        if [ <% item() %> -eq {SLOW_ITEM} ] && mkdir <% ctx(marker) %> 2>/dev/null;
        then echo $$ > <% ctx(marker) %>/pid; exec sleep 300; fi
      timeout: 600
    retry:
      count: 1
"""


def required_strings(*names: str) -> dict[str, Any]:
    return {name: {"type": "string", "required": True} for name in names}


WORKFLOWS = {
    "effects": (required_strings("lines"), EFFECTS_WORKFLOW),
    "retried": (required_strings("lines", "marker"), RETRIED_WORKFLOW),
}


@dataclass
class Workflows:
    """The engine, its database, an API client, and the processes this module starts."""

    engine: RunningEngine
    database: str
    api: httpx.Client

    def start(self, name: str) -> None:
        """Start (again) ``st2workflowengine-1`` and the like: the service before the dash."""
        service = name.rsplit("-", 1)[0]
        log = (self.engine.directory / f"{name}.log").open("ab")
        self.engine.processes[name] = subprocess.Popen(
            [str(BIN / service), "--config-file", str(self.engine.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=command_environment(self.engine.directory),
            start_new_session=True,
        )

    def kill(self, name: str) -> None:
        """SIGKILL the process and its session."""
        process = self.engine.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL, self.engine.log(name)

    def alive(self, *names: str) -> None:
        for name in names:
            code = self.engine.processes[name].poll()
            assert code is None, f"{name} exited {code}:\n{self.engine.log(name)[-3000:]}"

    def run(self, action: str, **parameters: str) -> str:
        response = self.api.post(
            "/executions", json={"action": f"{PACK}.{action}", "parameters": parameters}
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def execution(self, execution_id: str) -> dict[str, Any]:
        response = self.api.get(f"/executions/{execution_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def children(self, execution_id: str) -> list[dict[str, Any]]:
        return child_executions(self.api, execution_id, "id,status,context,result")

    def ended(self, execution_id: str, timeout: float = WORKFLOW_WITHIN) -> dict[str, Any]:
        """The execution's document once it has ended."""

        def document() -> dict[str, Any] | None:
            found = self.execution(execution_id)
            return found if found["status"] in TERMINAL_EXECUTIONS else None

        done: dict[str, Any] = eventually(document, f"execution {execution_id} to end", timeout)
        return done

    def not_ended(self) -> list[tuple[str, str, str]]:
        """Every execution, task execution and workflow action of the database not ended."""
        terminal = "','".join(sorted(TERMINAL_EXECUTIONS))
        found: list[tuple[str, str, str]] = []
        for table, column in (
            ("execution_db", "action"),
            ("workflow_execution_db", "action_execution"),
            ("task_execution_db", "task_id"),
            ("workflow_action_db", "action"),
        ):
            rows = admin_sql(
                f"SELECT id, {column}, status FROM {table} WHERE status NOT IN ('{terminal}')",
                database=self.database,
            )
            found += [(table, str(what), str(status)) for _, what, status in rows]
        return found

    def in_transaction(self, name: str) -> bool:
        """Whether the process holds row locks in an open MariaDB transaction (a workflow
        engine does while it conducts: the workflow's row is locked)."""
        rows = admin_sql(
            "SELECT p.HOST FROM information_schema.INNODB_TRX t "
            "JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
            f"WHERE t.trx_rows_locked > 0 AND p.DB = '{self.database}'"
        )
        ports = {int(str(host).rsplit(":", 1)[1]) for (host,) in rows}
        return bool(ports & database_ports(self.engine.processes[name].pid))

    def lease_owner(self, execution_id: str) -> str | None:
        rows = admin_sql(
            "SELECT l.lease_owner FROM liveaction_db l JOIN execution_db e "
            f"ON e.liveaction_id = l.id WHERE e.id = '{execution_id}'",
            database=self.database,
        )
        return str(rows[0][0]) if rows and rows[0][0] else None


def database_ports(pid: int) -> set[int]:
    """The local ports of the process's TCP connections to MariaDB (port 3306)."""
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(descriptor)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == MARIADB_PORT:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


ENGINES = ("st2workflowengine-1", "st2workflowengine-2")
RUNNERS = ("st2actionrunner-1", "st2actionrunner-2")


@pytest.fixture(scope="module")
def workflows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workflows]:
    directory = tmp_path_factory.mktemp("workflow-faults")
    packs = write_workflow_pack(directory / "packs", PACK, WORKFLOWS)
    database = f"pctest_orqfaults_{uuid.uuid4().hex[:10]}"
    create_fixture_database(database)
    try:
        with running_engine(
            directory,
            database,
            services=("st2api", "st2auth", "st2scheduler"),
            extra_conf=f"[content]\npacks_base_paths = {packs}\n",
        ) as engine:
            headers = {"St2-Api-Key": api_key_for(engine)}
            with httpx.Client(base_url=engine.api_url, headers=headers, timeout=60) as api:
                running = Workflows(engine, database, api)
                for name in (*ENGINES, *RUNNERS):
                    running.start(name)
                yield running
    finally:
        drop_fixture_database(database)


def lines_per_item(path: Path) -> Counter[int]:
    return Counter(int(line) for line in path.read_text().split()) if path.exists() else Counter()


def runs_at_least(path: Path, count: int) -> bool:
    return sum(lines_per_item(path).values()) >= count


def items_by_task(children: list[dict[str, Any]]) -> dict[str, Counter[int]]:
    """How many child executions each item of each task has."""
    found: dict[str, Counter[int]] = {}
    for child in children:
        orquesta = child["context"]["orquesta"]
        found.setdefault(orquesta["task_name"], Counter())[orquesta["item_id"]] += 1
    return found


def test_workflow_engines_killed_mid_with_items_lose_and_repeat_nothing(
    workflows: Workflows, tmp_path: Path
) -> None:
    """Each of two workflow engines SIGKILLed twice, in turn, while it conducts a workflow that
    runs two with-items tasks (and started again): the workflow succeeds, each item's action ran
    exactly once (one child execution per item, one line per item), and nothing is left
    unfinished."""
    lines = tmp_path / "lines"
    workflow_id = workflows.run("effects", lines=str(lines))

    mid_conduct = 0
    for kill in range(ENGINE_KILLS):
        # Kill the engines in turn, spread over the items, each when it is seen conducting
        # (holding the workflow's row lock) if it is within a few seconds.
        wanted = EFFECT_ITEMS * (kill + 1) // (ENGINE_KILLS + 1)
        eventually(partial(runs_at_least, lines, wanted), f"{wanted} items to run", WORKFLOW_WITHIN)
        victim = ENGINES[kill % len(ENGINES)]
        deadline = time.monotonic() + CATCH_CONDUCTING_WITHIN
        caught = workflows.in_transaction(victim)
        while not caught and time.monotonic() < deadline:
            time.sleep(0.01)
            caught = workflows.in_transaction(victim)
        mid_conduct += caught
        workflows.kill(victim)
        assert workflows.execution(workflow_id)["status"] == "running"
        workflows.start(victim)

    done = workflows.ended(workflow_id)
    assert done["status"] == "succeeded", done["result"]
    children = workflows.children(workflow_id)
    assert len(children) == EFFECT_ITEMS + NOOP_ITEMS
    assert {child["status"] for child in children} == {"succeeded"}
    assert items_by_task(children) == {
        "effects": Counter(range(EFFECT_ITEMS)),
        "noops": Counter(range(NOOP_ITEMS)),
    }
    assert lines_per_item(lines) == Counter(range(EFFECT_ITEMS))
    assert workflows.not_ended() == []
    assert mid_conduct, "no engine was caught conducting: the kills tested nothing"
    workflows.alive(*ENGINES, *RUNNERS)


def test_a_runner_killed_under_an_item_abandons_it_and_the_retry_finishes_the_workflow(
    workflows: Workflows, tmp_path: Path
) -> None:
    """The action runner holding a with-items item SIGKILLed (the other runner goes on): the
    item's execution ends ``abandoned`` once its lease expires, the task fails and its ``retry``
    runs every item again (Orquesta retries a with-items task whole), and the workflow
    succeeds instead of hanging."""
    lines, marker = tmp_path / "lines", tmp_path / "slow-item"
    workflow_id = workflows.run("retried", lines=str(lines), marker=str(marker))

    def slow_item_alone() -> dict[str, Any] | None:
        children = workflows.children(workflow_id)
        slow = [c for c in children if c["context"]["orquesta"]["item_id"] == SLOW_ITEM]
        others = [c for c in children if c not in slow]
        ready = (
            len(others) == RETRIED_ITEMS - 1
            and {c["status"] for c in others} == {"succeeded"}
            and (marker / "pid").exists()
            and [c["status"] for c in slow] == ["running"]
        )
        return slow[0] if ready else None

    slow = eventually(slow_item_alone, "the slow item to run alone", WORKFLOW_WITHIN)
    sleeper = int((marker / "pid").read_text())
    owner = workflows.lease_owner(slow["id"])
    holder = next(
        (name for name in RUNNERS if f":{workflows.engine.processes[name].pid}:" in (owner or "")),
        None,
    )
    assert holder is not None, f"no runner of {RUNNERS} holds the lease: {owner!r}"
    try:
        killed_at = time.monotonic()
        workflows.kill(holder)
        abandoned = workflows.ended(slow["id"], ABANDON_WITHIN)
        abandoned_after = time.monotonic() - killed_at
        done = workflows.ended(workflow_id)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(sleeper, signal.SIGKILL)
        workflows.start(holder)

    assert abandoned["status"] == "abandoned", abandoned["result"]
    assert "stopped renewing its lease" in abandoned["result"]["error"], abandoned["result"]
    assert abandoned_after < ABANDON_WITHIN
    assert done["status"] == "succeeded", done["result"]
    children = workflows.children(workflow_id)
    statuses: dict[int, list[str]] = {}
    for child in children:
        statuses.setdefault(child["context"]["orquesta"]["item_id"], []).append(child["status"])
    assert {item: sorted(found) for item, found in statuses.items()} == {
        item: ["abandoned", "succeeded"] if item == SLOW_ITEM else ["succeeded", "succeeded"]
        for item in range(RETRIED_ITEMS)
    }
    # One line per run of each item: the first attempt, then the retry.
    assert lines_per_item(lines) == Counter({item: 2 for item in range(RETRIED_ITEMS)})
    assert workflows.not_ended() == []
    workflows.alive(*ENGINES, *RUNNERS)
