"""Load for fault tests: a sender that retries like Alertmanager, and what to count afterwards.

Alertmanager's webhook notifier retries a notification on a 5xx answer or a network error, with
backoff, and gives up on a 4xx. :class:`Sender` does the same, one 1-alert notification per
episode, and keeps every answer so a test can say what the product answered while it was broken.
Side effects are counted from a file the CAB's step appends one line to per run, keyed by the
alert's ``instance`` label.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymysql

from tests import alertmanager
from tests.integration.support.mariadb import admin_connection
from tests.integration.support.st2cli import eventually

ALERT_NAME = "FaultLoad"
SLOW_ALERT_NAME = "FaultSlow"
LOAD_WORKFLOW = "poundcake_cabs.fault_load"
TERMINAL_EXECUTIONS = frozenset({"succeeded", "failed", "timeout", "abandoned", "canceled"})
REMEDIATION_OVER = frozenset({"unmatched", "remediated", "failed", "resolved"})


def cabs(effects: Path) -> dict[str, dict[str, Any]]:
    """One CAB whose step appends a line per run to ``effects``; one whose step sleeps."""
    return {
        "fault_load": {
            "name": "fault_load",
            "alert_name_pattern": f"^{ALERT_NAME}$",
            "steps": [
                {
                    "name": "effect",
                    "action": "core.local",
                    "parameters": {"cmd": f"echo {{{{ alert.labels.instance }}}} >> {effects}"},
                    "timeout_seconds": 60,
                }
            ],
        },
        "fault_slow": {
            "name": "fault_slow",
            "alert_name_pattern": f"^{SLOW_ALERT_NAME}$",
            "steps": [
                {
                    "name": "slow",
                    "action": "core.local",
                    "parameters": {
                        "cmd": f"echo {{{{ alert.labels.instance }}}} >> {effects}; sleep 40"
                    },
                    "timeout_seconds": 120,
                }
            ],
        },
    }


def notification(key: str, name: str = ALERT_NAME) -> dict[str, Any]:
    """An Alertmanager version 4 notification with one firing alert keyed ``key``."""
    labels = {"alertname": name, "severity": "warning", "instance": key}
    return alertmanager.notification(labels, fingerprint=key, summary="fault injection")


@dataclass
class Sender:
    """Sends notifications from a thread, each retried on 5xx and network errors until 2xx."""

    url: str
    token: str
    give_up_after: float = 600.0
    accepted: dict[str, int] = field(default_factory=dict)
    answers: list[tuple[float, str, int | None]] = field(default_factory=list)
    rejected: list[tuple[str, int, str]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, key: str, name: str = ALERT_NAME) -> None:
        """Deliver one notification, retrying as Alertmanager does; record every answer."""
        body = notification(key, name)
        headers = {"Authorization": f"Bearer {self.token}"}
        delay = 0.1
        deadline = time.monotonic() + self.give_up_after
        with httpx.Client(timeout=30) as client:
            while time.monotonic() < deadline:
                status: int | None
                try:
                    response = client.post(self.url, json=body, headers=headers)
                    status = response.status_code
                except httpx.HTTPError:
                    status = None
                with self._lock:
                    self.answers.append((time.monotonic(), key, status))
                if status is not None and 200 <= status < 300:
                    with self._lock:
                        self.accepted[key] = status
                    return
                if status is not None and status < 500:
                    with self._lock:
                        self.rejected.append((key, status, response.text))
                    return
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def start(self, count: int, rate: float, name: str = ALERT_NAME) -> list[str]:
        """Send ``count`` new episodes at ``rate`` per second in the background; their keys."""
        keys = [f"{name.lower()}-{uuid.uuid4().hex[:12]}" for _ in range(count)]

        def run() -> None:
            workers = []
            for key in keys:
                worker = threading.Thread(target=self.send, args=(key, name), daemon=True)
                worker.start()
                workers.append(worker)
                time.sleep(1 / rate)
            for worker in workers:
                worker.join()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)
        return keys

    def wait(self, timeout: float = 300) -> None:
        """Wait until every notification started is accepted, rejected or given up."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            assert not thread.is_alive(), "the sender is still retrying"


def query(database: str, statement: str, *arguments: Any) -> list[tuple[Any, ...]]:
    """Rows of one statement on the product's database (the shared MariaDB)."""
    connection = admin_connection(database)
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement, arguments)
            return list(cursor.fetchall())
    finally:
        connection.close()


def alert_states(database: str, keys: list[str]) -> dict[str, str]:
    """fingerprint -> state of the episodes keyed ``keys`` that intake stored."""
    if not keys:
        return {}
    marks = ", ".join(["%s"] * len(keys))
    rows = query(
        database,
        f"SELECT fingerprint, state FROM poundcake_alerts WHERE fingerprint IN ({marks})",
        *keys,
    )
    return {str(key): str(state) for key, state in rows}


def wait_settled(database: str, keys: list[str], timeout: float = 300) -> dict[str, str]:
    """Wait until every episode keyed ``keys`` is stored and its remediation is over."""

    def settled() -> dict[str, str] | None:
        try:
            states = alert_states(database, keys)
        except pymysql.MySQLError:
            return None
        done = len(states) == len(keys) and set(states.values()) <= REMEDIATION_OVER
        return states if done else None

    try:
        found: dict[str, str] = eventually(settled, f"{len(keys)} episodes to settle", timeout)
    except AssertionError:
        states = alert_states(database, keys)
        missing = sorted(set(keys) - set(states))
        raise AssertionError(
            f"not settled after {timeout}s: {Counter(states.values())}, {len(missing)} missing "
            f"(first: {missing[:3]})"
        ) from None
    return found


def side_effects(effects: Path) -> Counter[str]:
    """Runs of the CAB step per alert key."""
    if not effects.exists():
        return Counter()
    return Counter(line.strip() for line in effects.read_text().splitlines() if line.strip())


def execution_statuses(database: str, action: str | None = None) -> Counter[str]:
    """How many engine executions (of ``action``, if given) are in each status."""
    if action is None:
        rows = query(database, "SELECT status, COUNT(*) FROM execution_db GROUP BY status")
    else:
        rows = query(
            database,
            "SELECT status, COUNT(*) FROM execution_db WHERE action = %s GROUP BY status",
            action,
        )
    return Counter({str(status): int(count) for status, count in rows})


def dispatches(database: str, keys: list[str]) -> Counter[str]:
    """Trigger instances per alert key: the engine was told about each episode this often."""
    rows = query(
        database,
        "SELECT payload FROM trigger_instance_db WHERE `trigger` = 'poundcake.alert'",
    )
    wanted = set(keys)
    found: Counter[str] = Counter()
    for (payload,) in rows:
        for key in wanted:
            if f'"{key}"' in str(payload):
                found[key] += 1
                break
    return found


def assert_exactly_once(effects: Path, keys: list[str]) -> None:
    """Every key's step ran once: none missing, none twice."""
    counted = side_effects(effects)
    missing = [key for key in keys if counted[key] == 0]
    twice = {key: counted[key] for key in keys if counted[key] > 1}
    assert not missing, f"{len(missing)} of {len(keys)} alerts never remediated: {missing[:5]}"
    assert not twice, f"side effects ran more than once: {twice}"
