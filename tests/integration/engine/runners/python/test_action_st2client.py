"""A Python action calling the engine's API with the PyPI st2client from its pack's virtualenv,
with the variables and short-lived token the python runner gives it as StackStorm's does.

The engine runs as real processes with ``tests/fixtures/packs/st2client`` in its pack search
path; ``st2 run packs.setup_virtualenv`` installs st2client 3.9.0 into the pack's virtualenv
with pip (from pip's cache after the first run, as the test tools install the same version).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.auth.models import TokenDB
from tests.integration.support.st2cli import (
    USER,
    RunningEngine,
    St2,
    logged_in,
    output,
    running_engine,
)
from tests.paths import FIXTURE_PACKS

FIXTURES = FIXTURE_PACKS / "st2client"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("action-st2client")
    extra = f"[content]\npacks_base_paths = {FIXTURES}\n"
    with running_engine(directory, extra_conf=extra) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


def action_tokens(engine: RunningEngine) -> list[TokenDB]:
    """The tokens issued to action runs that still exist."""
    db_engine = make_st2_engine(load_st2_config(engine.config_path), pool_size=1)
    try:
        with db_engine.connect() as connection:
            rows = connection.execute(sa.select(TokenDB.__table__)).all()
    finally:
        db_engine.dispose()
    tokens = [TokenDB(**row._mapping) for row in rows]
    return [t for t in tokens if (t.metadata_ or {}).get("service") == "actions_container"]


def test_an_action_calls_the_api_with_st2client_and_its_runs_token(
    st2: St2, engine: RunningEngine
) -> None:
    setup = st2("run", "packs.setup_virtualenv", "packs=st2client_tests", "-j", timeout=600)
    assert setup.returncode == 0, output(setup)
    assert setup.json()["status"] == "succeeded", output(setup)

    ran = st2("run", "st2client_tests.use_st2client", "key=from_action", "value=42", "-j")
    execution = ran.json()
    assert execution["status"] == "succeeded", output(ran)
    result = execution["result"]["result"]
    assert result["st2client"] == "3.9.0"
    assert result["stored"] == "42"
    assert result["through_service"] == "42"
    assert result["execution"] == {
        "id": execution["id"],
        "status": "running",
        "action": "st2client_tests.use_st2client",
    }
    assert result["user"] == USER
    assert result["service_client"] == "st2client.client.Client"
    assert result["same_token"] is True
    assert result["variables"] == {
        "ST2_ACTION_PACK_NAME": "st2client_tests",
        "ST2_ACTION_EXECUTION_ID": execution["id"],
        "ST2_ACTION_API_URL": f"{engine.api_url}",
        "ST2_ACTION_DEBUG": "False",
        "ST2_API_URL": f"{engine.api_url}",
    }
    # The token lived for the run only.
    assert action_tokens(engine) == []
    key = st2("key", "get", "from_action", "-j")
    assert key.json()["value"] == "42"


SHELL_CALL = (
    "python3 -c 'import json, os, urllib.request as web; "
    'url = os.environ["ST2_ACTION_API_URL"] + "/executions/"; '
    'url += os.environ["ST2_ACTION_EXECUTION_ID"]; '
    'request = web.Request(url, headers={"X-Auth-Token": os.environ["ST2_ACTION_AUTH_TOKEN"]}); '
    'print(json.load(web.urlopen(request))["action"]["ref"])\''
)


def test_a_shell_action_calls_the_api_with_its_runs_token(st2: St2, engine: RunningEngine) -> None:
    ran = st2("run", "core.local", f"cmd={SHELL_CALL}", "-j")
    execution = ran.json()
    assert execution["status"] == "succeeded", output(ran)
    assert execution["result"]["stdout"] == "core.local"
    assert action_tokens(engine) == []
