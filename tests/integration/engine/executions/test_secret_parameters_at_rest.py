"""Secret action parameters are stored sealed, opened only for the runner, re-runs and
``show_secrets``.

Real ``st2api``, ``st2auth``, ``st2scheduler`` and ``st2actionrunner`` processes and the real
``st2`` CLI: an action with a secret string and a secret object parameter runs, the command
proves it received both values (it prints their SHA-256, never the values), and no column of
``execution_db`` or ``liveaction_db`` holds either value in plain text or base64. A re-run
through the CLI gets the same values; ``show_secrets`` opens them; every other answer masks them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.mariadb import (
    admin_connection,
    create_fixture_database,
    drop_fixture_database,
)
from tests.integration.support.st2cli import RunningEngine, St2, eventually, running_engine

TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json")
BINARY_TYPES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
EXECUTION_TABLES = ("execution_db", "liveaction_db")
PARAMETERS = {
    "token": {"type": "string", "secret": True, "required": True},
    "creds": {"type": "object", "secret": True, "required": True},
    "label": {"type": "string", "default": "first"},
    "cmd": {
        "type": "string",
        "immutable": True,
        "default": "printf '%s' '{{ label }}:{{ token }}:{{ creds.pw }}' | sha256sum | cut -c1-64",
    },
}


@dataclass
class Engine:
    running: RunningEngine
    database: str


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    directory = tmp_path_factory.mktemp("secret-params")
    database = f"pctest_sealed_{uuid.uuid4().hex[:12]}"
    create_fixture_database(database)
    try:
        with running_engine(directory, database) as running:
            yield Engine(running, database)
    finally:
        drop_fixture_database(database)


@pytest.fixture(scope="module")
def st2(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    client = St2(engine.running, tmp_path_factory.mktemp("home"))
    client.login()
    return client


@pytest.fixture(scope="module")
def api(st2: St2, engine: Engine) -> Iterator[httpx.Client]:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=engine.running.api_url, headers=headers, timeout=30) as client:
        created = client.post(
            "/actions",
            json={
                "name": "sealed",
                "pack": "default",
                "runner_type": "local-shell-cmd",
                "parameters": PARAMETERS,
            },
        )
        assert created.status_code == 201, created.text
        yield client


def digest(label: str, token: str, password: str) -> str:
    return hashlib.sha256(f"{label}:{token}:{password}".encode()).hexdigest()


def needles(values: dict[str, str]) -> dict[str, str]:
    """Each value in plain text and in base64 (standard and URL-safe)."""
    found = {}
    for name, value in values.items():
        raw = value.encode()
        found[name] = value
        found[f"{name} (base64)"] = base64.b64encode(raw).decode().rstrip("=")
        found[f"{name} (base64url)"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return found


def stored_hits(database: str, searched: dict[str, str]) -> tuple[list[str], int]:
    """Where in the execution tables a needle is found, and how many values were read."""
    found: list[str] = []
    scanned = 0
    with admin_connection(database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s",
            (database,),
        )
        columns = [
            (table, column)
            for table, column, kind in cursor.fetchall()
            if table in EXECUTION_TABLES and kind in TEXT_TYPES + BINARY_TYPES
        ]
        for table, column in columns:
            cursor.execute(f"SELECT `{column}` FROM `{table}` WHERE `{column}` IS NOT NULL")
            for (value,) in cursor.fetchall():
                scanned += 1
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                found.extend(
                    f"{name} in {table}.{column}"
                    for name, needle in searched.items()
                    if needle in text
                )
    return found, scanned


def stored_parameters(database: str, execution_id: str) -> dict[str, Any]:
    with admin_connection(database) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT parameters FROM execution_db WHERE id = %s", (execution_id,))
        (text,) = cursor.fetchone()
    found: dict[str, Any] = json.loads(text)
    return found


def finished(api: httpx.Client, execution_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        document: dict[str, Any] = api.get(f"/executions/{execution_id}").json()
        return document if document["status"] in ("succeeded", "failed") else None

    found: dict[str, Any] = eventually(done, f"execution {execution_id}", 60)
    return found


def test_secret_parameters_are_sealed_at_rest_and_reach_the_runner(
    engine: Engine, st2: St2, api: httpx.Client
) -> None:
    token = f"tok-{secrets.token_hex(12)}"
    password = f"pw-{secrets.token_hex(12)}"
    creds = json.dumps({"user": "ops", "pw": password})
    ran = st2("run", "default.sealed", f"token={token}", f"creds={creds}", "-j")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    first = json.loads(ran.stdout)
    assert first["status"] == "succeeded", first
    assert first["result"]["stdout"] == digest("first", token, password)
    assert first["parameters"] == {"token": "********", "creds": "********"}

    shown = st2("execution", "get", first["id"], "-j")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert token not in shown.stdout and password not in shown.stdout
    assert shown.json()["parameters"] == {"token": "********", "creds": "********"}
    document = api.get(f"/executions/{first['id']}").json()
    assert document["liveaction"]["parameters"] == {"token": "********", "creds": "********"}
    revealed = api.get(f"/executions/{first['id']}", params={"show_secrets": "true"}).json()
    opened = {"token": token, "creds": {"user": "ops", "pw": password}}
    assert revealed["parameters"] == opened
    assert revealed["liveaction"]["parameters"] == opened
    listed = api.get("/executions", params={"action": "default.sealed", "show_secrets": "true"})
    assert [item["parameters"] for item in listed.json()] == [opened]

    rerun = st2("execution", "re-run", first["id"], "label=second", "-j")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    second = json.loads(rerun.stdout)
    assert second["id"] != first["id"]
    assert second["status"] == "succeeded", second
    assert second["result"]["stdout"] == digest("second", token, password)
    assert second["parameters"] == {"token": "********", "creds": "********", "label": "second"}
    again = api.post(f"/executions/{first['id']}/re_run", json={})
    assert again.status_code == 201, again.text
    third = finished(api, again.json()["id"])
    assert third["result"]["stdout"] == digest("first", token, password)

    for execution_id in (first["id"], second["id"], third["id"]):
        sealed = stored_parameters(engine.database, execution_id)
        assert set(sealed["token"]) == {"__secret__"}, sealed
        assert set(sealed["creds"]) == {"__secret__"}, sealed
    found, scanned = stored_hits(engine.database, needles({"token": token, "pw": password}))
    assert scanned > 20
    assert found == []


def test_a_runner_secret_parameter_is_sealed_too(
    engine: Engine, st2: St2, api: httpx.Client
) -> None:
    sudo_password = f"sudo-{secrets.token_hex(12)}"
    ran = st2("run", "-j", "core.local", "cmd=echo ok", f"sudo_password={sudo_password}")
    document = json.loads(ran.stdout)
    assert document["status"] == "succeeded", document
    assert document["parameters"] == {"cmd": "echo ok", "sudo_password": "********"}
    sealed = stored_parameters(engine.database, document["id"])
    assert set(sealed["sudo_password"]) == {"__secret__"}
    assert sealed["cmd"] == "echo ok"
    revealed = api.get(f"/executions/{document['id']}", params={"show_secrets": "1"}).json()
    assert revealed["parameters"]["sudo_password"] == sudo_password
    found, _scanned = stored_hits(engine.database, needles({"sudo": sudo_password}))
    assert found == []


def test_the_scan_finds_a_value_that_is_stored_plainly(engine: Engine, st2: St2) -> None:
    # The control: a non-secret parameter is stored as given, and the same scan finds it.
    plain = f"plain-{secrets.token_hex(12)}"
    ran = st2("run", "-j", "core.local", f"cmd=true {plain}")
    assert json.loads(ran.stdout)["status"] == "succeeded"
    found, _scanned = stored_hits(engine.database, needles({"plain": plain}))
    assert "plain in execution_db.parameters" in found
    assert "plain in liveaction_db.parameters" in found
    assert "plain in execution_db.liveaction" in found


def test_the_engine_created_its_key_readable_by_its_owner_only(engine: Engine) -> None:
    key_file = Path(engine.running.directory) / "data" / "keys" / "datastore.key"
    assert key_file.exists()
    assert key_file.stat().st_mode & 0o077 == 0
