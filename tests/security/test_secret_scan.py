"""Secrets never reach logs, API answers or the database in plain text (nor in base64).

A realistic flow on the whole product (the session's ``product``, real processes): log in with
a password (engine token and web UI session), create an API key, store an encrypted datastore
value, run an action with a ``secret: true`` parameter, call the engine with the token in the
query string, send alerts with the webhook bearer token (and once with a wrong one), and let a
CAB remediate. Then every log file, every API answer captured (bar the one that hands a new
secret out) and every text column of every table is searched for each secret. The engine keeps
only hashes of tokens, keys and UI sessions, and ciphertext of secret datastore values and of
secret action parameters.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.e2e.stack import TOKEN, Product
from tests.integration.support.mariadb import admin_connection
from tests.integration.support.st2cli import PASSWORD, USER, eventually
from tests.security.conftest import CAB_ALERT, alert_notification

TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "json")
BINARY_TYPES = ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")


@dataclass
class Captured:
    """Every API answer of the flow, as text (status line, headers, body)."""

    answers: list[tuple[str, str]] = field(default_factory=list)

    def keep(self, response: httpx.Response) -> httpx.Response:
        # The request line is only a label: a token the test itself put in a query string is
        # not the server's doing, so only what the server sent is scanned.
        headers = "\n".join(f"{name}: {value}" for name, value in response.headers.items())
        label = f"{response.request.method} {response.url.path}"
        self.answers.append((label, f"{response.status_code}\n{headers}\n{response.text}"))
        return response


@dataclass
class Flow:
    secrets: dict[str, str]
    captured: Captured


def needles(secrets_by_name: dict[str, str]) -> dict[str, str]:
    """What to search for: each secret in plain text and in base64 (standard and URL-safe)."""
    found = {}
    for name, value in secrets_by_name.items():
        raw = value.encode()
        found[name] = value
        found[f"{name} (base64)"] = base64.b64encode(raw).decode().rstrip("=")
        found[f"{name} (base64url)"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return found


def hits(text: str, where: str, searched: dict[str, str]) -> list[str]:
    return [f"{name} in {where}" for name, needle in searched.items() if needle in text]


@pytest.fixture(scope="module")
def flow(product: Product) -> Flow:
    captured = Captured()
    action_secret = f"param-{secrets.token_hex(12)}"
    datastore_secret = f"kv-{secrets.token_hex(12)}"
    wrong_token = f"wrong-bearer-{secrets.token_hex(12)}"
    engine = product.engine

    login = httpx.post(f"{engine.auth_url}/tokens", auth=(USER, PASSWORD), timeout=30)
    assert login.status_code == 201, login.text
    token = str(login.json()["token"])  # the answer that hands the token out is not scanned
    auth = {"X-Auth-Token": token}
    created = httpx.post(
        f"{engine.api_url}/apikeys", headers=auth, json={"metadata": {"by": "scan"}}, timeout=30
    )
    assert created.status_code == 201, created.text
    api_key = str(created.json()["key"])
    ui_login = httpx.post(
        f"{product.api_url}/ui/session", json={"username": USER, "password": PASSWORD}, timeout=30
    )
    assert ui_login.status_code == 200, ui_login.text
    [(cookie_name, ui_session)] = dict(ui_login.cookies).items()
    ui_cookie = {"Cookie": f"{cookie_name}={ui_session}"}

    with httpx.Client(timeout=30) as client:

        def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
            response = client.request(method, url, **kwargs)
            response.read()
            return captured.keep(response)

        stored = call(
            "PUT",
            f"{engine.api_url}/keys/db_password",
            headers={"St2-Api-Key": api_key},
            json={"name": "db_password", "value": datastore_secret, "secret": True},
        )
        assert stored.status_code == 200, stored.text
        call("GET", f"{engine.api_url}/keys/db_password", headers=auth)
        call("GET", f"{engine.api_url}/keys", headers={"St2-Api-Key": api_key})
        started = call(
            "POST",
            f"{engine.api_url}/executions",
            headers=auth,
            json={"action": "secpack.use_secret", "parameters": {"password": action_secret}},
        )
        assert started.status_code == 201, started.text
        execution_id = started.json()["id"]

        def finished() -> dict[str, Any] | None:
            found = call("GET", f"{engine.api_url}/executions/{execution_id}", headers=auth).json()
            return found if found["status"] in ("succeeded", "failed") else None

        execution = eventually(finished, "the secret-taking execution", 60)
        assert execution["status"] == "succeeded", execution
        assert execution["result"]["result"]["length"] == len(action_secret)
        call("GET", f"{engine.api_url}/executions", params={"x-auth-token": token})
        call("GET", f"{engine.api_url}/executions/{execution_id}/output", headers=auth)
        call("GET", f"{engine.api_url}/apikeys", headers=auth)
        call("GET", f"{engine.api_url}/user", headers=auth)

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        alert = alert_notification({"alertname": CAB_ALERT, "instance": "scan-1"})
        accepted = call("POST", f"{product.api_url}/api/v1/webhook", headers=bearer, json=alert)
        assert accepted.status_code == 202, accepted.text
        refused = call(
            "POST",
            f"{product.api_url}/api/v1/webhook",
            headers={"Authorization": f"Bearer {wrong_token}"},
            json=alert,
        )
        assert refused.status_code == 401, refused.text
        product.fire_through_alertmanager({"alertname": CAB_ALERT, "instance": "scan-2"})

        def remediated(instance: str) -> dict[str, Any] | None:
            return next(
                (
                    alert
                    for alert in product.alerts(CAB_ALERT)
                    if alert.get("labels", {}).get("instance") == instance
                    and alert["state"] in ("remediated", "failed")
                ),
                None,
            )

        eventually(lambda: remediated("scan-1"), "the alert sent with the bearer token", 90)
        done = eventually(lambda: remediated("scan-2"), "the alert sent by Alertmanager", 90)
        assert done["state"] == "remediated", done
        request_id = accepted.json()["request_id"]
        call("GET", f"{product.api_url}/api/v1/requests/{request_id}", headers=bearer)
        call("GET", f"{product.api_url}/api/v1/alerts/{done['id']}", headers=bearer)
        call("GET", f"{product.api_url}/ui/api/alerts", headers=ui_cookie)
        call("GET", f"{product.api_url}/ui/api/executions/{execution_id}", headers=ui_cookie)
        call("GET", f"{product.api_url}/ui/session", headers=ui_cookie)

    return Flow(
        secrets={
            "login password": PASSWORD,
            "Basic credentials": f"{USER}:{PASSWORD}",
            "auth token": token,
            "new API key": api_key,
            "PoundCake's engine API key": product.api_key,
            "UI session": ui_session,
            "secret action parameter": action_secret,
            "encrypted datastore value": datastore_secret,
            "webhook bearer token": TOKEN,
            "wrong bearer token": wrong_token,
        },
        captured=captured,
    )


def test_no_log_file_holds_a_secret(product: Product, flow: Flow) -> None:
    searched = needles(flow.secrets)
    logs = sorted(product.directory.rglob("*.log"))
    assert {path.name for path in logs} >= {"poundcake-api.log", "st2api.log", "st2auth.log"}
    found = [
        hit for path in logs for hit in hits(path.read_text(errors="replace"), str(path), searched)
    ]
    assert found == []


def test_no_api_answer_holds_a_secret(flow: Flow) -> None:
    searched = needles(flow.secrets)
    assert len(flow.captured.answers) >= 15
    found = [
        hit for label, answer in flow.captured.answers for hit in hits(answer, label, searched)
    ]
    assert found == []


def test_no_database_column_holds_a_secret(product: Product, flow: Flow) -> None:
    searched = needles(flow.secrets)
    found: list[str] = []
    scanned = 0
    with admin_connection(product.database) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = %s",
            (product.database,),
        )
        columns = [(t, c, d) for t, c, d in cursor.fetchall() if d in TEXT_TYPES + BINARY_TYPES]
        for table, column, _type in columns:
            cursor.execute(f"SELECT `{column}` FROM `{table}` WHERE `{column}` IS NOT NULL")
            for (value,) in cursor.fetchall():
                scanned += 1
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                found.extend(hits(text, f"{table}.{column}", searched))
    tables = {table for table, _column, _type in columns}
    assert {"poundcake_api_calls", "poundcake_alerts"} <= tables
    assert scanned > 100
    assert found == []


def test_the_scan_finds_a_secret_where_there_is_one(product: Product, flow: Flow) -> None:
    # The control: the same search does find a secret that is plainly there.
    searched = needles({"datastore value": flow.secrets["encrypted datastore value"]})
    assert hits(f"x{flow.secrets['encrypted datastore value']}y", "control", searched)
    encoded = base64.b64encode(flow.secrets["auth token"].encode()).decode()
    assert hits(encoded, "control", needles({"auth token": flow.secrets["auth token"]}))
