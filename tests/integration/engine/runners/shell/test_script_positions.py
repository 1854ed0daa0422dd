"""Positional parameters that start at 1, as StackStorm's examples pack writes them, through a
real engine and the ``st2`` CLI: they register, and the shell script runners pass them as
``$1``, ``$2`` after the named arguments (locally, and over SSH to a real sshd)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.support.pack_actions import engine_api, succeeded
from tests.integration.support.sshd import SshServer, running_sshd
from tests.integration.support.st2cli import RunningEngine, St2, logged_in, running_engine
from tests.paths import FIXTURE_PACKS

PACKS = FIXTURE_PACKS / "st2_shapes"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    extra = f"[content]\npacks_base_paths = {PACKS}\n"
    with running_engine(tmp_path_factory.mktemp("positions"), extra_conf=extra) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def test_actions_with_positions_from_1_register(api: httpx.Client) -> None:
    for name in (
        "local_script_args",
        "remote_script_args",
        "local_command_positions",
        "remote_command_positions",
    ):
        action = api.get(f"/actions/positions.{name}")
        assert action.status_code == 200, action.text
        assert action.json()["parameters"]["count"]["position"] == 1


def test_a_local_script_gets_named_arguments_then_positions_1_and_2(st2: St2) -> None:
    result = succeeded(
        st2, "positions.local_script_args", "sleep_delay=0.25", "label=web 1", "count=3"
    )
    assert result["stdout"] == "1=--label=web 1\n2=3\n3=0.25"

    defaults = succeeded(st2, "positions.local_script_args", 'settings={"b": [1, 2]}')
    assert defaults["stdout"] == '1=--settings={"b":[1,2]}\n2=100\n3=0.5'


def test_a_command_with_positioned_parameters_runs(st2: St2) -> None:
    assert succeeded(st2, "positions.local_command_positions", "count=7")["stdout"] == "7 0.5"


def test_a_remote_script_gets_the_same_arguments_over_ssh(st2: St2, ssh_server: SshServer) -> None:
    result = succeeded(
        st2,
        "positions.remote_script_args",
        f"hosts={ssh_server.host}",
        f"port={ssh_server.port}",
        f"username={ssh_server.username}",
        f"private_key={ssh_server.private_key}",
        "count=2",
        "label=db",
        secrets=[ssh_server.private_key.splitlines()[1]],
    )
    assert result[ssh_server.host]["stdout"] == "1=--label=db\n2=2\n3=0.5"
