"""st2stream against the official ``st2`` CLI and a raw SSE client: ``execution tail``,
``run --tail``, frames, heartbeats, query credentials, filters, the end event and the race of an
execution that completed before the stream opened."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from poundcake.config import load_st2_config
from poundcake.db.session import unit_of_work
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.service import request_execution
from poundcake.engine.executions.states import COMPLETED
from poundcake.engine.runtime import EngineRuntime, make_runtime
from tests.integration.support.st2cli import (
    PASSWORD,
    ST2,
    STREAM_SERVICES,
    USER,
    RunningEngine,
    St2,
    running_engine,
)

GATE_POLLS = 1200  # 0.05 s apart: a gated command gives up after a minute
TAIL_EVENTS = "st2.execution__update,st2.execution.output__create"
FRAME = re.compile(rb"event: ([^\n]+)\ndata: ([^\n]*)")
HEARTBEAT_SECONDS = 2  # [stream] heartbeat in the engine's st2.conf


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-stream")
    with running_engine(directory, services=STREAM_SERVICES) as running:
        yield running


@pytest.fixture(scope="module")
def runtime(engine: RunningEngine) -> Iterator[EngineRuntime]:
    built = make_runtime(load_st2_config(engine.config_path), pool_size=2)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture(scope="module")
def token(engine: RunningEngine) -> str:
    response = httpx.post(f"{engine.auth_url}/tokens", auth=(USER, PASSWORD), json={})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    client = St2(engine, tmp_path / "home")
    client.login()
    return client


class Gates:
    """A command printing line1, line2, line3, each line after the test opened a gate.

    Line k + 1 is printed only once the test saw line k where it reads (the stream, the CLI's
    output) and called :meth:`open`: the lines can only all arrive if each one arrived while
    the action still ran, whatever the machine's speed.
    """

    def __init__(self, directory: Path) -> None:
        self.paths = [directory / f"gate{number}" for number in (1, 2)]
        # A gate never opened shows in the output: "line-gate-timeout" instead of silence.
        waits = [
            f"opened=no; for _ in $(seq {GATE_POLLS}); do "
            f"if [ -e {path} ]; then opened=yes; break; fi; sleep 0.05; done; "
            '[ "$opened" = yes ] || echo line-gate-timeout'
            for path in self.paths
        ]
        self.command = f"echo line1; {waits[0]}; echo line2; {waits[1]}; echo line3"

    def open(self, line: str) -> None:
        """The test saw ``line`` (line1 or line2): let the command print the next one."""
        self.paths[int(line.removeprefix("line")) - 1].touch()


def request(
    runtime: EngineRuntime, action_ref: str, delay: int | None = None, **parameters: Any
) -> str:
    """Request an execution and announce it, as ``POST /v1/executions`` does."""
    with unit_of_work(runtime.sessions) as session:
        requested = request_execution(
            session, action_ref=action_ref, parameters=parameters, user=USER, delay=delay
        )
    body = {"liveaction_id": requested.liveaction_id, "execution_id": requested.execution_id}
    runtime.publisher.event("st2.execution__create", body)
    runtime.publisher.requested(requested.liveaction_id, requested.execution_id)
    return requested.execution_id


def wait_status(
    runtime: EngineRuntime, execution_id: str, statuses: frozenset[str] | set[str] = COMPLETED
) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with runtime.sessions() as session:
            execution = session.get(ExecutionDB, execution_id)
            assert execution is not None
            if execution.status in statuses:
                return execution.status
        time.sleep(0.05)
    raise AssertionError(f"execution {execution_id} did not reach {sorted(statuses)}")


# --- a raw server-sent event client -----------------------------------------------------------


@dataclass
class Item:
    """A heartbeat (name None) or a frame, with the moment it arrived."""

    at: float
    name: str | None = None
    body: Any = None


class Stream:
    """Reads a stream response item by item, checking the wire format as it goes."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.iter_raw()
        self._buffer = b""
        self.ended = False

    def next(self) -> Item | None:
        """The next heartbeat or frame; None once the server closed the stream."""
        while True:
            if self._buffer.startswith(b"\n"):
                self._buffer = self._buffer[1:]
                return Item(time.monotonic())
            if b"\n\n" in self._buffer:
                frame, self._buffer = self._buffer.split(b"\n\n", 1)
                match = FRAME.fullmatch(frame)
                assert match, f"malformed frame {frame!r}"
                return Item(time.monotonic(), match[1].decode(), json.loads(match[2]))
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                assert self._buffer == b"", f"stream ended inside a frame: {self._buffer!r}"
                self.ended = True
                return None

    def frames_until(self, done: Any, limit: float = 60) -> list[Item]:
        """Frames up to and including the first one ``done`` accepts."""
        frames: list[Item] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            item = self.next()
            assert item is not None, f"stream closed early after {frames}"
            if item.name is None:
                continue
            frames.append(item)
            if done(item):
                return frames
        raise AssertionError(f"no matching frame within {limit}s: {frames}")

    def rest(self, limit: float = 30) -> list[Item]:
        """Everything until the server closes the stream (within ``limit`` seconds)."""
        items = []
        deadline = time.monotonic() + limit
        while (item := self.next()) is not None:
            items.append(item)
            assert time.monotonic() < deadline, f"stream still open after {limit}s: {items}"
        return items


def open_stream(
    engine: RunningEngine, path: str = "/v1/stream", **params: str
) -> tuple[httpx.Client, Stream]:
    client = httpx.Client(timeout=httpx.Timeout(10.0))
    request = client.build_request(
        "GET", f"http://127.0.0.1:{engine.stream_port}{path}", params=params
    )
    response = client.send(request, stream=True)
    return client, Stream(response)


class streaming:  # noqa: N801 - used as a context manager, like open()
    def __init__(self, engine: RunningEngine, path: str = "/v1/stream", **params: str) -> None:
        self.client, self.stream = open_stream(engine, path, **params)

    def __enter__(self) -> Stream:
        return self.stream

    def __exit__(self, *_exc: object) -> None:
        self.stream.response.close()
        self.client.close()


def is_output_of(item: Item, line: str) -> bool:
    """Tell whether ``item`` is an output frame carrying ``line``."""
    return item.name == "st2.execution.output__create" and line in item.body["data"]


def completed(execution_id: str) -> Any:
    def check(item: Item) -> bool:
        return (
            item.name == "st2.execution__update"
            and item.body["id"] == execution_id
            and item.body["status"] in COMPLETED
        )

    return check


# --- raw protocol -----------------------------------------------------------------------------


def test_stream_needs_query_credentials(engine: RunningEngine) -> None:
    url = f"http://127.0.0.1:{engine.stream_port}/v1/stream"
    refused = httpx.get(url, params={"events": TAIL_EVENTS})
    assert refused.status_code == 401
    assert refused.json() == {"faultstring": "Unauthorized - One of Token or API key required."}
    forged = httpx.get(url, params={"x-auth-token": "0" * 32})
    assert forged.status_code == 401
    assert forged.json() == {"faultstring": "Unauthorized - Token not found."}


def test_headers_first_newline_and_heartbeats(engine: RunningEngine, token: str) -> None:
    started = time.monotonic()
    with streaming(engine, events="st2.nothing__matches", **{"x-auth-token": token}) as stream:
        headers_at = time.monotonic()
        response = stream.response
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=UTF-8"
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        beats = [stream.next() for _ in range(3)]
    assert all(beat is not None and beat.name is None for beat in beats)
    times = [beat.at for beat in beats if beat is not None]
    # The first newline comes with the headers, not a heartbeat later: it arrives sooner after
    # them than the heartbeats after it come apart (a ratio, not a time limit).
    assert times[0] - headers_at < (times[2] - times[0]) / 4
    # Two heartbeats follow it, each a period apart: they cannot all be there sooner.
    assert times[2] - started >= 2 * HEARTBEAT_SECONDS * 0.95


def test_api_key_in_the_query_and_the_proxy_prefix(
    engine: RunningEngine, token: str, runtime: EngineRuntime
) -> None:
    created = httpx.post(
        f"{engine.api_url}/apikeys",
        json={"metadata": {"for": "stream"}},
        headers={"X-Auth-Token": token},
    )
    assert created.status_code == 201, created.text
    params = {"events": "st2.execution__*", "st2-api-key": created.json()["key"]}
    with streaming(engine, "/stream/v1/stream/", **params) as stream:
        assert stream.response.status_code == 200
        assert stream.next() is not None
        execution_id = request(runtime, "core.noop")
        frames = stream.frames_until(completed(execution_id))
    assert {frame.body["id"] for frame in frames} == {execution_id}


def test_events_filter_and_full_execution_documents(
    engine: RunningEngine, token: str, runtime: EngineRuntime
) -> None:
    params = {"events": "st2.execution__*", "x-auth-token": token}
    with streaming(engine, **params) as stream:
        stream.next()
        execution_id = request(runtime, "core.local", cmd="echo one; echo two")
        frames = stream.frames_until(completed(execution_id))
    mine = [frame for frame in frames if frame.body["id"] == execution_id]
    assert {frame.name for frame in frames} <= {"st2.execution__create", "st2.execution__update"}
    assert mine[0].name == "st2.execution__create"
    assert mine[0].body["status"] == "requested"
    statuses = [frame.body["status"] for frame in mine]
    assert statuses[-1] == "succeeded"
    assert "running" in statuses
    final = mine[-1].body
    assert final["action"]["ref"] == "core.local"
    assert final["action"]["runner_type"] == "local-shell-cmd"
    assert final["runner"]["name"] == "local-shell-cmd"
    assert final["parameters"] == {"cmd": "echo one; echo two"}
    assert final["context"]["user"] == USER
    assert final["result"]["stdout"] == "one\ntwo"
    assert final["liveaction"]["action"] == "core.local"
    assert final["log"][0]["status"] == "requested"
    assert final["end_timestamp"].endswith("Z")


def test_default_events_include_liveactions_and_action_refs_narrow(
    engine: RunningEngine, token: str, runtime: EngineRuntime
) -> None:
    with streaming(engine, action_refs="core.noop", **{"x-auth-token": token}) as stream:
        stream.next()
        request(runtime, "core.local", cmd="true")
        noop_id = request(runtime, "core.noop")
        frames = stream.frames_until(completed(noop_id))
    names = {frame.name for frame in frames}
    assert names == {
        "st2.execution__create",
        "st2.execution__update",
        "st2.liveaction__create",
        "st2.liveaction__update",
    }
    for frame in frames:
        if frame.name.startswith("st2.liveaction__"):
            assert frame.body["action"] == "core.noop"
            assert frame.body["status"]
        else:
            assert frame.body["action"]["ref"] == "core.noop"


def test_announcements_pass_through_to_the_default_event_set(
    engine: RunningEngine, token: str, runtime: EngineRuntime
) -> None:
    with streaming(engine, **{"x-auth-token": token}) as stream:
        stream.next()
        runtime.publisher.event("st2.announcement__chatops", {"message": "deploy done"})
        runtime.publisher.event("st2.actionalias__create", {"name": "not in the default set"})
        runtime.publisher.event("st2.announcement__general", {"message": "second"})
        frames = stream.frames_until(lambda item: item.name == "st2.announcement__general")
    assert [(frame.name, frame.body) for frame in frames] == [
        ("st2.announcement__chatops", {"message": "deploy done"}),
        ("st2.announcement__general", {"message": "second"}),
    ]


def test_end_execution_id_closes_the_stream_after_its_output(
    engine: RunningEngine, token: str, runtime: EngineRuntime, tmp_path: Path
) -> None:
    gates = Gates(tmp_path)
    execution_id = request(runtime, "core.local", cmd=gates.command)
    params = {
        "events": TAIL_EVENTS,
        "end_event": "st2.execution__update",
        "end_execution_id": execution_id,
        "x-auth-token": token,
    }
    with streaming(engine, **params) as stream:
        first = stream.next()
        items = []
        for line in ("line1", "line2"):
            items += stream.frames_until(lambda item, line=line: is_output_of(item, line))
            gates.open(line)
        items += stream.rest()
        assert stream.ended
    assert first is not None and first.name is None
    frames = [item for item in items if item.name is not None]
    outputs = [frame for frame in frames if frame.name == "st2.execution.output__create"]
    assert "".join(frame.body["data"] for frame in outputs) == "line1\nline2\nline3\n"
    assert {frame.body["execution_id"] for frame in outputs} == {execution_id}
    assert set(outputs[0].body) >= {"id", "action_ref", "runner_ref", "timestamp", "output_type"}
    last = frames[-1]
    assert last.name == "st2.execution__update"
    assert last.body["id"] == execution_id and last.body["status"] == "succeeded"
    assert all(
        frame.name != "st2.execution__update" or frame.body["status"] != "succeeded"
        for frame in frames[:-1]
        if frame.body.get("id") == execution_id
    )


def test_already_completed_execution_is_sent_at_once_and_closed(
    engine: RunningEngine, token: str, runtime: EngineRuntime
) -> None:
    execution_id = request(runtime, "core.local", cmd="echo early; exit 3")
    assert wait_status(runtime, execution_id) == "failed"
    params = {
        "events": TAIL_EVENTS,
        "end_event": "st2.execution__update",
        "end_execution_id": execution_id,
        "x-auth-token": token,
    }
    with streaming(engine, **params) as stream:
        items = stream.rest()
    # The server closes the stream by itself (rest() returns): it does not wait for events.
    assert items[0].name is None
    frames = [item for item in items if item.name is not None]
    assert [frame.name for frame in frames] == [
        "st2.execution.output__create",
        "st2.execution__update",
    ]
    assert frames[0].body["data"] == "early\n"
    assert frames[1].body["id"] == execution_id
    assert frames[1].body["status"] == "failed"
    assert frames[1].body["result"]["return_code"] == 3


# --- the official CLI -------------------------------------------------------------------------


def test_execution_tail_prints_lines_as_they_come_and_ends_with_the_execution(
    st2: St2, runtime: EngineRuntime, tmp_path: Path
) -> None:
    gates = Gates(tmp_path)
    # The delay lets the CLI start and attach before the execution starts, even on a busy machine
    # (the CLI's own start takes seconds when the tests run in parallel).
    execution_id = request(runtime, "core.local", delay=10000, cmd=gates.command)
    process = subprocess.Popen(
        [str(ST2), "execution", "tail", execution_id],
        env={**st2.env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1] in ("line1", "line2"):
                gates.open(lines[-1])

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=5)
    assert process.stderr is not None
    stderr = process.stderr.read()
    assert returncode == 0, stderr
    assert f"Execution {execution_id} has started." in lines
    assert lines[-1] == f"Execution {execution_id} has completed (status=succeeded)."
    # line2 and line3 were only printed after the CLI had shown the line before (the gates).
    assert [line for line in lines if line.startswith("line")] == ["line1", "line2", "line3"]


def test_run_tail_prints_output_and_the_result(st2: St2) -> None:
    result = st2("run", "--tail", "core.local", "cmd=echo hi", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^hi$", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"Execution \w{24} has completed \(status=succeeded\)\.", result.stdout)
    assert "status: succeeded" in result.stdout


def test_tail_of_a_finished_execution_returns_at_once(st2: St2, runtime: EngineRuntime) -> None:
    execution_id = request(runtime, "core.local", cmd="echo finished")
    assert wait_status(runtime, execution_id) == "succeeded"
    # The CLI returns by itself (within the call's timeout): it does not wait for events.
    result = st2("execution", "tail", execution_id, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished" in result.stdout
    assert f"Execution {execution_id} has completed (status=succeeded)." in result.stdout
