"""The ``remote-shell-cmd`` and ``remote-shell-script`` runners.

Both log in over SSH (see :mod:`.ssh`) to every host in the comma-separated ``hosts`` parameter,
one at a time or, with ``parallel``, several at once, and run a command line built by
:mod:`.commands`. ``remote-shell-script`` first uploads the entry point to a directory of its own
under ``dir`` on each host, runs it with the same arguments ``local-shell-script`` builds, and
removes the directory afterwards. Without ``username`` the login name is the service user's
(StackStorm's default is its system user ``stanley``); ``sudo`` is skipped when logging in as
root. Output from every host streams to the sink line by line as it arrives.

The result is keyed by host name, each value a shell result document. The run succeeded only if
every host succeeded; it timed out if the run's deadline passed before every host finished, and
was canceled if ``cancel()`` was called.
"""

from __future__ import annotations

import os
import pwd
import threading
from abc import abstractmethod
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import (
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
)
from poundcake.engine.runners.remote.commands import (
    DEFAULT_SSH_PORT,
    REMOTE_KILL_GRACE_SECONDS,
    parse_hosts,
    remote_script_path,
    shell_command,
    split_host_port,
)
from poundcake.engine.runners.remote.host import (
    HostJob,
    HostOutcome,
    HostRun,
    RunLimits,
    ScriptUpload,
)
from poundcake.engine.runners.remote.ssh import Credentials, is_key_material, load_key_material
from poundcake.engine.runners.shell.arguments import command_line, script_arguments
from poundcake.engine.runners.shell.output import SerializedSink
from poundcake.engine.runners.shell.process import Ending
from poundcake.engine.runners.shell.runner import (
    action_variables,
    kwarg_op_parameter,
    run_timeout,
    script_path,
    string_map,
)
from poundcake.exceptions import ValidationError

DEFAULT_REMOTE_DIR = "/tmp"  # noqa: S108 - StackStorm's default; each run gets its own subdirectory
MAX_PARALLEL_HOSTS = 20
CANCEL_WAIT_SECONDS = REMOTE_KILL_GRACE_SECONDS + 4.0
"""How long a canceled run waits for its hosts to kill their commands and clean up."""

_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RemoteOptions:
    """The runner parameters both remote shell runners share, with StackStorm's defaults."""

    hosts: list[str]
    credentials: Credentials
    port: int
    bastion_host: str | None
    parallel: bool
    cwd: str | None
    remote_dir: str
    env: dict[str, str]
    kwarg_op: str
    sudo: bool
    sudo_password: str | None
    timeout: float | None

    @classmethod
    def from_request(cls, request: RunnerRequest) -> RemoteOptions:
        """Read the options from the request's runner parameters."""
        parameters = request.runner_parameters
        credentials = Credentials(
            username=parameters.get("username") or pwd.getpwuid(os.getuid()).pw_name,
            password=parameters.get("password") or None,
            private_key=parameters.get("private_key") or None,
            passphrase=parameters.get("passphrase") or None,
        )
        return cls(
            hosts=parse_hosts(str(parameters.get("hosts") or "")),
            credentials=credentials,
            port=int(parameters.get("port") or DEFAULT_SSH_PORT),
            bastion_host=parameters.get("bastion_host") or None,
            parallel=bool(parameters.get("parallel", False)),
            cwd=parameters.get("cwd") or None,
            remote_dir=parameters.get("dir") or DEFAULT_REMOTE_DIR,
            env=string_map(parameters.get("env") or {}),
            kwarg_op=kwarg_op_parameter(parameters.get("kwarg_op")),
            sudo=bool(parameters.get("sudo", False)),
            sudo_password=parameters.get("sudo_password") or None,
            timeout=run_timeout(request),
        )

    @property
    def uses_sudo(self) -> bool:
        """Tell whether commands go through sudo: asked for, and not logging in as root."""
        return self.sudo and self.credentials.username != "root"


def overall_status(outcomes: Iterable[HostOutcome], *, canceled: bool) -> ExecutionStatus:
    """Return the run's status from every host's outcome."""
    outcomes = list(outcomes)
    if canceled:
        return ExecutionStatus.CANCELED
    if any(outcome.ending is Ending.TIMED_OUT for outcome in outcomes):
        return ExecutionStatus.TIMEOUT
    if outcomes and all(outcome.result["succeeded"] for outcome in outcomes):
        return ExecutionStatus.SUCCEEDED
    return ExecutionStatus.FAILED


class RemoteShellRunner(Runner):
    """What the two remote shell runners share: options, hosts, threads and the result."""

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self.options = RemoteOptions.from_request(request)
        self._stop = threading.Event()

    @abstractmethod
    def job(self) -> HostJob:
        """Return what to do on every host."""

    def pre_run(self) -> None:
        if not self.options.hosts:
            raise ValidationError(
                f"No hosts specified to run action for action {self.request.execution_id}."
            )
        for host in [*self.options.hosts, self.options.bastion_host or ""]:
            split_host_port(host, self.options.port)
        key = self.options.credentials.private_key
        if key and is_key_material(key) and not self.options.credentials.password:
            load_key_material(key, self.options.credentials.passphrase)

    def run(self) -> RunnerOutcome:
        job = self.job()
        limits = RunLimits(self.options.timeout, self._stop)
        sink = SerializedSink(self.output)
        host_runs = [HostRun(host, job, sink, limits) for host in self.options.hosts]
        workers = min(len(host_runs), MAX_PARALLEL_HOSTS) if self.options.parallel else 1
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ssh")
        try:
            futures = [pool.submit(host_run.run) for host_run in host_runs]
            self._wait(futures)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        outcomes = [
            _outcome_of(host_run, future)
            for host_run, future in zip(host_runs, futures, strict=True)
        ]
        result = {outcome.hostname: outcome.result for outcome in outcomes}
        return RunnerOutcome(overall_status(outcomes, canceled=self._stop.is_set()), result)

    def _wait(self, futures: list[Future[HostOutcome]]) -> None:
        """Wait for every host; after a cancel, only as long as stopping a command takes.

        A host still connecting or uploading then is left to finish in the background: it
        checks the stop event before it runs anything.
        """
        pending = set(futures)
        while pending and not self._stop.is_set():
            _, pending = wait(pending, timeout=_POLL_SECONDS)
        if pending:
            wait(pending, timeout=CANCEL_WAIT_SECONDS)

    def cancel(self) -> None:
        self._stop.set()

    def _host_job(self, command: str) -> HostJob:
        options = self.options
        env = {**options.env, **action_variables(self.request)}
        line = shell_command(
            command,
            env=env,
            cwd=options.cwd,
            sudo=options.uses_sudo,
            sudo_password=bool(options.sudo_password),
        )
        bastion = (
            split_host_port(options.bastion_host, options.port) if options.bastion_host else None
        )
        return HostJob(
            command=line,
            credentials=options.credentials,
            port=options.port,
            bastion=bastion,
            sudo=options.uses_sudo,
            sudo_password=options.sudo_password,
        )


def _outcome_of(host_run: HostRun, future: Future[HostOutcome]) -> HostOutcome:
    if future.done() and not future.cancelled():
        return future.result()
    return host_run.stopped(Ending.CANCELED)


class RemoteShellCommandRunner(RemoteShellRunner):
    """``remote-shell-cmd``: runs the ``cmd`` runner parameter on every host."""

    runner_type = "remote-shell-cmd"

    def pre_run(self) -> None:
        if self.request.entry_point:
            raise ValidationError(
                f'Action "{self.request.action_ref}" specified "entry_point" attribute. '
                'Perhaps wanted to use "remote-shell-script" runner?'
            )
        cmd = self.request.runner_parameters.get("cmd")
        if not isinstance(cmd, str) or not cmd.strip():
            raise ValidationError("remote-shell-cmd needs a non-empty 'cmd'")
        super().pre_run()

    def job(self) -> HostJob:
        return self._host_job(str(self.request.runner_parameters["cmd"]))


class RemoteShellScriptRunner(RemoteShellRunner):
    """``remote-shell-script``: uploads the entry point to every host and runs it there."""

    runner_type = "remote-shell-script"

    def pre_run(self) -> None:
        script_path(self.request)
        super().pre_run()

    def job(self) -> HostJob:
        local_script = script_path(self.request)
        remote_dir, remote_script = remote_script_path(
            self.options.remote_dir, self.request.execution_id, local_script.name
        )
        arguments = script_arguments(
            self.request.action_parameters,
            self.request.parameter_schema,
            kwarg_op=self.options.kwarg_op,
        )
        upload = ScriptUpload(local_script, remote_dir, remote_script)
        return replace(self._host_job(command_line([remote_script, *arguments])), upload=upload)
