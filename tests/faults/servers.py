"""Private MariaDB and Redis servers a fault test may kill and restart.

The machine's shared servers serve every other test running at the same time; a fault test that
stops a store runs its own, on a free loopback port in its temporary directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from tests.integration.support.st2cli import eventually, free_port

MARIADB_INSTALL = "/usr/bin/mariadb-install-db"
MARIADBD = "/usr/sbin/mariadbd"
REDIS_SERVER = "/usr/bin/redis-server"


@dataclass
class Server:
    """One server process, restartable on the same port and data."""

    name: str
    directory: Path
    port: int
    command: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        log = (self.directory / f"{self.name}.log").open("ab")
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self) -> None:
        """SIGKILL: a crash, nothing flushed."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)
            self.process = None

    def terminate(self, timeout: float = 60) -> None:
        """SIGTERM: an orderly shutdown."""
        self.signal(signal.SIGTERM)
        if self.process is not None:
            self.process.wait(timeout=timeout)
            self.process = None

    def signal(self, number: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, number)

    def log(self) -> str:
        path = self.directory / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


class MariaDB(Server):
    """A private ``mariadbd``: root without a password on 127.0.0.1."""

    def url(self, database: str) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/{database}"

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        connection = pymysql.connect(host="127.0.0.1", port=self.port, user="root", autocommit=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 60) -> None:
        def answers() -> bool:
            try:
                self.sql("SELECT 1")
            except pymysql.MySQLError:
                assert self.process is not None and self.process.poll() is None, self.log()
                return False
            return True

        eventually(answers, f"mariadbd on port {self.port}", timeout)


class Redis(Server):
    """A private ``redis-server`` that keeps nothing on disk: a restart empties it."""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, timeout: float = 30) -> None:
        def answers() -> bool:
            done = subprocess.run(
                ["redis-cli", "-p", str(self.port), "PING"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            return done.stdout.strip() == "PONG"

        eventually(answers, f"redis-server on port {self.port}", timeout)

    def keys(self) -> int:
        done = subprocess.run(
            ["redis-cli", "-p", str(self.port), "DBSIZE"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return int(done.stdout.strip())


@contextmanager
def private_mariadb(directory: Path) -> Iterator[MariaDB]:
    """A fresh data directory and a running ``mariadbd`` on it; killed at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    installed = subprocess.run(
        [
            MARIADB_INSTALL,
            "--no-defaults",
            f"--datadir={data}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    port = free_port()
    command = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={directory / 'mariadb.sock'}",
        f"--pid-file={directory / 'mariadb.pid'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=32M",
        *(["--user=root"] if os.geteuid() == 0 else []),
    ]
    server = MariaDB("mariadbd", directory, port, command)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()


@contextmanager
def private_redis(directory: Path) -> Iterator[Redis]:
    """A running ``redis-server`` without persistence; killed at the end."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [
        REDIS_SERVER,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
        "--maxmemory-policy",
        "noeviction",
    ]
    server = Redis("redis-server", directory, port, command)
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.kill()
