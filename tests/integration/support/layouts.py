"""Build the install guide's database layouts on the real MariaDB server, as its steps do.

The seed's own names are used (databases ``poundcake`` and ``stackstorm``, users ``poundcake`` and
``stackstorm`` with the seed's passwords) so its commands and queries can run verbatim.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config import (
    PoundCakeConfig,
    Settings,
    St2Config,
    load_poundcake_config,
    load_st2_config,
)
from poundcake.db.engine import make_poundcake_engine, make_st2_engine
from poundcake.engine.models import ActionDB, ExecutionDB, RuleDB, WebhookDB
from poundcake.ids import new_id
from poundcake.remediation.models import (
    ActionExtension,
    Alert,
    ExecutionExtension,
    RuleExtension,
    WebhookExtension,
)
from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.mariadb import (
    admin_sql,
    create_fixture_database,
    drop_fixture_database,
)

SEED_USERS = (
    "CREATE USER IF NOT EXISTS 'poundcake'@'localhost' IDENTIFIED BY 'poundcake'",
    "ALTER USER 'poundcake'@'localhost' IDENTIFIED BY 'poundcake'",
    "GRANT ALL PRIVILEGES ON poundcake.* TO 'poundcake'@'localhost'",
    "GRANT SELECT ON stackstorm.* TO 'poundcake'@'localhost'",
    "CREATE USER IF NOT EXISTS 'stackstorm'@'localhost' IDENTIFIED BY 'stackstorm_password'",
    "ALTER USER 'stackstorm'@'localhost' IDENTIFIED BY 'stackstorm_password'",
    "GRANT ALL PRIVILEGES ON stackstorm.* TO 'stackstorm'@'localhost'",
    "FLUSH PRIVILEGES",
)

ST2_CONF_SEPARATE = """\
[database]
# Use MariaDB instead of MongoDB
db_name = stackstorm
host = localhost
port = 3306
username = stackstorm
password = stackstorm_password
# Use MySQL backend
backend = mysql

[coordination]
# Optional: Use MariaDB for coordination
url = mysql://stackstorm:stackstorm_password@localhost:3306/stackstorm
"""

ST2_CONF_SHARED_PREFIXED = """\
[database]
db_name = poundcake
host = localhost
port = 3306
username = poundcake
password = poundcake
backend = mysql
# Use table prefix to separate ST2 tables
table_prefix = st2_
"""

ST2_CONF_SHARED_PLAIN = """\
[database]
db_name = poundcake
host = localhost
port = 3306
username = poundcake
password = poundcake
backend = mysql
"""

ENV_SHARED = "DATABASE_URL=mysql+pymysql://poundcake:poundcake@localhost:3306/poundcake\n"

ENV_SEPARATE = """\
# Database (shared or separate)
DATABASE_URL=mysql+pymysql://poundcake:poundcake@localhost:3306/poundcake

# ST2 Database (if separate)
ST2_DATABASE_URL=mysql+pymysql://stackstorm:stackstorm_password@localhost:3306/stackstorm
"""


@dataclass
class Layout:
    """One database layout, set up by the real commands."""

    name: str
    directory: Path
    st2_conf: Path
    env_file: Path
    st2: St2Config
    poundcake: PoundCakeConfig
    setup_outputs: list[str]

    def engine_engine(self) -> sa.Engine:
        return make_st2_engine(self.st2, pool_size=1)

    def poundcake_engine(self) -> sa.Engine:
        return make_poundcake_engine(self.poundcake, pool_size=1)


def mysql(*args: str) -> list[list[str]]:
    """Run the ``mysql`` client exactly as the install guide does; return header and rows."""
    completed = subprocess.run(
        ["mysql", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return [line.split("\t") for line in completed.stdout.splitlines()]


def build_layout(
    name: str, directory: Path, st2_conf: str, env: str, databases: tuple[str, ...]
) -> Layout:
    """Create the databases and users (install step 2), then run ``st2-setup-db`` (step 3) and
    ``poundcake db init`` (step 9)."""
    for database in ("poundcake", "stackstorm"):
        drop_fixture_database(database)
    for database in databases:
        create_fixture_database(database)
    admin_sql(*SEED_USERS)
    directory.mkdir(parents=True, exist_ok=True)
    conf_path = directory / "st2.conf"
    conf_path.write_text(st2_conf)
    env_path = directory / ".env"
    env_path.write_text(env)
    environment = command_environment(directory, ST2_CONFIG_PATH=str(conf_path))
    outputs = []
    for command in (["st2-setup-db", "--config-file", str(conf_path)], ["poundcake", "db", "init"]):
        result = run_command(command[0], *command[1:], env=environment, cwd=directory)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    st2 = load_st2_config(conf_path)
    settings = Settings(_env_file=env_path, ST2_CONFIG_PATH=str(conf_path))
    return Layout(
        name=name,
        directory=directory,
        st2_conf=conf_path,
        env_file=env_path,
        st2=st2,
        poundcake=load_poundcake_config(settings, st2),
        setup_outputs=outputs,
    )


def teardown_layout() -> None:
    for database in ("poundcake", "stackstorm"):
        drop_fixture_database(database)


@dataclass
class SampleRows:
    action_id: str
    rule_id: str
    execution_id: str
    webhook_id: str
    alert_id: str
    request_id: str


def insert_engine_rows(engine: sa.Engine) -> SampleRows:
    """Insert an action, a rule, an execution and a webhook through the engine's models."""
    now = datetime.now(UTC)
    rows = SampleRows(new_id(), new_id(), new_id(), new_id(), new_id(), f"req-{new_id()}")
    with Session(engine) as session:
        session.add(
            ActionDB(
                id=rows.action_id,
                uid="action:linux:restart_service",
                ref="linux.restart_service",
                name="restart_service",
                pack="linux",
                description="Restart a service",
                runner_type="local-shell-cmd",
                parameters={"service": {"type": "string", "required": True}},
                metadata_file="actions/restart_service.yaml",
            )
        )
        session.add(
            RuleDB(
                id=rows.rule_id,
                uid="rule:poundcake:disk_full",
                ref="poundcake.disk_full",
                name="disk_full",
                pack="poundcake",
                trigger="poundcake.alert",
                action={"ref": "linux.restart_service", "parameters": {}},
                action_ref="linux.restart_service",
                enabled=True,
            )
        )
        session.add(
            ExecutionDB(
                id=rows.execution_id,
                action="linux.restart_service",
                action_snapshot={"ref": "linux.restart_service"},
                runner={"name": "local-shell-cmd"},
                runner_type="local-shell-cmd",
                status="succeeded",
                start_timestamp=now - timedelta(seconds=5),
                end_timestamp=now,
                parameters={"service": "nginx"},
                result={"succeeded": True, "stdout": "ok ✓"},
                context={"user": "stanley", "request_id": rows.request_id},
            )
        )
        session.add(
            WebhookDB(
                id=rows.webhook_id,
                name="alertmanager",
                type="core.st2.webhook",
                url="alertmanager",
                trigger="core.alertmanager",
                created_at=now,
            )
        )
        session.commit()
    return rows


def insert_poundcake_rows(engine: sa.Engine, rows: SampleRows) -> None:
    """Insert an alert and one extension row per engine row through PoundCake's models."""
    now = datetime.now(UTC)
    stamps = {"created_at": now, "updated_at": now}
    with Session(engine) as session:
        session.add(
            Alert(
                id=rows.alert_id,
                fingerprint="c0ffee",
                starts_at=now,
                alert_name="DiskFull",
                severity="critical",
                alertmanager_status="firing",
                state="remediating",
                labels={"alertname": "DiskFull", "instance": "web-1"},
                annotations={"summary": "Disk full on web-1"},
                request_id=rows.request_id,
                last_request_id=rows.request_id,
                request_ids=[rows.request_id],
                **stamps,
            )
        )
        session.flush()
        session.add_all(
            [
                ActionExtension(
                    id=new_id(),
                    st2_action_id=rows.action_id,
                    action_type="remediation",
                    timeout_seconds=60,
                    **stamps,
                ),
                RuleExtension(
                    id=new_id(),
                    st2_rule_id=rows.rule_id,
                    cab_name="disk-full",
                    alert_name_pattern="^DiskFull$",
                    severity_filter=["critical"],
                    **stamps,
                ),
                ExecutionExtension(
                    id=new_id(),
                    st2_execution_id=rows.execution_id,
                    request_id=rows.request_id,
                    alert_id=rows.alert_id,
                    step_order=1,
                    expected_result={"succeeded": True},
                    result_matched=True,
                    **stamps,
                ),
                WebhookExtension(id=new_id(), st2_webhook_id=rows.webhook_id, **stamps),
            ]
        )
        session.commit()
