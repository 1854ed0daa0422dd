"""The ``st2actionrunner`` process: run scheduled work, any number of processes side by side.

Work messages name live actions. The consuming thread claims what arrives in one transaction
(``scheduled -> running``, or ``resuming -> running`` for a resumed workflow no runner holds,
under this process's lease; a claim that loses the race is a duplicate and is dropped), hands
each claimed execution to a worker thread that runs it through its runner plugin, and records
outcomes in batches, in the claim's transaction when work arrived meanwhile (one commit for
both). Besides final outcomes there are two that leave the execution open, both releasing
the lease: ``pending`` (an inquiry waits for its response; see
:mod:`poundcake.engine.inquiries.service`) and ``paused`` (a workflow stopped where it can go on;
see :mod:`poundcake.engine.executions.pausing`; one resumed meanwhile is handed over again after
commit). Messages are acknowledged only after the outcome is committed, so work a dead process
had taken is delivered again; the lease tells the scheduler's sweep which running executions
lost their runner. A heartbeat renews the leases and delivers cancel requests to running plugins.

On SIGTERM the process stops consuming and lets running work finish for
``graceful_shutdown_seconds``. Then a workflow that can resume (``RESUMABLE_RUNNER_TYPES``) is
released: its thread stops waiting, its live action goes back to ``scheduled`` without a lease
and its message is requeued, so a runner (this one restarted, or another) resumes it from the
children it already has. Other work still running is canceled and ended ``abandoned``. A runner
that dies without shutting down (SIGKILL) leaves its leases to expire: the scheduler's sweep
abandons that work.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kombu.messaging import Consumer
from kombu.transport.base import Message
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.db.session import unit_of_work
from poundcake.engine.actionrunner.children import (
    DEFAULT_POLL_INTERVAL,
    ExecutionChildren,
    WorkflowReleasedError,
)
from poundcake.engine.actionrunner.output import OutputWriter
from poundcake.engine.actionrunner.request import ClaimedWork, build_request, load_claimed
from poundcake.engine.actionrunner.statusboard import StatusBoard
from poundcake.engine.actionrunner.tokens import ExecutionTokens
from poundcake.engine.executions.completion import finish_executions
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.pausing import Resumed, hand_over_resumed, record_paused
from poundcake.engine.executions.service import (
    DEFAULT_MAX_RESULT_BYTES,
    LEASED,
    WORKFLOW_RUNNER_TYPES,
    FinalOutcome,
    claim,
    complete,
    complete_many,
    renew_leases,
    transition,
)
from poundcake.engine.executions.states import ExecutionStatus, is_completed
from poundcake.engine.inquiries.service import announce_waiting, await_response
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.datastore import SessionDatastore
from poundcake.engine.messaging import RUNNER_QUEUE, WORKFLOW_QUEUE, make_connection
from poundcake.engine.packs.virtualenvs import virtualenvs_dir
from poundcake.engine.runners.base import Runner, RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.registry import runner_class
from poundcake.engine.runtime import EngineRuntime
from poundcake.exceptions import PoundCakeError
from poundcake.ids import new_id
from poundcake.logging import execution_id_var

logger = logging.getLogger(__name__)

S = ExecutionStatus
OUTPUT_FLUSH_INTERVAL = 0.25
# Workflows that resume from their recorded children when run again.
RESUMABLE_RUNNER_TYPES = frozenset({"steps"})
# How long a released workflow's thread has to stop waiting before it is abandoned instead.
RELEASE_SECONDS = 5.0
# What to do once recorded outcomes are committed (announce, hand over a resumed workflow).
FollowUp = Callable[[], None]


@dataclass(frozen=True)
class ActionRunnerSettings:
    """Tuning of one action runner process."""

    concurrency: int = 8
    # Workflows mostly wait for their children: they run in a pool of their own.
    workflow_concurrency: int = 32
    lease_seconds: float = 30.0
    graceful_shutdown_seconds: float = 10.0
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES

    @property
    def heartbeat_interval(self) -> float:
        """Renew leases three times per lease period."""
        return max(0.2, self.lease_seconds / 3)


@dataclass(frozen=True)
class Finished:
    """A run that ended, waiting to be recorded and acknowledged."""

    liveaction_id: str
    execution_id: str
    outcome: RunnerOutcome
    message: Message
    workflow: bool


def _plain_final(outcome: RunnerOutcome) -> bool:
    """Tell whether an outcome ends its execution with nothing but a status and a result."""
    return is_completed(outcome.status) and outcome.status != S.CANCELED and not outcome.context


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
        self._writers: dict[str, OutputWriter] = {}
        self._lock = threading.Lock()
        self._inbox: list[tuple[dict[str, Any], Message]] = []
        self._finished: queue.Queue[Finished] = queue.Queue()
        self._releases: dict[str, threading.Event] = {}
        self._released: queue.Queue[tuple[str, str, Message]] = queue.Queue()
        self._in_flight = 0
        self._result_cap = self.settings.max_result_bytes
        # What every workflow this process runs waits on, read in one query per poll interval.
        self._board = StatusBoard(runtime.sessions, DEFAULT_POLL_INTERVAL)

    def _fit_result_cap(self) -> None:
        """Keep the result cap below what the database accepts in one statement."""
        with self.runtime.engine.connect() as connection:
            if connection.dialect.name == "sqlite":
                return
            packet = int(connection.execute(sa.text("SELECT @@max_allowed_packet")).scalar_one())
        allowed = int(packet * 0.9)
        if self._result_cap > allowed:
            logger.warning(
                "[actionrunner] max_result_bytes %d is above what max_allowed_packet (%d) lets "
                "the database store; results are truncated at %d bytes",
                self._result_cap,
                packet,
                allowed,
            )
            self._result_cap = allowed

    # --- claiming and recording, in the consuming thread ------------------------------------

    def claim_batch(
        self, pool: ThreadPoolExecutor, workflow_pool: ThreadPoolExecutor | None = None
    ) -> None:
        """Claim everything received in one transaction and start the claimed runs (workflows
        in ``workflow_pool``, so that they never hold the threads their children need)."""
        if not self._inbox:
            return
        batch, self._inbox = self._inbox, []
        ids = [str(body.get("liveaction_id", "")) for body, _ in batch]

        def claim_and_load(session: Session) -> tuple[set[str], dict[str, ClaimedWork]]:
            return self._claim_in(session, ids)

        try:
            claimed, work = in_transaction(self.runtime.sessions, claim_and_load)
        except sa.exc.SQLAlchemyError:
            logger.exception("Claiming %d live actions failed; trying again shortly", len(batch))
            self._inbox = batch + self._inbox
            time.sleep(0.5)
            return
        self._start(batch, claimed, work, pool, workflow_pool)

    def _claim_in(
        self, session: Session, ids: list[str]
    ) -> tuple[set[str], dict[str, ClaimedWork]]:
        """Claim ``ids`` under this process's lease and load what their runs need."""
        claimed = set(
            claim(session, ids, owner=self.owner, lease_seconds=self.settings.lease_seconds)
        )
        return claimed, load_claimed(session, sorted(claimed))

    def _start(
        self,
        batch: list[tuple[dict[str, Any], Message]],
        claimed: set[str],
        work: dict[str, ClaimedWork],
        pool: ThreadPoolExecutor,
        workflow_pool: ThreadPoolExecutor | None,
    ) -> None:
        """After the claim's commit: start the claimed runs, drop the other messages."""
        ids = [str(body.get("liveaction_id", "")) for body, _ in batch]
        started: list[tuple[str, ClaimedWork, Message]] = []
        for (_, message), liveaction_id in zip(batch, ids, strict=True):
            item = work.get(liveaction_id) if liveaction_id in claimed else None
            if item is None:
                logger.debug("Live action %s is not claimable; dropping the message", liveaction_id)
                message.ack()
                continue
            # A second message for the same live action in this batch is a duplicate.
            claimed.discard(liveaction_id)
            started.append((liveaction_id, item, message))
        self._announce_many(
            [(liveaction_id, item.execution.id) for liveaction_id, item, _ in started]
        )
        for liveaction_id, item, message in started:
            self._in_flight += 1
            workflow = item.execution.runner_type in WORKFLOW_RUNNER_TYPES
            chosen = workflow_pool if workflow and workflow_pool is not None else pool
            chosen.submit(self._run_and_queue, liveaction_id, item, message)

    def record_finished(self) -> set[str]:
        """Record finished outcomes in one transaction, announce them, then acknowledge; return
        the live actions recorded.

        If the batch cannot be stored, each outcome is stored alone; one that still cannot be
        (the database refuses its result) is recorded as failed with the reason.
        """
        finished = self._take_finished()
        if not finished:
            return set()
        follow_ups: list[FollowUp] = []
        try:
            follow_ups = self._record(finished)
        except sa.exc.SQLAlchemyError:
            logger.exception(
                "Storing %d outcomes at once failed; storing them one by one", len(finished)
            )
            for item in finished:
                follow_ups += self._record_alone(item)
        return self._recorded(finished, follow_ups)

    def step(
        self, pool: ThreadPoolExecutor, workflow_pool: ThreadPoolExecutor | None = None
    ) -> None:
        """Record what finished and claim what arrived: in one transaction (one commit) when
        there are both, else as :meth:`claim_batch` and :meth:`record_finished`. If the joint
        transaction fails, each is done on its own, with its own recovery."""
        if not self._inbox or self._finished.empty():
            self.claim_batch(pool, workflow_pool)
            self.record_finished()
            return
        finished = self._take_finished()
        batch, self._inbox = self._inbox, []
        ids = [str(body.get("liveaction_id", "")) for body, _ in batch]

        def record_and_claim(
            session: Session,
        ) -> tuple[list[FollowUp], set[str], dict[str, ClaimedWork]]:
            follow_ups = self._record_in(session, finished)
            return (follow_ups, *self._claim_in(session, ids))

        try:
            follow_ups, claimed, work = in_transaction(self.runtime.sessions, record_and_claim)
        except sa.exc.SQLAlchemyError:
            logger.exception(
                "Recording %d outcomes and claiming %d live actions together failed; "
                "doing each on its own",
                len(finished),
                len(batch),
            )
            self._inbox = batch + self._inbox
            for item in finished:
                self._finished.put(item)
            self.claim_batch(pool, workflow_pool)
            self.record_finished()
            return
        self._recorded(finished, follow_ups)
        self._start(batch, claimed, work, pool, workflow_pool)

    def _take_finished(self) -> list[Finished]:
        finished: list[Finished] = []
        with contextlib.suppress(queue.Empty):
            while True:
                finished.append(self._finished.get_nowait())
        return finished

    def _recorded(self, finished: list[Finished], follow_ups: list[FollowUp]) -> set[str]:
        """After the outcomes' commit: follow up, announce, acknowledge."""
        for follow_up in follow_ups:
            follow_up()
        self._announce_many([(item.liveaction_id, item.execution_id) for item in finished])
        for item in finished:
            item.message.ack()
        self._in_flight -= len(finished)
        return {item.liveaction_id for item in finished}

    def _record(self, items: list[Finished]) -> list[FollowUp]:
        """Store outcomes in one transaction; return what to do once it is committed.

        Final outcomes that change no context and are not cancellations are written together
        (:func:`complete_many`); what ending an execution also writes (its completion trigger,
        the notifier's mark) is written once for the whole batch.
        """

        return in_transaction(
            self.runtime.sessions, lambda session: self._record_in(session, items)
        )

    def _record_in(self, session: Session, items: list[Finished]) -> list[FollowUp]:
        """Store outcomes in ``session``'s transaction; return what to do after its commit."""
        together = [item for item in items if _plain_final(item.outcome)]
        follow_ups: list[FollowUp] = []
        ended = complete_many(
            session,
            [
                FinalOutcome(item.liveaction_id, item.outcome.status, item.outcome.result)
                for item in together
            ],
            max_result_bytes=self._result_cap,
            finish=False,
        )
        for item in items:
            if not _plain_final(item.outcome):
                follow_ups += self._record_one(session, item, ended)
        finish_executions(session, ended)
        return follow_ups

    def _record_one(self, session: Session, item: Finished, ended: list[str]) -> list[FollowUp]:
        """Store one outcome; a final one adds its live action to ``ended``."""
        outcome = item.outcome
        if outcome.status == S.PENDING:
            waiting = await_response(
                session,
                liveaction_id=item.liveaction_id,
                result=outcome.result,
                max_result_bytes=self._result_cap,
            )
            return [partial(announce_waiting, self.runtime.publisher, waiting)]
        if outcome.status == S.PAUSED:
            now = record_paused(
                session,
                liveaction_id=item.liveaction_id,
                result=outcome.result,
                context=outcome.context,
                max_result_bytes=self._result_cap,
            )
            if now != S.RESUMING:
                return []
            runner_type = session.scalar(
                sa.select(ExecutionDB.runner_type).where(ExecutionDB.id == item.execution_id)
            )
            resumed = Resumed(item.execution_id, item.liveaction_id, str(runner_type))
            return [partial(hand_over_resumed, self.runtime.publisher, resumed)]
        if complete(
            session,
            liveaction_id=item.liveaction_id,
            status=outcome.status,
            result=outcome.result,
            max_result_bytes=self._result_cap,
            workflow=item.workflow,
            context=outcome.context,
            finish=False,
        ) and is_completed(outcome.status):
            ended.append(item.liveaction_id)
        return []

    def _record_alone(self, item: Finished) -> list[FollowUp]:
        """Store one outcome; if the database refuses its result, store the failure instead.

        Returns what to do after commit; nothing when not even the failure could be stored
        (the database is unavailable).
        """
        try:
            return self._record([item])
        except sa.exc.SQLAlchemyError as error:
            logger.exception("Storing the outcome of live action %s failed", item.liveaction_id)
            cause = getattr(error, "orig", None) or error
            reason = f"the result could not be stored: {type(cause).__name__}: {cause}"
        failed = RunnerOutcome(S.FAILED, {"error": reason})
        try:
            return self._record(
                [Finished(item.liveaction_id, item.execution_id, failed, item.message, False)]
            )
        except sa.exc.SQLAlchemyError:
            logger.exception(
                "The database refused live action %s's outcome; keeping it", item.liveaction_id
            )
            return []

    # --- one execution, in a worker thread ----------------------------------------------------

    def _run_and_queue(self, liveaction_id: str, work: ClaimedWork, message: Message) -> None:
        execution_id = work.execution.id
        token = execution_id_var.set(execution_id)
        try:
            outcome = self._run(liveaction_id, work)
        except WorkflowReleasedError:
            logger.info("Released workflow live action %s", liveaction_id)
            self._released.put((liveaction_id, execution_id, message))
            return
        except Exception as error:
            logger.exception("Running live action %s failed", liveaction_id)
            outcome = RunnerOutcome(S.FAILED, {"error": f"{type(error).__name__}: {error}"})
        finally:
            execution_id_var.reset(token)
        workflow = bool((work.execution.liveaction or {}).get("action_is_workflow"))
        self._finished.put(Finished(liveaction_id, execution_id, outcome, message, workflow))

    def _run(self, liveaction_id: str, work: ClaimedWork) -> RunnerOutcome:
        writer: OutputWriter | None = None
        execution_id = work.execution.id
        try:
            with self.runtime.sessions() as session:
                request = build_request(session, work, self._cipher)
            writer = OutputWriter(
                self.runtime.sessions,
                self.runtime.publisher,
                execution_id=execution_id,
                action_ref=request.action_ref,
                runner_ref=request.runner_type,
            )
            services = self._services(liveaction_id, request)
            runner = runner_class(request.runner_type)(request, writer, services)
            with self._lock:
                self._active[liveaction_id] = runner
                self._writers[liveaction_id] = writer
            try:
                runner.pre_run()
                outcome = runner.run()
                runner.post_run(outcome)
                return outcome
            finally:
                with self._lock:
                    self._active.pop(liveaction_id, None)
                    self._writers.pop(liveaction_id, None)
                    self._releases.pop(liveaction_id, None)
        except WorkflowReleasedError:
            raise
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
                try:
                    writer.flush()
                except Exception:
                    logger.exception("Storing the last output of execution %s failed", execution_id)

    def _services(self, liveaction_id: str, request: RunnerRequest) -> RunnerServices:
        datastore = SessionDatastore(
            self.runtime.sessions,
            key_path=self.runtime.config.datastore_key_path,
            user=request.user,
            publisher=self.runtime.publisher,
        )
        released: threading.Event | None = None
        if request.runner_type in RESUMABLE_RUNNER_TYPES:
            released = threading.Event()
            with self._lock:
                self._releases[liveaction_id] = released
        children = ExecutionChildren(
            self.runtime.sessions,
            self.runtime.publisher,
            parent_execution_id=request.execution_id,
            user=request.user,
            parent_context=request.context,
            cipher=self._cipher,
            released=released,
            board=self._board,
        )
        return RunnerServices(
            datastore=datastore,
            children=children,
            config_file=self._config_file,
            virtualenvs=virtualenvs_dir(self.runtime.config),
            announcements=self.runtime.publisher,
            pack_common_libs=self.runtime.config.packs.enable_common_libs,
            tokens=ExecutionTokens(
                self.runtime.sessions,
                api_url=self.runtime.config.public_api_url,
                service_token_ttl=self.runtime.config.auth.service_token_ttl,
            ),
        )

    def _announce(self, liveaction_id: str, execution_id: str) -> None:
        self._announce_many([(liveaction_id, execution_id)])

    def _announce_many(self, pairs: list[tuple[str, str]]) -> None:
        self.runtime.publisher.events(
            "st2.execution__update",
            [
                {"liveaction_id": liveaction_id, "execution_id": execution_id}
                for liveaction_id, execution_id in pairs
            ],
        )

    # --- heartbeat and cancel -----------------------------------------------------------------

    def heartbeat(self) -> None:
        """Renew this process's leases and pass cancel requests to running plugins."""
        to_cancel = in_transaction(
            self.runtime.sessions,
            lambda session: renew_leases(
                session, owner=self.owner, lease_seconds=self.settings.lease_seconds
            ),
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

    def _flush_loop(self, stop: threading.Event) -> None:
        """Store output that waits in a buffer because its action went quiet."""
        while not stop.wait(OUTPUT_FLUSH_INTERVAL):
            with self._lock:
                writers = list(self._writers.values())
            for writer in writers:
                try:
                    writer.flush()
                except Exception:
                    logger.exception("Storing execution output failed; retrying")

    # --- the process --------------------------------------------------------------------------

    def _on_message(self, body: dict[str, Any], message: Message) -> None:
        self._inbox.append((body, message))

    def run(self, stop: threading.Event) -> None:
        """Consume work until ``stop`` is set, then drain gracefully."""
        self._fit_result_cap()
        beats = threading.Event()
        heart = threading.Thread(
            target=self._heartbeat_loop, args=(beats,), name="lease-heartbeat", daemon=True
        )
        heart.start()
        flusher = threading.Thread(
            target=self._flush_loop, args=(beats,), name="output-flush", daemon=True
        )
        flusher.start()
        pool = ThreadPoolExecutor(
            max_workers=self.settings.concurrency, thread_name_prefix="runner"
        )
        workflow_pool = ThreadPoolExecutor(
            max_workers=self.settings.workflow_concurrency, thread_name_prefix="workflow"
        )
        try:
            with make_connection(self.runtime.config.messaging_url) as connection:
                consumer = Consumer(
                    connection.channel(),
                    queues=[RUNNER_QUEUE],
                    callbacks=[self._on_message],
                    accept=["json"],
                )
                consumer.qos(prefetch_count=self.settings.concurrency)
                workflows = Consumer(
                    connection.channel(),
                    queues=[WORKFLOW_QUEUE],
                    callbacks=[self._on_message],
                    accept=["json"],
                )
                workflows.qos(prefetch_count=self.settings.workflow_concurrency)
                with consumer, workflows:
                    logger.info(
                        "Action runner %s consuming %s and %s",
                        self.owner,
                        RUNNER_QUEUE.name,
                        WORKFLOW_QUEUE.name,
                    )
                    while not stop.is_set():
                        self._pump(connection, 0.002 if self._in_flight else 0.1)
                        try:
                            self.step(pool, workflow_pool)
                        except sa.exc.SQLAlchemyError:
                            logger.exception("Recording outcomes failed; trying again shortly")
                            time.sleep(0.5)
                    consumer.cancel()
                    workflows.cancel()
                    self._drain(connection)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            workflow_pool.shutdown(wait=False, cancel_futures=True)
            self._board.close()
            beats.set()
            heart.join(timeout=5)
            flusher.join(timeout=5)

    @staticmethod
    def _pump(connection: Any, timeout: float) -> None:
        """Take what the broker has ready (first wait up to ``timeout``); keep heartbeats going."""
        connection.heartbeat_check()
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=timeout)
            while True:
                connection.drain_events(timeout=0)

    def _drain(self, connection: Any) -> None:
        for _, message in self._inbox:
            message.requeue()
        self._inbox = []
        deadline = time.monotonic() + self.settings.graceful_shutdown_seconds
        while self._in_flight and time.monotonic() < deadline:
            time.sleep(0.05)
            self.record_finished()
        with self._lock:
            leftovers = dict(self._active)
            releases = {key: self._releases[key] for key in leftovers if key in self._releases}
        for liveaction_id, runner in leftovers.items():
            if liveaction_id in releases:
                releases[liveaction_id].set()
            else:
                runner.cancel()
                self._abandon(liveaction_id)
        release_by = time.monotonic() + RELEASE_SECONDS
        pending = set(releases)
        while pending and time.monotonic() < release_by:
            time.sleep(0.05)
            pending -= self._hand_back_released()
            pending -= self.record_finished()
        pending -= self._hand_back_released()
        for liveaction_id in pending:
            self._abandon(liveaction_id)
        self.record_finished()

    def _hand_back_released(self) -> set[str]:
        """Put each released workflow back in ``scheduled`` and requeue its message."""
        handed: set[str] = set()
        with contextlib.suppress(queue.Empty):
            while True:
                liveaction_id, execution_id, message = self._released.get_nowait()
                if self._release(liveaction_id):
                    message.requeue()
                else:
                    self._abandon(liveaction_id)
                    message.ack()
                self._announce(liveaction_id, execution_id)
                self._in_flight -= 1
                handed.add(liveaction_id)
        return handed

    def _release(self, liveaction_id: str) -> bool:
        """``running -> scheduled`` without a lease; tell whether it moved (not when canceling)."""
        with unit_of_work(self.runtime.sessions) as session:
            moved = transition(
                session,
                liveaction_id=liveaction_id,
                to=S.SCHEDULED,
                allowed_from=(S.RUNNING,),
                liveaction_values={"lease_owner": None, "lease_expires_at": None},
            )
        if moved:
            logger.warning(
                "Released workflow live action %s at shutdown; another runner resumes it",
                liveaction_id,
            )
        return moved

    def _abandon(self, liveaction_id: str) -> None:
        result = {"error": f"action runner {self.owner} shut down before the action finished"}
        with unit_of_work(self.runtime.sessions) as session:
            transition(
                session,
                liveaction_id=liveaction_id,
                to=S.ABANDONED,
                allowed_from=LEASED,
                liveaction_values={"result": result, "lease_owner": None, "lease_expires_at": None},
                execution_values={"result": result},
            )
        logger.warning("Abandoned live action %s at shutdown", liveaction_id)
