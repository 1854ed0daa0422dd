"""The official ``st2`` CLI against the engine: run, execution list/get/cancel/re-run/tail.

Real ``st2api``, ``st2auth``, ``st2scheduler`` and ``st2actionrunner`` processes run the core
pack's actions; the CLI and a plain HTTP client (for headers and ``show_secrets``) talk to them.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.st2cli import (
    USER,
    RunningEngine,
    St2,
    output,
    run_async,
    running_engine,
    wait_for,
)

COMPLETED = {"succeeded", "failed", "timeout", "canceled", "abandoned"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-executions")
    with running_engine(directory) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    client = St2(engine, tmp_path / "home")
    client.login()
    return client


@pytest.fixture
def api(st2: St2, engine: RunningEngine) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as client:
        yield client


def run_json(st2: St2, *args: str) -> dict[str, Any]:
    """``st2 run -j``: the CLI prints a newline after polling, then the JSON document."""
    result = st2("run", "-j", *args)
    assert result.stdout.startswith("\n"), output(result)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_run_shows_the_command_output(st2: St2) -> None:
    result = st2("run", "core.local", "cmd=echo hi")
    assert result.returncode == 0, output(result)
    assert re.search(r"status: succeeded", result.stdout), result.stdout
    assert re.search(r"stdout: hi\b", result.stdout), result.stdout
    assert re.search(r"return_code: 0\b", result.stdout), result.stdout


def test_a_failing_command_exits_1(st2: St2) -> None:
    result = st2("run", "core.local", "cmd=exit 3")
    assert result.returncode == 1, output(result)
    assert "status: failed" in result.stdout
    assert re.search(r"return_code: 3\b", result.stdout), result.stdout


def test_run_json_is_the_execution(st2: St2) -> None:
    document = run_json(st2, "core.local", "cmd=date")
    assert document["status"] == "succeeded"
    assert document["action"] == {"ref": "core.local"}
    assert document["context"] == {"user": USER}
    assert document["parameters"] == {"cmd": "date"}
    assert document["result"]["return_code"] == 0
    assert document["result"]["stdout"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$", document["end_timestamp"])


def test_a_slow_command_times_out(st2: St2) -> None:
    document = run_json(st2, "core.local", "cmd=sleep 5", "timeout=1")
    assert document["status"] == "timeout"
    assert document["result"]["error"] == "Action failed to complete in 1 seconds"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("core.local",), "'cmd' is a required property"),
        (
            ("core.local", "cmd=id", "nope=1"),
            "Additional properties are not allowed ('nope' was unexpected)",
        ),
        (
            ("core.local_sudo", "cmd=id", "sudo=false"),
            "Override of immutable parameter(s) ['sudo'] is unsupported.",
        ),
        (("core.missing", "x=1"), 'Resource with id or reference "core.missing" doesn\'t exist.'),
    ],
)
def test_bad_runs_are_refused_with_stackstorms_message(
    st2: St2, arguments: tuple[str, ...], message: str
) -> None:
    result = st2("run", *arguments)
    assert result.returncode != 0, output(result)
    assert message in output(result)


def test_the_api_refuses_bad_requests(api: httpx.Client) -> None:
    missing = api.post("/executions", json={"action": "core.missing", "user": None})
    assert missing.status_code == 400
    assert missing.json() == {"faultstring": 'Action "core.missing" cannot be found.'}
    no_action = api.post("/executions", json={"parameters": {}})
    assert no_action.status_code == 400
    assert api.get("/executions", params={"limit": 0}).json() == {
        "faultstring": 'Limit, "0" specified, must be a positive number or -1 for full result set.'
    }
    unknown = api.get(f"/executions/{'0' * 24}")
    assert unknown.status_code == 404
    assert unknown.json() == {"faultstring": f'Unable to identify resource with id "{"0" * 24}".'}


def test_render_parameters_false_keeps_template_text_as_data(api: httpx.Client) -> None:
    """PoundCake's own ``render_parameters: false`` (an alert's labels are data): a template in
    a parameter stays text; by default it is rendered, as in StackStorm."""
    text = "{{ 6 * 7 }}"
    literal = api.post(
        "/executions",
        json={"action": "core.echo", "parameters": {"message": text}, "render_parameters": False},
    )
    assert literal.status_code == 201, literal.text
    assert literal.json()["parameters"] == {"message": text}
    rendered = api.post(
        "/executions", json={"action": "core.echo", "parameters": {"message": text}}
    )
    assert rendered.status_code == 201, rendered.text
    assert rendered.json()["parameters"] == {"message": "42"}
    refused = api.post(
        "/executions",
        json={"action": "core.echo", "parameters": {"message": "x"}, "render_parameters": "no"},
    )
    assert refused.status_code == 400
    assert refused.json() == {"faultstring": "'render_parameters' must be true or false"}


def test_async_run_then_get(st2: St2, api: httpx.Client) -> None:
    execution_id = run_async(st2, "core.echo", "message=x")
    wait_for(api, execution_id, COMPLETED)
    shown = st2("execution", "get", execution_id)
    assert shown.returncode == 0, output(shown)
    assert "core.echo" in shown.stdout
    assert re.search(r"stdout: x\b", shown.stdout), shown.stdout
    document = st2("execution", "get", execution_id, "-j").json()
    assert document["id"] == execution_id
    assert document["status"] == "succeeded"
    assert document["parameters"] == {"message": "x"}
    missing = st2("execution", "get", "0" * 24)
    assert missing.returncode == 1
    assert "not found" in output(missing)


def test_execution_list_filters_and_total(st2: St2, api: httpx.Client) -> None:
    wait_for(api, run_async(st2, "core.noop"), COMPLETED)
    failed = run_json(st2, "core.local", "cmd=exit 4")
    echoed = run_json(st2, "core.echo", "message=listed")
    newest = st2("execution", "list", "-n", "5", "-j")
    assert newest.returncode == 0, output(newest)
    rows = newest.json()
    assert 2 <= len(rows) <= 5
    assert {failed["id"], echoed["id"]} <= {row["id"] for row in rows}
    assert set(rows[0]) <= {"id", "action", "context", "status", "start_timestamp", "end_timestamp"}
    by_action = st2("execution", "list", "--action", "core.echo", "-j").json()
    assert echoed["id"] in {row["id"] for row in by_action}
    assert {row["action"]["ref"] for row in by_action} == {"core.echo"}
    by_status = st2("execution", "list", "--status", "failed", "-j").json()
    assert failed["id"] in {row["id"] for row in by_status}
    assert {row["status"] for row in by_status} == {"failed"}
    table = st2("execution", "list", "-n", "2")
    assert "Note: Only first 2 action executions are displayed." in table.stderr, output(table)
    everything = api.get("/executions", params={"limit": -1, "parent": "null"})
    page = api.get("/executions/", params={"limit": 2, "parent": "null", "sort_desc": "True"})
    assert page.status_code == 200
    assert page.headers["X-Limit"] == "2"
    assert int(page.headers["X-Total-Count"]) == len(everything.json()) >= 3
    assert [row["id"] for row in page.json()] == [row["id"] for row in everything.json()[:2]]


def test_cancel_a_running_command(st2: St2, api: httpx.Client) -> None:
    execution_id = run_async(st2, "core.local", "cmd=sleep 30")
    wait_for(api, execution_id, {"running"})
    canceled = st2("execution", "cancel", execution_id)
    assert canceled.returncode == 0, output(canceled)
    assert f"action execution with id {execution_id} canceled." in canceled.stdout.lower()
    document = wait_for(api, execution_id, COMPLETED, timeout=30)
    assert document["status"] == "canceled"
    assert document["result"] == {"message": "Action canceled by user.", "user": USER}
    again = st2("execution", "cancel", execution_id)
    assert "canceled" in again.stdout


def test_cancel_of_a_finished_execution_is_refused(st2: St2, api: httpx.Client) -> None:
    finished = run_json(st2, "core.local", "cmd=true")
    refused = st2("execution", "cancel", finished["id"])
    assert "Action cannot be canceled. State = succeeded." in output(refused)
    response = api.delete(f"/executions/{finished['id']}")
    assert response.status_code == 200
    assert response.json() == {"faultstring": "Action cannot be canceled. State = succeeded."}


def test_re_run_merges_parameters(st2: St2, api: httpx.Client) -> None:
    first = run_json(st2, "core.local", "cmd=echo first", "timeout=30")
    rerun = st2("execution", "re-run", first["id"], "cmd=echo second", "-j")
    assert rerun.returncode == 0, output(rerun)
    second = json.loads(rerun.stdout)
    assert second["id"] != first["id"]
    assert second["status"] == "succeeded"
    assert second["parameters"] == {"cmd": "echo second", "timeout": 30}
    assert second["result"]["stdout"] == "second"
    full = api.get(f"/executions/{second['id']}").json()
    assert full["context"]["re-run"] == {"ref": first["id"]}
    same = st2("execution", "re-run", first["id"], "-j")
    assert json.loads(same.stdout)["parameters"] == {"cmd": "echo first", "timeout": 30}


def test_tail_of_a_finished_execution_prints_its_output(st2: St2, api: httpx.Client) -> None:
    finished = run_json(st2, "core.local", "cmd=echo line1; echo line2; echo oops >&2")
    tailed = st2("execution", "tail", finished["id"])
    assert tailed.returncode == 0, output(tailed)
    assert "line1\nline2\n" in tailed.stdout
    assert f"Execution {finished['id']} has completed (status=succeeded)." in tailed.stdout
    stderr = st2("execution", "tail", finished["id"], "--type", "stderr")
    assert "oops" in stderr.stdout
    assert "line1" not in stderr.stdout
    raw = api.get(f"/executions/{finished['id']}/output", params={"output_type": "stdout"})
    assert raw.headers["content-type"].startswith("text/plain")
    assert raw.text == "line1\nline2\n"


def test_secret_parameters_are_masked(st2: St2, api: httpx.Client) -> None:
    created = api.post(
        "/actions",
        json={"name": "with_secret", "pack": "default", "runner_type": "local-shell-cmd"},
    )
    assert created.status_code == 201, created.text
    parameters = {
        "token": {"type": "string", "secret": True, "required": True},
        "cmd": {"type": "string", "default": "echo done", "immutable": True},
    }
    updated = api.put("/actions/default.with_secret", json={"parameters": parameters})
    assert updated.status_code == 200, updated.text
    document = run_json(st2, "default.with_secret", "token=hunter2")
    assert document["status"] == "succeeded"
    assert document["parameters"] == {"token": "********"}
    shown = st2("execution", "get", document["id"], "-j")
    assert "hunter2" not in shown.stdout
    assert shown.json()["parameters"] == {"token": "********"}
    listed = api.get("/executions", params={"action": "default.with_secret"}).json()
    assert "hunter2" not in json.dumps(listed)
    revealed = api.get(f"/executions/{document['id']}", params={"show_secrets": "True"}).json()
    assert revealed["parameters"] == {"token": "hunter2"}
    assert revealed["liveaction"]["parameters"] == {"token": "hunter2"}
    runner_secret = run_json(st2, "core.local", "cmd=echo ok", "sudo_password=hunter3")
    assert runner_secret["parameters"] == {"cmd": "echo ok", "sudo_password": "********"}
    stored = api.get(f"/executions/{runner_secret['id']}").json()
    assert stored["liveaction"]["parameters"]["sudo_password"] == "********"


def test_get_projects_attributes_as_stackstorm(api: httpx.Client, st2: St2) -> None:
    finished = run_json(st2, "core.local", "cmd=echo projected")
    execution_id = finished["id"]
    narrow = api.get(
        f"/executions/{execution_id}",
        params={"include_attributes": "action.ref,context.user,status"},
    ).json()
    assert narrow == {
        "id": execution_id,
        "action": {"ref": "core.local"},
        "context": {"user": USER},
        "status": "succeeded",
    }
    full = api.get(f"/executions/{execution_id}").json()
    assert full["action"]["runner_type"] == "local-shell-cmd"
    assert full["runner"]["name"] == "local-shell-cmd"
    assert full["liveaction"]["action"] == "core.local"
    assert [entry["status"] for entry in full["log"]][:3] == ["requested", "scheduled", "running"]
    assert full["log"][-1]["status"] == "succeeded"
    assert full["elapsed_seconds"] > 0
    assert full["result_size"] > 0
    assert "parent" not in full
    assert "children" not in full
    without = api.get(f"/executions/{execution_id}", params={"exclude_attributes": "result"})
    assert "result" not in without.json()
    assert "status" in without.json()
    last = api.get("/executions/last", params={"include_attributes": "id"}).json()
    assert set(last) == {"id"}
    assert api.get(f"/executions/{execution_id}/children").json() == []


def test_put_refuses_pause_for_a_shell_command_and_completed_executions(
    api: httpx.Client, st2: St2
) -> None:
    finished = run_json(st2, "core.local", "cmd=true")
    completed = api.put(f"/executions/{finished['id']}", json={"status": "pausing"})
    assert completed.status_code == 400
    assert completed.json() == {"faultstring": "Execution is already in completed state."}
    execution_id = run_async(st2, "core.local", "cmd=sleep 20")
    running = wait_for(api, execution_id, {"running"})
    paused = st2("execution", "pause", execution_id)
    assert paused.returncode != 0
    assert 'because it is not supported by the "local-shell-cmd" runner.' in output(paused)
    liveaction_id = running["liveaction"]["id"]
    assert f'Unable to pause liveaction "{liveaction_id}"' in output(paused)
    canceled = api.put(f"/executions/{execution_id}", json={"status": "canceling"})
    assert canceled.status_code == 200
    assert canceled.json()["status"] in {"canceling", "canceled"}
    assert wait_for(api, execution_id, COMPLETED, timeout=30)["status"] == "canceled"


# About 600 KB of lines with quotes, backslashes, a tab, a control character and 2-, 3- and
# 4-byte UTF-8: stored in several pieces, each likely to end inside a character.
LARGE_LINE = '{:06d} "quoted" \\ tab\there \x01 é 日本語 🙂 \u2028 end\n'
LARGE_LINES = 12_000


def test_a_large_multi_line_utf8_result_round_trips_byte_identical(
    st2: St2, api: httpx.Client, tmp_path: Path
) -> None:
    expected = "".join(LARGE_LINE.format(number) for number in range(LARGE_LINES))
    script = tmp_path / "print_large.py"
    script.write_text(
        f"import sys\nfor number in range({LARGE_LINES}):\n"
        f"    sys.stdout.buffer.write({LARGE_LINE!r}.format(number).encode())\n"
    )
    execution_id = run_async(st2, "core.local", f"cmd={sys.executable} {script}")
    wait_for(api, execution_id, COMPLETED)
    full = api.get(f"/executions/{execution_id}")
    result = full.json()["result"]
    assert full.json()["status"] == "succeeded", result
    assert result["stdout"] == expected.removesuffix("\n")
    # The stored JSON is the text json.dumps gives, served as stored, byte for byte.
    stored = json.dumps(result, ensure_ascii=False).encode()
    assert stored in full.content
    assert full.json()["result_size"] == len(stored)
    assert "result_truncated" not in full.json()
    shown = st2("execution", "get", execution_id, "-j").json()
    assert shown["result"] == result
    only = api.get(f"/executions/{execution_id}", params={"include_attributes": "result.stdout"})
    assert only.json() == {"id": execution_id, "result": {"stdout": result["stdout"]}}
    without = api.get(f"/executions/{execution_id}", params={"exclude_attributes": "result"})
    assert "result" not in without.json()
    assert without.json()["result_size"] == len(stored)
    streamed = api.get(f"/executions/{execution_id}/output", params={"output_type": "stdout"})
    assert streamed.text == expected
