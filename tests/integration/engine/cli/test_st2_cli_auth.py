"""The official ``st2`` CLI against the engine: auth, API keys, actions, runners, whoami."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.support.st2cli import PASSWORD, USER, RunningEngine, St2, running_engine


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-auth")
    with running_engine(directory) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return St2(engine, tmp_path / "home")


def test_auth_with_bad_password_fails(st2: St2) -> None:
    result = st2("auth", USER, "-p", "wrong-password")
    assert result.returncode == 1
    assert "401" in result.stdout + result.stderr


def test_without_credentials_the_api_refuses(st2: St2) -> None:
    result = st2("action", "list")
    assert result.returncode != 0
    assert "One of Token or API key required." in result.stdout + result.stderr


def test_token_gives_access_and_whoami(st2: St2) -> None:
    st2.login()
    listed = st2("action", "list", "-j")
    assert listed.returncode == 0, listed.stderr
    refs = {action["ref"] for action in listed.json()}
    assert {"core.local", "core.echo", "core.noop", "core.http"} <= refs
    who = st2("whoami")
    assert f'Currently logged in as "{USER}"' in who.stdout


def test_action_get_and_missing_action(st2: St2) -> None:
    st2.login()
    shown = st2("action", "get", "core.local", "-j")
    assert shown.returncode == 0, shown.stderr
    document = shown.json()
    assert document["runner_type"] == "local-shell-cmd"
    assert "cmd" in document["parameters"]
    missing = st2("action", "get", "core.nope")
    assert missing.returncode == 1
    assert 'Action "core.nope" is not found.' in missing.stdout + missing.stderr


def test_runner_list_and_get(st2: St2) -> None:
    st2.login()
    listed = st2("runner", "list", "-j")
    names = {runner["name"] for runner in listed.json()}
    assert {"local-shell-cmd", "noop", "python-script", "http-request"} <= names
    shown = st2("runner", "get", "local-shell-cmd", "-j")
    assert shown.returncode == 0, shown.stderr
    assert "timeout" in shown.json()["runner_parameters"]


def test_apikey_lifecycle(st2: St2) -> None:
    st2.login()
    created = st2("apikey", "create", "-k", "-m", '{"used_by": "poundcake-api"}')
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert len(key) > 40
    listed = st2("apikey", "list", "-j").json()
    record = next(item for item in listed if item["metadata"] == {"used_by": "poundcake-api"})
    assert key not in str(listed)
    by_key = st2("apikey", "get", key, "-j")
    assert by_key.json()["id"] == record["id"]
    del st2.env["ST2_AUTH_TOKEN"]
    st2.env["ST2_API_KEY"] = key
    assert st2("action", "list").returncode == 0
    st2.env.pop("ST2_API_KEY")
    st2.login()
    assert st2("apikey", "disable", record["id"]).returncode == 0
    st2.env.pop("ST2_AUTH_TOKEN")
    st2.env["ST2_API_KEY"] = key
    refused = st2("action", "list")
    assert refused.returncode != 0
    assert "API key is disabled." in refused.stdout + refused.stderr
    st2.env.pop("ST2_API_KEY")
    st2.login()
    deleted = st2("apikey", "delete", record["id"])
    assert deleted.returncode == 0, deleted.stderr
    gone = st2("apikey", "get", record["id"])
    assert gone.returncode == 1
    assert "not found" in (gone.stdout + gone.stderr).lower()


def test_password_is_not_a_token(st2: St2) -> None:
    st2.env["ST2_AUTH_TOKEN"] = PASSWORD
    refused = st2("action", "list")
    assert refused.returncode != 0
    assert "Token not found." in refused.stdout + refused.stderr
