"""``poundcake db grants``: least-privilege users that suffice for the services and deny the rest.

The grants are applied by the real command as root, then exercised by connecting as each user
(MariaDB answers "command denied" for what is not granted) and by running the whole product,
engine and PoundCake, under those users while an alert is remediated.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from tests.e2e.stack import running_product
from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.mariadb import ADMIN_HOST, ADMIN_PORT, admin_sql
from tests.integration.support.ops_layout import OpsLayout, build_ops_layout, drop_ops_layout

COMMAND_DENIED = 1142
HOST = "127.0.0.1"


@dataclass
class Users:
    poundcake: str
    engine: str
    poundcake_password: str
    engine_password: str

    def drop(self) -> None:
        for name in (self.poundcake, self.engine):
            admin_sql(f"DROP USER IF EXISTS '{name}'@'{HOST}'")

    def options(self) -> list[str]:
        return ["--poundcake-user", self.poundcake, "--engine-user", self.engine, "--host", HOST]

    def env(self) -> dict[str, str]:
        return {
            "POUNDCAKE_DB_PASSWORD": self.poundcake_password,
            "ST2_DB_PASSWORD": self.engine_password,
        }


@pytest.fixture
def users() -> Iterator[Users]:
    suffix = uuid.uuid4().hex[:8]
    made = Users(
        f"pc_{suffix}", f"st2_{suffix}", f"Pc-{uuid.uuid4().hex}", f"St-{uuid.uuid4().hex}"
    )
    try:
        yield made
    finally:
        made.drop()


def connect(user: str, password: str, database: str) -> pymysql.connections.Connection:
    return pymysql.connect(
        host=HOST,
        port=ADMIN_PORT,
        user=user,
        password=password,
        database=database,
        autocommit=True,
    )


def run(connection: pymysql.connections.Connection, statement: str) -> list[Any]:
    with connection.cursor() as cursor:
        cursor.execute(statement)
        return list(cursor.fetchall())


def assert_denied(connection: pymysql.connections.Connection, statement: str) -> None:
    with pytest.raises(pymysql.err.OperationalError) as raised:
        run(connection, statement)
    assert raised.value.args[0] == COMMAND_DENIED, raised.value
    assert "command denied" in str(raised.value)


@pytest.fixture(params=["prefixed", "two"])
def layout(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpsLayout]:
    built = build_ops_layout(
        request.param,
        tmp_path,
        "st2_" if request.param == "prefixed" else "",
        request.param == "two",
    )
    try:
        yield built
    finally:
        drop_ops_layout(built)


def test_grants_suffice_for_each_side_and_deny_the_rest(layout: OpsLayout, users: Users) -> None:
    env = {**layout.env, **users.env()}
    printed = run_command("poundcake", "db", "grants", *users.options(), env=env)
    assert printed.returncode == 0, printed.stderr
    assert "GRANT SELECT ON" in printed.stdout
    assert users.poundcake_password not in printed.stdout
    assert users.engine_password not in printed.stdout + printed.stderr
    assert admin_sql(f"SELECT COUNT(*) FROM mysql.user WHERE User = '{users.poundcake}'")[0][0] == 0

    applied = run_command("poundcake", "db", "grants", "--apply", *users.options(), env=env)
    assert applied.returncode == 0, applied.stderr
    assert "Generated" not in applied.stdout
    assert users.poundcake_password not in applied.stdout + applied.stderr

    pc_db, st2_db, prefix = layout.poundcake_database, layout.engine_database, layout.prefix
    executions = f"`{st2_db}`.`{prefix}execution_db`"
    alerts, calls = f"`{pc_db}`.`poundcake_alerts`", f"`{pc_db}`.`poundcake_api_calls`"
    extensions = f"`{pc_db}`.`poundcake_st2_execution_extensions`"

    poundcake = connect(users.poundcake, users.poundcake_password, pc_db)
    assert run(poundcake, f"SELECT COUNT(*) FROM {executions}")[0][0] == 1
    run(poundcake, f"UPDATE {alerts} SET status = status")
    run(poundcake, f"DELETE FROM {calls} WHERE 1 = 0")
    run(poundcake, f"INSERT INTO {calls} SELECT * FROM {calls} WHERE 1 = 0")
    assert_denied(poundcake, f"INSERT INTO {executions} SELECT * FROM {executions} WHERE 1 = 0")
    assert_denied(poundcake, f"UPDATE {executions} SET status = 'failed'")
    assert_denied(poundcake, f"DELETE FROM {executions}")
    assert_denied(poundcake, f"DROP TABLE {alerts}")
    assert_denied(poundcake, f"CREATE TABLE `{pc_db}`.`poundcake_extra` (id INT)")

    engine = connect(users.engine, users.engine_password, st2_db)
    assert run(engine, f"SELECT COUNT(*) FROM {alerts}")[0][0] == 1
    run(engine, f"SELECT COUNT(*) FROM {calls}")
    run(engine, f"UPDATE {executions} SET status = status")
    assert_denied(engine, f"INSERT INTO {alerts} SELECT * FROM {alerts} WHERE 1 = 0")
    assert_denied(engine, f"UPDATE {alerts} SET status = 'resolved'")
    assert_denied(engine, f"DELETE FROM {calls}")
    assert_denied(engine, f"SELECT * FROM {extensions}")
    assert_denied(engine, f"DROP TABLE {executions}")
    # Foreign keys act without privileges: the engine deletes an execution (its garbage
    # collector does) and InnoDB clears the extension row's link it may not write itself.
    run(engine, f"DELETE FROM {executions}")
    assert admin_sql(f"SELECT COUNT(*) FROM {extensions} WHERE st2_execution_id IS NULL")[0][0] == 1
    poundcake.close()
    engine.close()

    again = run_command("poundcake", "db", "grants", "--apply", *users.options(), env=layout.env)
    assert again.returncode == 0, again.stderr
    assert "Generated" not in again.stdout
    connect(users.poundcake, users.poundcake_password, pc_db).close()


def test_new_users_without_passwords_get_generated_ones(tmp_path: Path, users: Users) -> None:
    layout = build_ops_layout("single", tmp_path, "", False)
    try:
        applied = layout.poundcake("db", "grants", "--apply", *users.options())
        assert applied.returncode == 0, applied.stderr
        generated = dict(
            line.removeprefix("Generated password for ").split(": ", 1)
            for line in applied.stdout.splitlines()
            if line.startswith("Generated password for ")
        )
        assert set(generated) == {f"'{users.poundcake}'@'{HOST}'", f"'{users.engine}'@'{HOST}'"}
        password = generated[f"'{users.poundcake}'@'{HOST}'"]
        with connect(users.poundcake, password, layout.poundcake_database) as connection:
            run(connection, "SELECT COUNT(*) FROM poundcake_alerts")
    finally:
        drop_ops_layout(layout)


def test_grants_are_refused_for_the_embedded_sqlite_database(tmp_path: Path) -> None:
    env = command_environment(tmp_path)
    result = run_command("poundcake", "db", "grants", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "SQLite database has no users" in result.stderr


CAB = {
    "name": "grants_restart",
    "alert_name_pattern": "^GrantsRestart$",
    "steps": [
        {
            "name": "restart",
            "action": "core.local",
            "parameters": {"cmd": "echo restarted {{ alert.labels.instance }}"},
            "expected_result": {"stdout_contains": "restarted"},
        }
    ],
}


def grant_service_users(users: Users) -> Callable[[Path, str], tuple[Path, str]]:
    """Set up PoundCake's tables as root, grant, and point the services at the two users."""

    def hook(admin_config: Path, database: str) -> tuple[Path, str]:
        env = command_environment(
            admin_config.parent / "grants",
            DATABASE_URL=f"mysql+pymysql://root@{ADMIN_HOST}:{ADMIN_PORT}/{database}",
            ST2_TABLE_PREFIX="",
            ST2_CONFIG_PATH=str(admin_config),
            **users.env(),
        )
        for command in (("db", "init"), ("db", "grants", "--apply", *users.options())):
            result = run_command("poundcake", *command, env=env, cwd=admin_config.parent)
            assert result.returncode == 0, result.stdout + result.stderr
        text = admin_config.read_text()
        assert "username = root\n" in text
        services = admin_config.with_name("st2-services.conf")
        services.write_text(
            text.replace(
                "username = root\n",
                f"username = {users.engine}\npassword = {users.engine_password}\n",
            )
        )
        url = (
            f"mysql+pymysql://{users.poundcake}:{users.poundcake_password}"
            f"@{HOST}:{ADMIN_PORT}/{database}"
        )
        return services, url

    return hook


def test_the_product_runs_under_the_least_privilege_users(tmp_path: Path, users: Users) -> None:
    with running_product(
        tmp_path, {"grants_restart": CAB}, database_users=grant_service_users(users)
    ) as product:
        assert users.poundcake in product.env["DATABASE_URL"]
        assert f"username = {users.engine}" in product.engine.config_path.read_text()
        product.fire_through_alertmanager(
            {"alertname": "GrantsRestart", "severity": "warning", "instance": "web-3"}
        )
        alert = product.alert_in_state("GrantsRestart", "remediated", "failed", timeout=180)
        assert alert["state"] == "remediated", alert
        trail = product.api("GET", f"/api/v1/requests/{alert['request_id']}")
        assert trail.status_code == 200, trail.text
        [workflow] = trail.json()["trail"]["alerts"][0]["remediation"]["executions"]
        assert workflow["status"] == "succeeded"

        database = product.database
        with connect(users.poundcake, users.poundcake_password, database) as poundcake:
            assert_denied(poundcake, "UPDATE execution_db SET status = 'failed'")
            assert_denied(poundcake, "DELETE FROM trigger_instance_db")
            assert_denied(poundcake, "INSERT INTO rule_db SELECT * FROM rule_db WHERE 1 = 0")
        with connect(users.engine, users.engine_password, database) as engine:
            assert run(engine, "SELECT COUNT(*) FROM poundcake_alerts")[0][0] >= 1
            assert_denied(engine, "UPDATE poundcake_alerts SET state = 'failed'")
            assert_denied(engine, "DELETE FROM poundcake_st2_execution_extensions")

        logs = "".join(product.log(name) for name in product.processes)
        logs += "".join(product.engine.log(name) for name in product.engine.processes)
        assert "command denied" not in logs
