"""The ``st2workflowengine`` process: start and conduct Orquesta workflows; many may run.

Two doorbells ring it, both durable queues: ``orquesta`` executions the scheduler hands over
(start them), and every ``st2.execution__update`` (an execution changed: perhaps a workflow's
task, or a workflow asked to pause, resume or cancel). Messages are gathered for a moment and
handled in batches: each workflow they concern is conducted once, in its own transaction, under
its row lock, and the messages are acknowledged after commit. The database is the record, so a
lost doorbell only delays work: a periodic sweep finds workflows whose tasks changed unseen.
Killed at any point, an engine loses nothing: its transaction rolls back, its unacknowledged
messages go to another engine, and whatever it had not conducted is found again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from kombu.messaging import Consumer
from kombu.transport.base import Message
from sqlalchemy.orm import Session

from poundcake.db.retry import in_transaction
from poundcake.engine.actionrunner.request import build_request, load_claimed
from poundcake.engine.actions.parameters import secret_names
from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.executions.pausing import hand_over_resumed
from poundcake.engine.executions.service import complete, transition_many
from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.keyvalue.lookup import ExpressionDatastore
from poundcake.engine.messaging import (
    WORKFLOW_ENGINE_QUEUE,
    WORKFLOW_UPDATES_QUEUE,
    make_connection,
)
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest, RunnerServices
from poundcake.engine.runners.orquesta.runner import OrquestaRunner
from poundcake.engine.runners.registry import runner_types
from poundcake.engine.runtime import EngineRuntime
from poundcake.engine.workflows.discovery import workflows_needing_attention, workflows_of
from poundcake.engine.workflows.requests import workflow_notify
from poundcake.engine.workflows.service import (
    Conducted,
    ExecutionChangedError,
    WorkflowEnvironment,
    conduct,
    fail_workflow,
    rerun_workflow,
    start_workflow,
)
from poundcake.engine.workflows.store import WorkflowCaches
from poundcake.exceptions import PoundCakeError

logger = logging.getLogger(__name__)

S = ExecutionStatus


@dataclass(frozen=True)
class WorkflowEngineSettings:
    """Tuning of one workflow engine process."""

    batch_size: int = 200
    batch_wait: float = 0.01
    sweep_interval: float = 2.0
    sweep_limit: int = 200


def api_url(runtime: EngineRuntime) -> str:
    """The API address workflows see as ``ctx(st2).api_url``."""
    return runtime.config.public_api_url


class _Host:
    """The :class:`WorkflowHost` of one start, bound to its unit of work."""

    def __init__(self, session: Session, execution: ExecutionDB, env: WorkflowEnvironment) -> None:
        self.session = session
        self.execution = execution
        self.env = env
        self.conducted = Conducted()

    def start(self, request: RunnerRequest, document: Mapping[str, Any]) -> RunnerOutcome:
        secrets = bool(secret_names(request.parameter_schema))
        # StackStorm gives the workflow every parameter the action declares, None where unset:
        # such a parameter overrides the default the workflow's input gives it.
        runner_parameters = runner_types()[OrquestaRunner.runner_type].runner_parameters
        declared = dict.fromkeys(
            name for name in request.parameter_schema if name not in runner_parameters
        )
        self.conducted = start_workflow(
            self.session,
            execution=self.execution,
            document=document,
            parameters={**declared, **request.action_parameters},
            secrets=secrets,
            env=self.env,
            notify=workflow_notify(request.notify, request.runner_parameters.get("notify") or []),
        )
        return RunnerOutcome(S.RUNNING, None)

    def rerun(
        self,
        request: RunnerRequest,
        *,
        previous_execution_id: str,
        tasks: list[str],
        reset: list[str],
    ) -> RunnerOutcome:
        self.conducted = rerun_workflow(
            self.session,
            execution=self.execution,
            previous_execution_id=previous_execution_id,
            tasks=tasks,
            reset=reset,
            env=self.env,
        )
        return RunnerOutcome(S.RUNNING, None)


class WorkflowEngine:
    """One workflow engine process."""

    def __init__(
        self, runtime: EngineRuntime, settings: WorkflowEngineSettings | None = None
    ) -> None:
        self.runtime = runtime
        self.settings = settings or WorkflowEngineSettings()
        self.cipher = DatastoreCipher.from_key_file(runtime.config.datastore_key_path)
        self.caches = WorkflowCaches()
        self._starts: list[tuple[dict[str, Any], Message]] = []
        self._updates: list[tuple[dict[str, Any], Message]] = []
        self._next_sweep = 0.0

    def environment(self, session: Session) -> WorkflowEnvironment:
        """What conducting needs, for one unit of work."""
        return WorkflowEnvironment(
            caches=self.caches,
            cipher=self.cipher,
            api_url=api_url(self.runtime),
            datastore=ExpressionDatastore(session, cipher=self.cipher),
        )

    # --- starting ----------------------------------------------------------------------------

    def start(self, liveaction_id: str) -> Conducted:
        """Claim a scheduled ``orquesta`` execution and start its workflow, in one transaction
        (a workflow that is already claimed is left alone)."""

        def work(session: Session) -> Conducted:
            claimed = transition_many(
                session,
                liveaction_ids=[liveaction_id],
                to=S.RUNNING,
                allowed_from=(S.SCHEDULED,),
            )
            if not claimed:
                return Conducted()
            item = load_claimed(session, claimed)[liveaction_id]
            execution = item.execution
            host = _Host(session, execution, self.environment(session))
            outcome = self._run_runner(session, item, host)
            if outcome.status == S.FAILED:
                complete(
                    session, liveaction_id=liveaction_id, status=S.FAILED, result=outcome.result
                )
            conducted = host.conducted
            conducted.updated.add(liveaction_id)
            return conducted

        return self._transaction(work)

    def _run_runner(self, session: Session, item: Any, host: _Host) -> RunnerOutcome:
        """The ``orquesta`` runner's outcome: ``running`` once the workflow service took the
        execution over (it failed it itself if it had to), or ``failed`` with the reason."""
        try:
            request = build_request(session, item, self.cipher)
            runner = OrquestaRunner(request, _discard, RunnerServices(workflows=host))
            runner.pre_run()
            outcome = runner.run()
            runner.post_run(outcome)
            return outcome
        except PoundCakeError as error:
            return RunnerOutcome(S.FAILED, {"errors": [{"message": str(error)}], "output": None})

    # --- conducting --------------------------------------------------------------------------

    def conduct(self, workflow_id: str, *, skip_locked: bool = False) -> Conducted:
        """Move one workflow on in its own transaction."""
        return self._transaction(
            lambda session: conduct(
                session, workflow_id, self.environment(session), skip_locked=skip_locked
            )
        )

    def _transaction(self, work: Any) -> Conducted:
        for _ in range(5):
            try:
                conducted: Conducted = in_transaction(self.runtime.sessions, work)
            except ExecutionChangedError as changed:
                logger.info("%s", changed)
                continue
            self.announce(conducted)
            return conducted
        logger.warning("Gave up conducting after repeated concurrent changes; the sweep retries")
        return Conducted()

    def announce(self, conducted: Conducted) -> None:
        """After commit: hand requested executions to the scheduler, announce changes."""
        publisher = self.runtime.publisher
        for liveaction_id, execution_id in conducted.requested:
            body = {"liveaction_id": liveaction_id, "execution_id": execution_id}
            publisher.requested(liveaction_id, execution_id)
            publisher.event("st2.execution__create", body)
        for liveaction_id in conducted.updated:
            publisher.event("st2.execution__update", {"liveaction_id": liveaction_id})
        for resumed in conducted.resumed:
            hand_over_resumed(publisher, resumed)

    def handle_updates(self, liveaction_ids: list[str]) -> None:
        """Conduct every workflow the changed live actions concern."""
        workflows = in_transaction(
            self.runtime.sessions, lambda session: workflows_of(session, liveaction_ids)
        )
        for workflow_id in sorted(workflows):
            self._conduct_safely(workflow_id)

    def _conduct_safely(self, workflow_id: str, *, skip_locked: bool = False) -> None:
        try:
            self.conduct(workflow_id, skip_locked=skip_locked)
        except sa.exc.SQLAlchemyError:
            raise
        except Exception as error:
            logger.exception("Conducting workflow %s failed; failing it", workflow_id)
            self._fail(workflow_id, f"{type(error).__name__}: {error}")

    def _fail(self, workflow_id: str, reason: str) -> None:
        """An unexpected error while conducting fails the workflow (StackStorm does the same)."""
        self._transaction(
            lambda session: fail_workflow(session, workflow_id, self.environment(session), reason)
        )

    def sweep(self) -> None:
        """Conduct workflows whose changes no doorbell announced."""
        found = in_transaction(
            self.runtime.sessions,
            lambda session: workflows_needing_attention(session, limit=self.settings.sweep_limit),
        )
        for workflow_id in found:
            self._conduct_safely(workflow_id, skip_locked=True)

    # --- the process -------------------------------------------------------------------------

    def _on_start(self, body: dict[str, Any], message: Message) -> None:
        self._starts.append((body, message))

    def _on_update(self, body: dict[str, Any], message: Message) -> None:
        self._updates.append((body, message))

    def _flush(self) -> None:
        starts, self._starts = self._starts, []
        for body, message in starts:
            liveaction_id = str(body.get("liveaction_id", ""))
            try:
                self.start(liveaction_id)
            except sa.exc.SQLAlchemyError:
                logger.exception(
                    "Starting workflow %s failed; it will be redelivered", liveaction_id
                )
                message.requeue()
                continue
            message.ack()
        updates, self._updates = self._updates, []
        if not updates:
            return
        ids = [
            str(body.get("liveaction_id", "")) for body, _ in updates if body.get("liveaction_id")
        ]
        try:
            self.handle_updates(ids)
        except sa.exc.SQLAlchemyError:
            logger.exception("Handling %d execution updates failed; redelivering", len(updates))
            for _, message in updates:
                message.requeue()
            time.sleep(0.5)
            return
        for _, message in updates:
            message.ack()

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set."""
        settings = self.settings
        with make_connection(self.runtime.config.messaging_url) as connection:
            starts = Consumer(
                connection.channel(),
                queues=[WORKFLOW_ENGINE_QUEUE],
                callbacks=[self._on_start],
                accept=["json"],
            )
            starts.qos(prefetch_count=settings.batch_size)
            updates = Consumer(
                connection.channel(),
                queues=[WORKFLOW_UPDATES_QUEUE],
                callbacks=[self._on_update],
                accept=["json"],
            )
            updates.qos(prefetch_count=settings.batch_size * 5)
            with starts, updates:
                logger.info(
                    "Workflow engine consuming %s and %s",
                    WORKFLOW_ENGINE_QUEUE.name,
                    WORKFLOW_UPDATES_QUEUE.name,
                )
                while not stop.is_set():
                    self._pump(connection, 0.5 if not (self._starts or self._updates) else 0)
                    self._flush()
                    if time.monotonic() >= self._next_sweep:
                        self._next_sweep = time.monotonic() + settings.sweep_interval
                        try:
                            self.sweep()
                        except sa.exc.SQLAlchemyError:
                            logger.exception("The sweep failed; it runs again next interval")
                self._flush()

    def _pump(self, connection: Any, timeout: float) -> None:
        connection.heartbeat_check()
        deadline = time.monotonic() + self.settings.batch_wait
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=timeout or self.settings.batch_wait)
            while time.monotonic() < deadline:
                connection.drain_events(timeout=max(0.001, deadline - time.monotonic()))


def _discard(output_type: str, data: str) -> None:
    """Workflows write no output stream of their own."""
    del output_type, data
