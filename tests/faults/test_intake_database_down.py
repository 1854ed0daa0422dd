"""MariaDB down during intake: poundcake-api answers every notification 503 (Alertmanager
retries those), never 2xx or 4xx; once MariaDB is back a sender that retries as Alertmanager does
has lost nothing.

The database is a private ``mariadbd`` this test crashes (SIGKILL), shuts down (SIGTERM) and
freezes (SIGSTOP, then SIGCONT), not the machine's shared server.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.stack import wait_for_health
from tests.faults.load import Sender, notification
from tests.faults.servers import MariaDB, private_mariadb
from tests.integration.support.commands import BIN, command_environment, run_command
from tests.integration.support.st2cli import free_port

TOKEN = "faults-intake-token-5d1e0c2b"
DATABASE = "poundcake_faults"
ALERTS = 30
FROZEN_ALERTS = 10
# poundcake-api waits this long on MariaDB (POUNDCAKE_DATABASE_TIMEOUT_SECONDS); a client waits 30.
DATABASE_TIMEOUT = 5


@dataclass
class Intake:
    database: MariaDB
    url: str
    api: subprocess.Popen[bytes]
    log: Path

    def stored(self, keys: list[str]) -> tuple[Counter[str], Counter[str]]:
        """(episodes, deliveries) per key in the database."""
        episodes = Counter(
            str(row[0])
            for row in self.database.sql(f"SELECT fingerprint FROM {DATABASE}.poundcake_alerts")
        )
        deliveries = Counter(
            str(row[0])
            for row in self.database.sql(
                f"SELECT a.fingerprint FROM {DATABASE}.poundcake_alert_deliveries d "
                f"JOIN {DATABASE}.poundcake_alerts a ON a.id = d.alert_id"
            )
        )
        wanted = set(keys)
        return (
            Counter({key: n for key, n in episodes.items() if key in wanted}),
            Counter({key: n for key, n in deliveries.items() if key in wanted}),
        )


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Intake]:
    tmp_path = tmp_path_factory.mktemp("intake")
    with private_mariadb(tmp_path / "mariadb") as database:
        database.sql(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
        config = tmp_path / "st2.conf"
        config.write_text(
            "[database]\nbackend = mysql\nhost = 127.0.0.1\n"
            f"port = {database.port}\nusername = root\ndb_name = {DATABASE}\n"
        )
        port = free_port()
        env = command_environment(
            tmp_path,
            DATABASE_URL=database.url(DATABASE),
            ST2_TABLE_PREFIX="",
            ST2_CONFIG_PATH=str(config),
            POUNDCAKE_WEBHOOK_TOKENS=TOKEN,
            POUNDCAKE_PORT=str(port),
            POUNDCAKE_DATABASE_TIMEOUT_SECONDS=str(DATABASE_TIMEOUT),
        )
        for command in (
            ("st2-setup-db", "--config-file", str(config)),
            ("poundcake", "db", "init"),
        ):
            done = run_command(*command, env=env)
            assert done.returncode == 0, done.stdout + done.stderr
        log = tmp_path / "poundcake-api.log"
        with log.open("ab") as output:
            api = subprocess.Popen(
                [str(BIN / "poundcake-api")],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for_health(f"{url}/health")
            yield Intake(database, url, api, log)
        finally:
            api.terminate()
            api.wait(timeout=30)


def post_once(intake: Intake, key: str) -> httpx.Response:
    return httpx.post(
        f"{intake.url}/api/v1/webhook",
        json=notification(key),
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )


@pytest.mark.parametrize("outage", ["crash", "shutdown"])
def test_intake_answers_503_while_mariadb_is_down_and_loses_nothing(
    intake: Intake, outage: str
) -> None:
    up = [f"up-{outage}-{n}" for n in range(5)]
    assert [post_once(intake, key).status_code for key in up] == [202] * len(up)

    if outage == "crash":
        intake.database.kill()
    else:
        intake.database.terminate()
    probes = [post_once(intake, f"probe-{n}") for n in range(5)]
    sender = Sender(f"{intake.url}/api/v1/webhook", TOKEN, give_up_after=240)
    keys = sender.start(ALERTS, rate=10)
    while len({key for _, key, _ in sender.answers}) < ALERTS:
        probes.append(post_once(intake, f"probe-{len(probes)}"))
    during = [status for _, _, status in list(sender.answers)]

    assert {probe.status_code for probe in probes} == {503}, [p.text for p in probes]
    assert all(probe.headers.get("retry-after") for probe in probes)
    assert probes[0].json()["error"] == "database unavailable"
    assert set(during) == {503}, Counter(during)

    intake.database.start()
    intake.database.wait_ready()
    sender.wait(timeout=240)

    assert not sender.rejected, sender.rejected[:3]
    assert sorted(sender.accepted) == sorted(keys)
    assert all(status is not None and status >= 500 for _, _, status in sender.answers[:ALERTS])
    episodes, deliveries = intake.stored([*up, *keys])
    assert episodes == Counter(dict.fromkeys([*up, *keys], 1))
    assert set(deliveries) == {*up, *keys}
    assert intake.api.poll() is None, intake.log.read_text()


def test_intake_answers_503_while_mariadb_is_frozen_and_loses_nothing(intake: Intake) -> None:
    """A frozen MariaDB (SIGSTOP: connections accepted, nothing answered) fails each request
    within the database timeout: every answer is a 503 with ``Retry-After``, none is left for the
    client's 30 s timeout to end. After SIGCONT the retries are stored, each alert once."""
    up = [f"up-frozen-{n}" for n in range(3)]
    assert [post_once(intake, key).status_code for key in up] == [202] * len(up)

    intake.database.signal(signal.SIGSTOP)
    try:
        probes = [post_once(intake, f"frozen-probe-{n}") for n in range(2)]
        sender = Sender(f"{intake.url}/api/v1/webhook", TOKEN, give_up_after=240)
        keys = sender.start(FROZEN_ALERTS, rate=5)
        deadline = time.monotonic() + 120
        while len({key for _, key, _ in list(sender.answers)}) < FROZEN_ALERTS:
            assert time.monotonic() < deadline, "no answer while the database is frozen"
            time.sleep(0.5)
        during = [status for _, _, status in list(sender.answers)]
    finally:
        intake.database.signal(signal.SIGCONT)

    assert [probe.status_code for probe in probes] == [503] * len(probes), [
        probe.text for probe in probes
    ]
    assert all(probe.headers.get("retry-after") for probe in probes)
    assert probes[0].json()["error"] == "database unavailable"
    assert set(during) == {503}, Counter(during)

    intake.database.wait_ready()
    sender.wait(timeout=240)

    assert not sender.rejected, sender.rejected[:3]
    assert sorted(sender.accepted) == sorted(keys)
    # Never a client timeout (None): a frozen database is answered, not waited on.
    assert None not in {status for _, _, status in sender.answers}, Counter(
        status for _, _, status in sender.answers
    )
    episodes, deliveries = intake.stored([*up, *keys])
    assert episodes == Counter(dict.fromkeys([*up, *keys], 1))
    assert set(deliveries) == {*up, *keys}
    assert intake.api.poll() is None, intake.log.read_text()
