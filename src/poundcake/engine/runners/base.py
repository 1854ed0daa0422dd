"""The runner plugin contract, after StackStorm's: ``pre_run``, ``run``, ``post_run``, ``cancel``.

A runner turns one execution request into a result in StackStorm's format. The action runner
process builds a :class:`RunnerRequest` (parameters already validated, rendered and typed),
hands the runner an :class:`OutputSink` for stdout/stderr as it arrives and the
:class:`RunnerServices` it may need, then calls ``pre_run()``, ``run()`` and ``post_run()`` in one
thread. ``cancel()`` may be called from another thread at any time and must make ``run()`` return
promptly with :attr:`ExecutionStatus.CANCELED`. A runner enforces ``request.timeout`` itself and
kills the whole process group it started.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from poundcake.engine.executions.states import ExecutionStatus


class OutputSink(Protocol):
    """Receives output as it is produced: ``output_type`` is ``stdout``, ``stderr`` or other."""

    def __call__(self, output_type: str, data: str) -> None: ...


class Datastore(Protocol):
    """Key-value access for actions (``st2kv.system`` and ``st2kv.user`` scopes)."""

    def get_value(
        self, name: str, *, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None: ...

    def set_value(
        self,
        name: str,
        value: str,
        *,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool: ...

    def delete_value(self, name: str, *, local: bool = True, scope: str = "system") -> bool: ...

    def list_values(
        self, *, local: bool = True, prefix: str | None = None, scope: str = "system"
    ) -> list[dict[str, Any]]: ...


class ChildExecutions(Protocol):
    """How workflow runners (action-chain) start child executions and wait for them."""

    def request(
        self,
        action_ref: str,
        parameters: Mapping[str, Any],
        context: Mapping[str, Any],
        *,
        notify: Mapping[str, Any] | None = None,
        skip_notify: bool = False,
    ) -> str: ...

    def wait(self, execution_id: str) -> tuple[ExecutionStatus, Any]: ...

    def cancel(self, execution_id: str) -> None: ...


class ActionTokens(Protocol):
    """API tokens for the code an action runs, as StackStorm's runner container issues them
    (``ST2_ACTION_AUTH_TOKEN``), and the API address they are good for."""

    @property
    def api_url(self) -> str: ...

    def issue(self, *, user: str, execution_id: str, action_ref: str, ttl: float | None) -> str: ...

    def revoke(self, token: str) -> None: ...


class Announcements(Protocol):
    """How the ``announcement`` runner posts to the event stream."""

    def announce(self, route: str, payload: Mapping[str, Any]) -> None: ...


class WorkflowHost(Protocol):
    """How the ``orquesta`` runner starts workflows (the workflow engine implements it)."""

    def start(self, request: RunnerRequest, document: Mapping[str, Any]) -> RunnerOutcome: ...

    def rerun(
        self,
        request: RunnerRequest,
        *,
        previous_execution_id: str,
        tasks: list[str],
        reset: list[str],
    ) -> RunnerOutcome: ...


@dataclass(frozen=True)
class RunnerServices:
    """What a runner may reach beyond its request; each is optional."""

    datastore: Datastore | None = None
    children: ChildExecutions | None = None
    config_file: Path | None = None
    workflows: WorkflowHost | None = None
    # Where the packs' virtualenvs are (``[actionrunner] virtualenvs_path``); None: every pack's
    # Python code runs with the engine's interpreter.
    virtualenvs: Path | None = None
    announcements: Announcements | None = None
    # ``[packs] enable_common_libs``: a pack's lib/ goes first on its Python actions' path.
    pack_common_libs: bool = False
    tokens: ActionTokens | None = None


@dataclass(frozen=True)
class RunnerRequest:
    """Everything a runner needs to run one execution."""

    execution_id: str
    action_ref: str
    pack: str
    runner_type: str
    entry_point: str = ""
    entry_point_path: Path | None = None
    pack_path: Path | None = None
    runner_parameters: Mapping[str, Any] = field(default_factory=dict)
    action_parameters: Mapping[str, Any] = field(default_factory=dict)
    parameter_schema: Mapping[str, Any] = field(default_factory=dict)
    pack_config: Mapping[str, Any] = field(default_factory=dict)
    user: str = "stanley"
    context: Mapping[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    # The result recorded so far: where a resumed workflow continues from.
    result: Any = None
    # The execution's notify settings (a workflow passes them on to its tasks).
    notify: Mapping[str, Any] = field(default_factory=dict)


@contextmanager
def action_api_access(
    services: RunnerServices, request: RunnerRequest, *, ttl: float | None
) -> Iterator[dict[str, str]]:
    """StackStorm's ``ST2_ACTION_API_URL`` and ``ST2_ACTION_AUTH_TOKEN`` for one run of
    ``request`` (none without :attr:`RunnerServices.tokens`); the token is revoked when the
    block ends."""
    tokens = services.tokens
    if tokens is None:
        yield {}
        return
    token = tokens.issue(
        user=request.user,
        execution_id=request.execution_id,
        action_ref=request.action_ref,
        ttl=ttl,
    )
    try:
        yield {"ST2_ACTION_API_URL": tokens.api_url, "ST2_ACTION_AUTH_TOKEN": token}
    finally:
        tokens.revoke(token)


@dataclass(frozen=True)
class RunnerOutcome:
    """How a run ended, and the result document.

    ``status`` is final (succeeded, failed, timeout or canceled), or ``pending`` (an inquiry
    now waits for its response) or ``paused`` (a workflow stopped; it continues when resumed).
    ``context`` names keys to set in the execution's context (``None`` removes a key): what a
    paused workflow needs to continue.
    """

    status: ExecutionStatus
    result: Any
    context: Mapping[str, Any] | None = None


class Runner(ABC):
    """Base of every runner plugin."""

    runner_type: ClassVar[str]

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        self.request = request
        self.output = output
        self.services = services or RunnerServices()

    def pre_run(self) -> None:  # noqa: B027 - optional hook
        """Check the request before anything runs; raise ValidationError to refuse it."""

    @abstractmethod
    def run(self) -> RunnerOutcome:
        """Run the action and return its outcome; never raise for a failing action."""

    def post_run(self, outcome: RunnerOutcome) -> None:  # noqa: B027 - optional hook
        """Clean up after ``run()``; the outcome is already decided."""

    def cancel(self) -> None:  # noqa: B027 - runners without work to stop need nothing
        """Stop the run from another thread; ``run()`` then returns CANCELED."""
