"""The install guide, run as it is written, on a host laid out by ``poundcake install``.

A private mount namespace stands in for a fresh host: overlays on ``/etc``, ``/opt``, ``/var``,
``/run``, ``/usr/local`` and ``/home`` take every write (``/etc/st2/st2.conf``, the ``stanley``
user, ``/var/log/st2``, the units), so nothing reaches this machine, while MariaDB, RabbitMQ and
Redis are the machine's own. Each step runs the guide's line through ``bash`` in that namespace;
``sudo`` is a one-line script that runs its command (the tests run as root, as ``sudo`` would).
The only edits are those the guide asks of its reader: the key into ``.env``, and the servers'
addresses (a RabbitMQ virtual host and a Redis database of this test's own, a free port for
poundcake-api). It shares the seed's database names with the layout tests, so it runs in their
unit (``tests/conftest.py``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.support.commands import BIN
from tests.integration.support.engine_stack import rabbitmq_vhost
from tests.integration.support.layouts import SEED_USERS
from tests.integration.support.mariadb import admin_sql, create_fixture_database
from tests.integration.support.redis_db import claim_redis_database, redis_url
from tests.integration.support.st2cli import ST2, eventually, free_port
from tests.integration.support.terminal import run_on_terminal
from tests.paths import REPOSITORY

# Overlaid in the namespace; the MariaDB socket directory is mounted back over its overlay.
OVERLAID = ("/etc", "/opt", "/var", "/run", "/usr/local", "/home")
MYSQL_SOCKETS = "/run/mysqld"
PASSWORD = "Guide-Admin-1"


@dataclass
class Host:
    namespace: Path
    home: Path

    def command(self, line: str, cwd: str = "/") -> list[str]:
        return ["nsenter", f"--mount={self.namespace}", f"--wd={cwd}", "--", "bash", "-c", line]

    def environment(self) -> dict[str, str]:
        # A login shell's: nothing of the test run's own settings.
        return {
            "PATH": f"/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:{ST2.parent}",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "COLUMNS": "300",
        }

    def run(self, line: str, cwd: str = "/", timeout: float = 180) -> str:
        """Run one line of the guide; fail the test, showing its output, if it fails."""
        done = subprocess.run(
            self.command(line, cwd),
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{line}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def until(self, line: str, what: str, timeout: float = 120) -> None:
        """Run ``line`` until it succeeds (a status check while services start)."""

        def succeeded() -> bool:
            done = subprocess.run(
                self.command(line), env=self.environment(), capture_output=True, check=False
            )
            return done.returncode == 0

        eventually(succeeded, what, timeout)


def _mount_namespace(directory: Path) -> Path:
    """A persistent private mount namespace with the overlays; the file that holds it."""
    holder = directory / "ns"
    holder.mkdir()
    subprocess.run(["mount", "--bind", str(holder), str(holder)], check=True)
    subprocess.run(["mount", "--make-private", str(holder)], check=True)
    namespace = holder / "mnt"
    namespace.touch()
    sockets = directory / "mysqld"
    sockets.mkdir()
    steps = [f"mount --bind {MYSQL_SOCKETS} {sockets}"]
    for path in OVERLAID:
        name = path.strip("/").replace("/", "-")
        upper, work = directory / f"{name}-upper", directory / f"{name}-work"
        upper.mkdir()
        work.mkdir()
        steps.append(
            f"mount -t overlay overlay -o lowerdir={path},upperdir={upper},workdir={work} {path}"
        )
    steps.append(f"mount --bind {sockets} {MYSQL_SOCKETS}")
    steps.append("printf '#!/bin/sh\\nexec \"$@\"\\n' > /usr/local/bin/sudo")
    steps.append("chmod 755 /usr/local/bin/sudo")
    subprocess.run(
        [
            "unshare",
            f"--mount={namespace}",
            "--propagation",
            "private",
            "sh",
            "-ec",
            " && ".join(steps),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return namespace


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("unshare", "nsenter")):
        pytest.fail("the install guide test runs as root with unshare and nsenter, as CI does")
    directory = tmp_path_factory.mktemp("guide-host")
    home = directory / "home-root"
    home.mkdir()
    for database in ("poundcake", "stackstorm"):
        create_fixture_database(database)
    admin_sql(*SEED_USERS)
    namespace = _mount_namespace(directory)
    running = Host(namespace, home)
    try:
        with rabbitmq_vhost() as messaging, claim_redis_database() as redis:
            # Install step 1, then what the guide asks its reader to edit: the servers' addresses.
            running.run(f"sudo {BIN / 'poundcake'} install --create-user")
            running.run(f"sed -i 's|^url = amqp://.*|url = {messaging}|' /etc/st2/st2.conf")
            running.run(
                f"sed -i -e 's|^REDIS_URL=.*|REDIS_URL={redis_url(redis)}|' "
                f"-e '$a POUNDCAKE_PORT={free_port()}' /etc/poundcake/poundcake.env"
            )
            yield running
            subprocess.run(
                running.command("poundcake stop; sudo st2ctl stop"),
                env=running.environment(),
                capture_output=True,
                timeout=180,
                check=False,
            )
    finally:
        subprocess.run(["umount", str(namespace)], check=False)
        subprocess.run(["umount", str(namespace.parent)], check=False)


def test_the_install_guide_runs_as_written(host: Host) -> None:
    # 3. Initialize StackStorm Database
    host.run("sudo st2-setup-db")
    tables = host.run('mysql -ustackstorm -pstackstorm_password stackstorm -e "SHOW TABLES;"')
    for table in ("action_db", "execution_db", "liveaction_db", "rule_db", "trigger_db"):
        assert table in tables

    # 4. Configure StackStorm Services: st2-setup-auth asks, as a person at the terminal sees.
    typed = run_on_terminal(
        host.command("sudo st2-setup-auth"),
        [
            ("Login name [st2admin]:", ""),
            ("Password for st2admin:", PASSWORD),
            ("Again:", PASSWORD),
        ],
        env=host.environment(),
    )
    assert typed.returncode == 0 and "User 'st2admin' created." in typed.screen, typed.screen
    registered = host.run("sudo st2ctl reload --register-all")
    assert re.search(r"Registered [1-9][0-9]* actions\.", registered), registered
    host.run("sudo st2ctl start")
    host.run(
        "sudo systemctl enable st2api st2stream st2auth st2actionrunner st2notifier \\\n"
        "  st2resultstracker st2rulesengine st2sensorcontainer st2garbagecollector st2scheduler"
    )
    wants = host.run("ls /etc/systemd/system/multi-user.target.wants/")
    assert "st2resultstracker.service" in wants and "st2scheduler.service" in wants

    # 5. Verify StackStorm Installation
    host.until("sudo st2ctl status", "every engine service up")
    assert "st2 3.9" in host.run("st2 --version 2>&1")
    host.run(f"st2 login st2admin --password '{PASSWORD}' -w")
    assert "core.local" in host.run("st2 action list")
    assert "linux.file_touch" in host.run("st2 action list --pack linux")

    # 7. Create StackStorm API Key for PoundCake
    created = host.run("""st2 apikey create -k -m '{"used_by": "poundcake-api"}'""")
    key = created.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-zA-Z]{32,}", key), created

    # 8. Configure PoundCake Integration: the key into .env, as the guide says.
    host.run(f"sed -i 's|^ST2_API_KEY=.*|ST2_API_KEY={key}|' /etc/poundcake/poundcake.env")

    # 9. Initialize PoundCake Extension Tables (the venv is the reader's python)
    host.run(
        f". {BIN / 'activate'} && python src/app/scripts/init_unified_database.py",
        cwd=str(REPOSITORY),
    )

    # 10. Verify Unified Database
    shown = host.run('mysql -upoundcake -ppoundcake poundcake -e "SHOW TABLES;"')
    assert "poundcake_st2_execution_extensions" in shown and "poundcake_alerts" in shown
    host.run(
        'mysql -upoundcake -ppoundcake poundcake -e "\n'
        "SELECT \n    p.request_id,\n    s.action as st2_action,\n    s.status\n"
        "FROM poundcake.poundcake_st2_execution_extensions p\n"
        'JOIN stackstorm.execution_db s ON p.st2_execution_id = s.id;"'
    )

    # PoundCake's own services, then the guide's monitoring and troubleshooting lines.
    host.run("poundcake start")
    host.until("poundcake status", "PoundCake's services up")
    actions = host.run(
        f'ST2_API_KEY={key} && curl -fsS -H "St2-Api-Key: $ST2_API_KEY" '
        "http://localhost:9101/v1/actions"
    )
    assert '"ref":"core.local"' in actions.replace(" ", "")
    logs = host.run("timeout 3 sudo tail -f /var/log/st2/*.log || test $? = 124")
    assert "==> /var/log/st2/st2api.log <==" in logs
    assert "==> /var/log/st2/st2actionrunner.log <==" in logs

    # Restore section: restart everything.
    host.run("sudo st2ctl restart")
    restarted = host.run("poundcake restart poundcake-api")  # docker-compose restart api
    assert "poundcake-api started" in restarted

    # API Key Rotation, as written, with the restart as above.
    rotated = host.run(
        """st2 apikey create -k -m '{"used_by": "poundcake-api", "created": "2026-01-14"}'"""
    )
    new_key = rotated.strip().splitlines()[-1]
    host.run(f"sed -i 's|^ST2_API_KEY=.*|ST2_API_KEY={new_key}|' /etc/poundcake/poundcake.env")
    host.run("poundcake restart poundcake-api")
    old_id = next(
        line.split("|")[1].strip()
        for line in host.run("st2 apikey list").splitlines()
        if "poundcake-api" in line and "2026-01-14" not in line and "|" in line
    )
    host.run(f"st2 apikey delete {old_id}")
    host.until("poundcake status", "PoundCake up with the new key")
