"""Orquesta workflows through the official ``st2`` CLI, for the ``test_orquesta_*`` modules.

:func:`orquesta_engine` runs the engine with ``st2workflowengine`` and the ``orquesta_tests``
pack (``tests/fixtures/packs/orquesta_tests``, workflows written for these tests). Workflows are
started with ``st2 run -a``, waited for on the API (the CLI's own wait polls every two seconds)
and read back with ``st2 execution get -j``, which prints the execution and then the task tree:
:func:`execution_tree` returns both, the tree as :class:`TaskRow` rows in the CLI's order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import (
    WORKFLOW_SERVICES,
    CliResult,
    RunningEngine,
    St2,
    eventually,
    logged_in,
    output,
    run_async,
    running_engine,
    wait_for,
)
from tests.paths import REPOSITORY

PACKS = REPOSITORY / "tests" / "fixtures" / "packs"
PACK = "orquesta_tests"
COMPLETED = {"succeeded", "failed", "timeout", "canceled", "abandoned"}
# The sweep finds what a lost doorbell would have announced; short, so a test never waits long.
WORKFLOW_CONF = "[workflow_engine]\nsweep_interval = 0.5\n\n"
_ROW_ID = re.compile(r"^( *?)(\+ |  )?([0-9a-f]{24})$")


@contextmanager
def orquesta_engine(
    directory: Path,
    *,
    packs: Path = PACKS,
    services: tuple[str, ...] = WORKFLOW_SERVICES,
    extra_conf: str = "",
) -> Iterator[RunningEngine]:
    """The engine with a workflow engine, the core pack and the packs under ``packs``."""
    conf = f"[content]\npacks_base_paths = {packs}\n\n{WORKFLOW_CONF}{extra_conf}"
    with running_engine(directory, services=services, extra_conf=conf) as engine:
        yield engine


@contextmanager
def cli_and_api(engine: RunningEngine, home: Path) -> Iterator[tuple[St2, httpx.Client]]:
    """A logged-in CLI and an API client with its token."""
    st2 = logged_in(engine, home)
    with engine_api(engine, st2) as api:
        yield st2, api


def module_fixtures(name: str, **options: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """A test module's ``engine`` (:func:`orquesta_engine` with ``options``) and ``cli`` (a
    logged-in CLI and API client) fixtures, both started once per module::

        engine, cli = module_fixtures("orquesta-flow")
    """

    @pytest.fixture(scope="module")
    def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
        with orquesta_engine(tmp_path_factory.mktemp(name), **options) as running:
            yield running

    @pytest.fixture(scope="module")
    def cli(
        engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[tuple[St2, httpx.Client]]:
        with cli_and_api(engine, tmp_path_factory.mktemp("home")) as pair:
            yield pair

    return engine, cli


@dataclass(frozen=True)
class TaskRow:
    """One row of the task tree ``st2 execution get`` prints: its depth (0 for the workflow's
    own tasks), the task's name, the action it ran and its status (without the elapsed time)."""

    depth: int
    task: str
    action: str
    status: str

    @classmethod
    def parse(cls, row: dict[str, Any]) -> TaskRow:
        found = _ROW_ID.match(str(row["id"]))
        assert found, row
        return cls(
            depth=len(found.group(1)),
            task=str(row["task"]),
            action=str(row["action"]),
            status=str(row["status"]).split(" ", 1)[0],
        )


def rows(*entries: tuple[str, str, str] | tuple[int, str, str, str]) -> list[TaskRow]:
    """Expected rows: ``(task, action, status)`` at depth 0, or ``(depth, task, action,
    status)``."""
    found = []
    for entry in entries:
        if len(entry) == 3:
            found.append(TaskRow(0, *entry))
        else:
            found.append(TaskRow(*entry))
    return found


def printed_tree(result: CliResult) -> tuple[dict[str, Any], list[TaskRow]]:
    """What a successful ``-j`` command on a workflow printed: the execution, then the task
    tree (absent when the workflow has no tasks yet)."""
    assert result.returncode == 0, output(result)
    text = result.stdout.lstrip()
    document, end = json.JSONDecoder().raw_decode(text)
    rest = text[end:].strip()
    children = json.loads(rest) if rest else []
    return document, [TaskRow.parse(child) for child in children]


def execution_tree(st2: St2, execution_id: str) -> tuple[dict[str, Any], list[TaskRow]]:
    """``st2 execution get <id> -j``: the execution and the task tree it prints after it."""
    return printed_tree(st2("execution", "get", execution_id, "-j"))


def start(st2: St2, ref: str, *parameters: str) -> str:
    """``st2 run <ref> ... -a``: the new execution's id."""
    return run_async(st2, ref, *parameters)


def finish(
    st2: St2, api: httpx.Client, execution_id: str, timeout: float = 60
) -> tuple[dict[str, Any], list[TaskRow]]:
    """Wait until the execution completed, then what ``st2 execution get`` shows of it."""
    wait_for(api, execution_id, COMPLETED, timeout=timeout)
    return execution_tree(st2, execution_id)


def run_workflow(
    st2: St2, api: httpx.Client, name: str, *parameters: str, pack: str = PACK
) -> tuple[dict[str, Any], list[TaskRow]]:
    """Start a workflow of the test pack (or ``pack``) by name and wait for its end."""
    return finish(st2, api, start(st2, f"{pack}.{name}", *parameters))


def children(api: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    """The execution's child executions as the API returns them (with logs and timestamps)."""
    found = api.get(f"/executions/{execution_id}/children")
    assert found.status_code == 200, found.text
    documents: list[dict[str, Any]] = found.json()
    return documents


def of_task(documents: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """The executions of one task, oldest first."""
    found = [d for d in documents if d["context"].get("orquesta", {}).get("task_name") == task]
    return sorted(found, key=lambda d: (d["start_timestamp"], d["id"]))


def moment(text: str) -> datetime:
    """A timestamp of the API."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def logged_at(document: dict[str, Any], status: str) -> datetime:
    """When the execution first took ``status``, from its log."""
    for entry in document["log"]:
        if entry["status"] == status:
            return moment(entry["timestamp"])
    raise AssertionError(f"{document['id']} never was {status}: {document['log']}")


def statuses(document: dict[str, Any]) -> list[str]:
    """The statuses in the execution's log, in order."""
    return [entry["status"] for entry in document["log"]]


def wait_for_task(
    api: httpx.Client, execution_id: str, task: str, status: str, timeout: float = 60
) -> dict[str, Any]:
    """The newest execution of a workflow's task, once it has ``status``."""

    def found() -> dict[str, Any] | None:
        executions = of_task(children(api, execution_id), task)
        if executions and executions[-1]["status"] == status:
            return executions[-1]
        return None

    document: dict[str, Any] = eventually(found, f"task {task} {status}", timeout=timeout)
    return document
