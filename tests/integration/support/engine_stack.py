"""A running engine for tests: a fresh MariaDB database, a RabbitMQ vhost of its own, the
schema, and scheduler and action-runner loops (in threads, or as real processes)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from poundcake.config import St2Config, load_st2_config
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.process import ActionRunner, ActionRunnerSettings
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.service import RequestedExecution, request_execution
from poundcake.engine.executions.states import COMPLETED
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.runtime import EngineRuntime, make_runtime
from poundcake.engine.scheduler.process import Scheduler, SchedulerSettings


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ virtual host of its own, so tests never see each other's messages."""
    name = f"pctest_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@127.0.0.1:5672/{name}"
    finally:
        rabbitmqctl("delete_vhost", name)


def write_st2_conf(path: Path, database: str, messaging_url: str, extra: str = "") -> Path:
    path.write_text(
        "[database]\nbackend = mysql\nhost = 127.0.0.1\nport = 3306\nusername = root\n"
        f"db_name = {database}\n\n[messaging]\nurl = {messaging_url}\n\n"
        "[scheduler]\nsweep_interval = 0.5\nlost_after = 2\nunclaimed_after = 5\n\n"
        f"[actionrunner]\nlease_seconds = 3\ngraceful_shutdown_seconds = 2\n{extra}"
    )
    return path


@dataclass
class EngineStack:
    """The engine under test."""

    config: St2Config
    config_path: Path
    runtime: EngineRuntime
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_scheduler(self) -> Scheduler:
        scheduler = Scheduler(self.runtime, SchedulerSettings(sweep_interval=0.5, lost_after=2))
        self._thread(scheduler.run)
        return scheduler

    def start_runner(self, concurrency: int = 4) -> ActionRunner:
        runner = ActionRunner(
            self.runtime, ActionRunnerSettings(concurrency=concurrency, lease_seconds=3)
        )
        self._thread(runner.run)
        return runner

    def spawn(self, command: str, log: Path) -> subprocess.Popen[bytes]:
        """Start ``st2scheduler`` or ``st2actionrunner`` as a real process."""
        from tests.integration.support.commands import BIN

        process = subprocess.Popen(
            [str(BIN / command), "--config-file", str(self.config_path)],
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def _thread(self, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self.stop,), daemon=True)
        thread.start()
        self.threads.append(thread)

    def request(
        self, action_ref: str, parameters: dict[str, object] | None = None, **kw: object
    ) -> RequestedExecution:
        with unit_of_work(self.runtime.sessions) as session:
            requested = request_execution(
                session,
                action_ref=action_ref,
                parameters=parameters or {},
                user="tester",
                **{"cipher": self.cipher(), **kw},  # type: ignore[arg-type]
            )
        self.runtime.publisher.requested(requested.liveaction_id, requested.execution_id)
        return requested

    def cipher(self) -> DatastoreCipher:
        """The engine's datastore cipher (secret parameters are stored sealed with it)."""
        return DatastoreCipher.from_key_file(self.config.datastore_key_path)

    def execution(self, execution_id: str) -> ExecutionDB:
        with self.runtime.sessions() as session:
            found = session.get(ExecutionDB, execution_id)
            assert found is not None
            session.expunge(found)
            return found

    def wait(
        self,
        execution_id: str,
        statuses: frozenset[str] | set[str] = COMPLETED,
        timeout: float = 60,
    ) -> ExecutionDB:
        deadline = time.monotonic() + timeout
        while True:
            execution = self.execution(execution_id)
            if execution.status in statuses:
                return execution
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"execution {execution_id} still {execution.status} after {timeout}s"
                )
            time.sleep(0.05)

    def count(self, statement: sa.Select[tuple[int]]) -> int:
        with self.runtime.sessions() as session:
            return int(session.scalar(statement) or 0)

    def shutdown(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=15)
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.runtime.close()


@contextmanager
def engine_stack(tmp_path: Path, database: str, extra: str = "") -> Iterator[EngineStack]:
    with rabbitmq_vhost() as url:
        path = write_st2_conf(tmp_path / "st2.conf", database, url, extra)
        config = load_st2_config(path)
        setup_engine_schema(config)
        stack = EngineStack(
            config=config, config_path=path, runtime=make_runtime(config, pool_size=20)
        )
        try:
            yield stack
        finally:
            stack.shutdown()


@contextmanager
def noop_engine(tmp_path: Path, database: str) -> Iterator[EngineStack]:
    """An engine (no services started) with the ``noop`` runner and a ``tests.noop`` action."""
    from tests import factories

    with engine_stack(tmp_path, database) as stack:
        with unit_of_work(stack.runtime.sessions) as session:
            factories.runner_type(session, "noop")
            factories.pack(session, "tests")
            factories.action(session, "tests.noop", "noop")
        yield stack
