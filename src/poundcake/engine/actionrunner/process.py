"""The ``st2actionrunner`` process: run scheduled work, any number of processes side by side.

Each work message names a live action. A worker thread claims it (``scheduled -> running``
under this process's lease; a claim that loses the race is a duplicate and is dropped), runs it
through its runner plugin, and records the outcome. Messages are acknowledged only after the
outcome is committed, so work a dead process had taken is delivered again; the lease tells the
scheduler's sweep which running executions lost their runner. A heartbeat renews the leases and
delivers cancel requests to running plugins.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu.messaging import Consumer
from kombu.transport.base import Message

from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.output import OutputWriter
from poundcake.engine.actionrunner.request import build_request
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.service import (
    DEFAULT_MAX_RESULT_BYTES,
    claim,
    complete,
    renew_leases,
    transition,
)
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.datastore import SessionDatastore
from poundcake.engine.messaging import RUNNER_QUEUE, make_connection
from poundcake.engine.runners.base import Runner, RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.registry import runner_class
from poundcake.engine.runtime import EngineRuntime
from poundcake.exceptions import PoundCakeError
from poundcake.ids import new_id
from poundcake.logging import execution_id_var

logger = logging.getLogger(__name__)

S = ExecutionStatus


@dataclass(frozen=True)
class ActionRunnerSettings:
    """Tuning of one action runner process."""

    concurrency: int = 8
    lease_seconds: float = 30.0
    graceful_shutdown_seconds: float = 10.0
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    @property
    def heartbeat_interval(self) -> float:
        """Renew leases three times per lease period."""
        return max(0.2, self.lease_seconds / 3)


class ActionRunner:
    """One action runner process."""

    def __init__(
        self, runtime: EngineRuntime, settings: ActionRunnerSettings | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or ActionRunnerSettings()
        config = runtime.config
        self._cipher = DatastoreCipher.from_key_file(config.datastore_key_path)
        self._config_file = None if config.is_embedded else Path(config.source)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id()[-6:]}"
        self._active: dict[str, Runner] = {}
        self._lock = threading.Lock()
        self._finished: queue.Queue[tuple[Message, bool]] = queue.Queue()

    # --- one execution ----------------------------------------------------------------------

    def execute(self, liveaction_id: str) -> None:
        """Claim, run and record one live action; never raises."""
        try:
            with unit_of_work(self.runtime.sessions) as session:
                if not claim(
                    session,
                    liveaction_id,
                    owner=self.owner,
                    lease_seconds=self.settings.lease_seconds,
                ):
                    logger.debug("Live action %s is not claimable; skipping", liveaction_id)
                    return
                execution = session.scalar(
                    sa.select(ExecutionDB).where(ExecutionDB.liveaction_id == liveaction_id)
                )
                assert execution is not None
                execution_id = execution.id
            self._announce(liveaction_id, execution_id)
            token = execution_id_var.set(execution_id)
            try:
                outcome = self._run(liveaction_id, execution_id)
            finally:
                execution_id_var.reset(token)
            with unit_of_work(self.runtime.sessions) as session:
                complete(
                    session,
                    liveaction_id=liveaction_id,
                    status=outcome.status,
                    result=outcome.result,
                    max_result_bytes=self.settings.max_result_bytes,
                )
            self._announce(liveaction_id, execution_id)
        except Exception:
            logger.exception("Live action %s failed inside the action runner", liveaction_id)

    def _run(self, liveaction_id: str, execution_id: str) -> RunnerOutcome:
        writer: OutputWriter | None = None
        try:
            with unit_of_work(self.runtime.sessions) as session:
                execution = session.get(ExecutionDB, execution_id)
                assert execution is not None
                request = build_request(session, execution, self._cipher)
            writer = OutputWriter(
                self.runtime.sessions,
                self.runtime.publisher,
                execution_id=execution_id,
                action_ref=request.action_ref,
                runner_ref=request.runner_type,
            )
            runner = runner_class(request.runner_type)(request, writer, self._services(request))
            with self._lock:
                self._active[liveaction_id] = runner
            try:
                runner.pre_run()
                outcome = runner.run()
                runner.post_run(outcome)
                return outcome
            finally:
                with self._lock:
                    self._active.pop(liveaction_id, None)
        except PoundCakeError as error:
            return RunnerOutcome(S.FAILED, {"error": str(error)})
        except Exception as error:
            logger.exception("Runner failed for execution %s", execution_id)
            return RunnerOutcome(
                S.FAILED,
                {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()},
            )
        finally:
            if writer is not None:
                writer.flush()

    def _services(self, request: RunnerRequest) -> RunnerServices:
        datastore = SessionDatastore(
            self.runtime.sessions,
            key_path=self.runtime.config.datastore_key_path,
            user=request.user,
        )
        return RunnerServices(datastore=datastore, config_file=self._config_file)

    def _announce(self, liveaction_id: str, execution_id: str) -> None:
        self.runtime.publisher.event(
            "st2.execution__update", {"liveaction_id": liveaction_id, "execution_id": execution_id}
        )

    # --- heartbeat and cancel -----------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew this process's leases and pass cancel requests to running plugins."""
        with unit_of_work(self.runtime.sessions) as session:
            to_cancel = renew_leases(
                session, owner=self.owner, lease_seconds=self.settings.lease_seconds
            )
        for liveaction_id in to_cancel:
            with self._lock:
                runner = self._active.get(liveaction_id)
            if runner is not None:
                logger.info("Canceling live action %s", liveaction_id)
                runner.cancel()

    def _heartbeat_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.heartbeat_interval):
            try:
                self.heartbeat()
            except Exception:
                logger.exception("Lease renewal failed; retrying")

    # --- the process --------------------------------------------------------------------------

    def _on_message(self, pool: ThreadPoolExecutor, body: dict[str, Any], message: Message) -> None:
        future = pool.submit(self.execute, str(body.get("liveaction_id", "")))

        def finished(done: Future[None]) -> None:
            self._finished.put((message, not done.cancelled()))

        future.add_done_callback(finished)

    def _settle(self) -> None:
        while True:
            try:
                message, ran = self._finished.get_nowait()
            except queue.Empty:
                return
            if ran:
                message.ack()
            else:
                message.requeue()

    def run(self, stop: threading.Event) -> None:
        """Consume work until ``stop`` is set, then drain gracefully."""
        beats = threading.Event()
        heart = threading.Thread(
            target=self._heartbeat_loop, args=(beats,), name="lease-heartbeat", daemon=True
        )
        heart.start()
        pool = ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="runner"
        )
        try:
            with make_connection(self.runtime.config.messaging_url) as connection:
                channel = connection.channel()
                consumer = Consumer(
                    channel,
                    queues=[RUNNER_QUEUE],
                    callbacks=[lambda body, message: self._on_message(pool, body, message)],
                    accept=["json"],
                )
                consumer.qos(prefetch_count=self.settings.concurrency)
                with consumer:
                    logger.info("Action runner %s consuming %s", self.owner, RUNNER_QUEUE.name)
                    while not stop.is_set():
                        with contextlib.suppress(TimeoutError, socket.timeout):
                            connection.drain_events(timeout=0.05)
                        self._settle()
                    consumer.cancel()
                    self._drain(pool, connection)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            beats.set()
            heart.join(timeout=5)

    def _drain(self, pool: ThreadPoolExecutor, connection: Any) -> None:
        deadline = time.monotonic() + self.settings.graceful_shutdown_seconds
        pool.shutdown(wait=False, cancel_futures=True)
        while time.monotonic() < deadline:
            with self._lock:
                busy = bool(self._active)
            self._settle()
            if not busy and self._finished.empty():
                break
            time.sleep(0.05)
        with self._lock:
            leftovers = dict(self._active)
        for liveaction_id, runner in leftovers.items():
            runner.cancel()
            self._abandon(liveaction_id)
        self._settle()

    def _abandon(self, liveaction_id: str) -> None:
        result = {"error": f"action runner {self.owner} shut down before the action finished"}
        with unit_of_work(self.runtime.sessions) as session:
            transition(
                session,
                liveaction_id=liveaction_id,
                to=S.ABANDONED,
                allowed_from=(S.RUNNING, S.CANCELING),
                liveaction_values={"result": result, "lease_owner": None, "lease_expires_at": None},
                execution_values={"result": result},
            )
        logger.warning("Abandoned live action %s at shutdown", liveaction_id)
