"""Registering Orquesta workflows: ``st2ctl reload --register-all`` refuses definitions that fail
Orquesta's inspection, naming the action file, the workflow file, the place in it and the
problem, and registers the rest; a task naming an action nobody registered is only a warning,
and running that workflow fails with StackStorm's content error. ``st2 workflow inspect --file``
reports the same problems.

The refused definitions are the ``orquesta_refused`` pack (``tests/fixtures/packs/refused``),
added to a running engine's pack path by the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.orquesta_cli import (
    PACKS,
    cli_and_api,
    orquesta_engine,
    run_workflow,
)
from tests.integration.support.st2cli import RunningEngine, St2, output

REFUSED = PACKS / "refused" / "orquesta_refused"
WORKFLOWS = REFUSED / "actions" / "workflows"
TASK_PATH = r"properties.tasks.patternProperties.^\w+$"


@pytest.fixture(scope="module")
def pack_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("packs")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, pack_base: Path) -> Iterator[RunningEngine]:
    with orquesta_engine(tmp_path_factory.mktemp("orquesta-registration"), packs=pack_base) as e:
        yield e


@pytest.fixture(scope="module")
def reload_output(engine: RunningEngine, pack_base: Path) -> tuple[int, str]:
    """``st2ctl reload --register-all`` once the refused pack is on the pack path."""
    (pack_base / "orquesta_refused").symlink_to(REFUSED)
    result = run_command(
        "st2ctl",
        "reload",
        "--register-all",
        "--config-file",
        str(engine.config_path),
        env=command_environment(engine.directory),
    )
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def cli(
    engine: RunningEngine, reload_output: tuple[int, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[St2, httpx.Client]]:
    with cli_and_api(engine, tmp_path_factory.mktemp("home")) as pair:
        yield pair


UNREACHABLE_JOIN = (
    'The join task "merge" is unreachable. A join task is determined to be unreachable if there '
    "are nested forks from multi-referenced tasks that join on the said task. This is ambiguous "
    "to the workflow engine because it does not know at which level should the join occurs."
)
# What inspection finds in each refused workflow: (spec path, kind, expression, message).
REFUSED_PROBLEMS = {
    "bad_expressions": [
        (
            "tasks.probe.input",
            "context",
            "{{ ctx('who') | }}",
            'Variable "who" is referenced before assignment.',
        ),
        (
            "tasks.probe.input",
            "expression",
            "{{ ctx('who') | }}",
            "expected token 'name', got 'end of print statement'",
        ),
        (
            "tasks.probe.next[0].when",
            "expression",
            "<% succeeded( %>",
            "Parse error: unexpected end of statement",
        ),
    ],
    "lonely_join": [
        (
            "tasks.report.join",
            "semantic",
            None,
            'The join task "report" has no inbound task: no transition leads to it.',
        )
    ],
    "misplaced_join": [("tasks.merge", "semantic", None, UNREACHABLE_JOIN)],
    "unknown_next": [
        ("tasks.check.next[1].do", "semantic", None, 'The task "alarm" is not defined.')
    ],
    "unreachable": [
        (
            f"tasks.{name}",
            "semantic",
            None,
            f'The task "{name}" is unreachable: no transition from a task the workflow starts '
            "with leads to it.",
        )
        for name in ("ping", "pong")
    ],
}
NOT_REGISTERED = 'The action "orquesta_refused.not_there" is not registered in the database.'


def described(spec_path: str, kind: str, expression: str | None, message: str) -> str:
    shown = f" ({expression})" if expression else ""
    return f"{spec_path}: {kind} error{shown}: {message}"


def test_reload_refuses_each_bad_workflow_by_file_task_and_problem(
    reload_output: tuple[int, str],
) -> None:
    returncode, printed = reload_output
    assert returncode == 1, printed
    lines = printed.splitlines()
    for name, problems in REFUSED_PROBLEMS.items():
        action_file = REFUSED / "actions" / f"{name}.yaml"
        expected = (
            f"Failed to register: {action_file}: entry_point: {WORKFLOWS / name}.yaml "
            "fails inspection: " + "; ".join(described(*problem) for problem in problems)
        )
        assert expected in lines, printed
    assert f"error: {len(REFUSED_PROBLEMS)} failure(s) while registering content" in lines
    # The task naming an unknown action: a warning only.
    warning = f"Warning: {REFUSED / 'actions' / 'missing_action.yaml'}: " + described(
        "tasks.restart.action", "content", None, NOT_REGISTERED
    )
    assert warning in lines, printed


def test_the_rest_is_registered_and_runs(cli: tuple[St2, httpx.Client]) -> None:
    st2, api = cli
    listed = st2("action", "list", "--pack", "orquesta_refused", "-j")
    assert listed.returncode == 0, output(listed)
    assert sorted(action["ref"] for action in listed.json()) == [
        "orquesta_refused.fine",
        "orquesta_refused.missing_action",
    ]
    for name in REFUSED_PROBLEMS:
        missing = st2("action", "get", f"orquesta_refused.{name}")
        assert missing.returncode != 0

    document, tree = run_workflow(st2, api, "fine", pack="orquesta_refused")
    assert document["status"] == "succeeded"
    assert document["result"] == {"output": {"said": "fine"}}

    # Content is checked again when the workflow starts: the run fails before any task.
    document, tree = run_workflow(st2, api, "missing_action", pack="orquesta_refused")
    assert document["status"] == "failed"
    assert document["result"] == {
        "errors": [
            {
                "type": "content",
                "message": NOT_REGISTERED,
                "spec_path": "tasks.restart.action",
                "schema_path": f"{TASK_PATH}.properties.action",
            }
        ],
        "output": None,
    }
    assert tree == []


def test_workflow_inspect_reports_the_same_problems(cli: tuple[St2, httpx.Client]) -> None:
    st2, _ = cli
    schema_paths = {
        "tasks.probe.input": f"{TASK_PATH}.properties.input",
        "tasks.probe.next[0].when": f"{TASK_PATH}.properties.next.items.properties.when",
        "tasks.merge": TASK_PATH,
        "tasks.report.join": f"{TASK_PATH}.properties.join",
        "tasks.check.next[1].do": f"{TASK_PATH}.properties.next.items.properties.do",
        "tasks.ping": TASK_PATH,
        "tasks.pong": TASK_PATH,
    }
    for name, problems in REFUSED_PROBLEMS.items():
        inspected = st2("workflow", "inspect", "--file", str(WORKFLOWS / f"{name}.yaml"))
        assert inspected.returncode == 0, output(inspected)
        expected = []
        for spec_path, kind, expression, message in problems:
            problem = {
                "type": kind,
                "message": message,
                "spec_path": spec_path,
                "schema_path": schema_paths[spec_path],
            }
            if expression:
                problem |= {
                    "expression": expression,
                    "language": "jinja" if "{{" in expression else "yaql",
                }
            expected.append(problem)
        assert yaml.safe_load(inspected.stdout) == expected, name

    # Inspection through the API also checks content against what is registered.
    inspected = st2("workflow", "inspect", "--file", str(WORKFLOWS / "missing_action.yaml"))
    assert yaml.safe_load(inspected.stdout) == [
        {
            "type": "content",
            "message": NOT_REGISTERED,
            "spec_path": "tasks.restart.action",
            "schema_path": f"{TASK_PATH}.properties.action",
        }
    ]
    clean = st2("workflow", "inspect", "--file", str(WORKFLOWS / "fine.yaml"))
    assert clean.returncode == 0, output(clean)
    assert clean.stdout.strip() == "No errors found in workflow definition."
