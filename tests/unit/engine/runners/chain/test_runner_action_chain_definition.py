"""Reading and checking ActionChain files, and the action-chain runner type's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from poundcake.engine.runners.chain.definition import (
    ChainDefinitionError,
    load_chain,
    parse_chain,
)
from poundcake.engine.runners.chain.runner import ActionChainRunner
from poundcake.engine.runners.registry import runner_class, runner_types

THREE_TASKS = """
vars:
  greeting: hello
chain:
  - name: first
    ref: core.local
    params:
      cmd: "echo {{ greeting }}"
    publish:
      said: "{{ first.stdout }}"
    on-success: second
    on-failure: cleanup
  - name: second
    ref: core.local
    parameters:
      cmd: "echo {{ said }}"
    on-success: third
  - name: third
    ref: core.noop
  - name: cleanup
    ref: core.noop
"""


def test_a_chain_file_is_read_with_tasks_links_and_vars(tmp_path: Path) -> None:
    path = tmp_path / "chain.yaml"
    path.write_text(THREE_TASKS)
    chain = load_chain(path)
    assert [task.name for task in chain.tasks] == ["first", "second", "third", "cleanup"]
    assert chain.default == "first"
    assert chain.vars == {"greeting": "hello"}
    first = chain.first()
    assert first.ref == "core.local"
    assert first.parameters == {"cmd": "echo {{ greeting }}"}
    assert first.publish == {"said": "{{ first.stdout }}"}
    assert chain.next_task(first, succeeded=True) == chain.task("second")
    assert chain.next_task(first, succeeded=False) == chain.task("cleanup")
    second = chain.task("second")
    assert second.parameters == {"cmd": "echo {{ said }}"}
    assert chain.next_task(second, succeeded=False) is None
    assert chain.next_task(chain.task("third"), succeeded=True) is None
    assert first.context()["name"] == "first"
    assert first.context()["ref"] == "core.local"


def test_without_default_the_first_unreferenced_task_starts() -> None:
    chain = parse_chain(
        {
            "chain": [
                {"name": "b", "ref": "core.noop"},
                {"name": "a", "ref": "core.noop", "on-success": "b"},
            ]
        }
    )
    assert chain.default == "a"


def test_a_chain_where_every_task_is_referenced_starts_at_the_first() -> None:
    chain = parse_chain(
        {
            "chain": [
                {"name": "a", "ref": "core.noop", "on-success": "b"},
                {"name": "b", "ref": "core.noop", "on-success": "a"},
            ]
        }
    )
    assert chain.default == "a"


def test_an_explicit_default_wins() -> None:
    chain = parse_chain(
        {"default": "b", "chain": [{"name": "a", "ref": "x.y"}, {"name": "b", "ref": "x.y"}]}
    )
    assert chain.first().name == "b"


def _task(**fields: Any) -> dict[str, Any]:
    return {"name": "t", "ref": "core.noop", **fields}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (["not", "a", "mapping"], "must hold a mapping"),
        ({}, "'chain' must be a non-empty list"),
        ({"chain": []}, "'chain' must be a non-empty list"),
        ({"chain": [_task()], "extra": 1}, "the chain has unknown keys: extra"),
        ({"chain": ["t"]}, "task #1 must be a mapping"),
        ({"chain": [{"ref": "core.noop"}]}, "task #1 needs a 'name'"),
        ({"chain": [{"name": "t"}]}, "task \"t\" needs a 'ref'"),
        ({"chain": [_task(onsuccess="x")]}, 'task "t" has unknown keys: onsuccess'),
        ({"chain": [_task(params={"a": 1}, parameters={"b": 2})]}, "but not both"),
        ({"chain": [_task(params=["a"])]}, "'params' must be a mapping"),
        ({"chain": [_task(publish={"bad-name": "x"})]}, "invalid variable names: bad-name"),
        ({"chain": [_task(publish=["x"])]}, "'publish' must be a mapping"),
        ({"chain": [_task(), _task()]}, "task names must be unique; repeated: t"),
        (
            {"chain": [_task(**{"on-success": "nowhere"})]},
            'Unable to find node with name "nowhere" referenced in "on-success" in task "t".',
        ),
        (
            {"chain": [_task(**{"on-failure": "gone"})]},
            'Unable to find node with name "gone" referenced in "on-failure" in task "t".',
        ),
        ({"chain": [_task(**{"on-success": 3})]}, "'on-success' must be a task name"),
        (
            {"default": "other", "chain": [_task()]},
            'Unable to find node with name "other" referenced in "default".',
        ),
        ({"chain": [_task()], "vars": [1]}, "'vars' must be a mapping"),
    ],
)
def test_invalid_chains_are_refused_with_a_clear_message(document: Any, message: str) -> None:
    with pytest.raises(ChainDefinitionError) as raised:
        parse_chain(document, source="pack/actions/chain.yaml")
    assert message in str(raised.value)
    assert 'Invalid action chain "pack/actions/chain.yaml"' in str(raised.value)


def test_unreadable_or_broken_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ChainDefinitionError, match="Failed to parse action chain definition"):
        load_chain(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("chain: [\n  - name: a\n")
    with pytest.raises(ChainDefinitionError, match="Failed to parse action chain definition"):
        load_chain(broken)


def test_runner_type_metadata_matches_stackstorm() -> None:
    spec = runner_types()["action-chain"]
    assert spec.enabled
    assert spec.output_key == "published"
    parameters = spec.runner_parameters
    assert parameters["display_published"]["default"] is True
    assert parameters["display_published"]["type"] == "boolean"
    assert parameters["skip_notify"]["type"] == "array"
    assert parameters["max_task_runs"]["default"] == 1000
    assert runner_class("action-chain") is ActionChainRunner
