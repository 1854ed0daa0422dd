"""The ``python-script`` runner.

The action runs in a child process (``python -m poundcake.engine.runners.python.wrapper``) in a new
process group, with its pack's virtualenv's interpreter and import path
(:func:`~poundcake.engine.packs.virtualenvs.pack_python_environment`), else the engine's. The
request (entry point, parameters, pack config) goes to the child on one pipe and the return value of
``run()`` comes back on another, so whatever the action prints stays in its stdout. The child finds
the engine's database through ``ST2_CONFIG_PATH`` (from :attr:`RunnerServices.config_file`).

As StackStorm's python runner does, the child's environment names the run
(``ST2_ACTION_PACK_NAME``, ``ST2_ACTION_EXECUTION_ID``, ``ST2_ACTION_DEBUG``) and, when the
runner has :attr:`RunnerServices.tokens`, the API and a token of the execution's user for this
run only (``ST2_ACTION_API_URL`` and ``ST2_ACTION_AUTH_TOKEN``, also as st2client's own
``ST2_API_URL`` and ``ST2_AUTH_TOKEN``), revoked when the run ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Mapping
from typing import Any

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.virtualenvs import PackPythonEnvironment, pack_python_environment
from poundcake.engine.runners.base import (
    OutputSink,
    Runner,
    RunnerOutcome,
    RunnerRequest,
    RunnerServices,
    action_api_access,
)
from poundcake.engine.runners.python.process import StreamedProcess
from poundcake.engine.runners.python.wrapper import INVALID_STATUS_EXIT_CODE
from poundcake.engine.runners.registry import runner_types
from poundcake.exceptions import ValidationError

WRAPPER_MODULE = "poundcake.engine.runners.python.wrapper"
DEFAULT_TIMEOUT = 600
DEFAULT_LOG_LEVEL = "DEBUG"
KILLED_EXIT_CODE = -9
# Variables the engine's own environment lends the action: enough to find programs, the locale
# and the engine's configuration. Anything else an action needs comes from the ``env`` parameter.
INHERITED_VARIABLES = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "ST2_CONFIG_PATH",
    "POUNDCAKE_DATA_DIR",
    "POUNDCAKE_MYSQL_SOCKET",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)
# pip's own settings (``PIP_INDEX_URL``, ...) reach actions that run pip (packs.setup_virtualenv).
INHERITED_PREFIXES = ("PIP_",)


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class PythonRunner(Runner):
    """Runs a pack's Python action class in a subprocess."""

    runner_type = "python-script"

    def __init__(
        self, request: RunnerRequest, output: OutputSink, services: RunnerServices | None = None
    ) -> None:
        super().__init__(request, output, services)
        self._lock = threading.Lock()
        self._process: StreamedProcess | None = None
        self._canceled = False
        self._python: PackPythonEnvironment | None = None

    @property
    def timeout(self) -> float:
        """Seconds the action may run: the request's timeout, else the ``timeout`` parameter."""
        if self.request.timeout is not None:
            return float(self.request.timeout)
        return float(self.request.runner_parameters.get("timeout") or DEFAULT_TIMEOUT)

    def pre_run(self) -> None:
        path = self.request.entry_point_path
        if path is None or not path.is_file():
            where = path or self.request.entry_point or "(none)"
            raise ValidationError(
                f'Action "{self.request.action_ref}": entry point {where} is not a file.'
            )
        if self.timeout <= 0:
            raise ValidationError(f"timeout must be positive (got {self.timeout}).")
        if self.request.runner_parameters.get("content_version"):
            raise ValidationError("content_version is not supported by PoundCake's engine")
        env = self.request.runner_parameters.get("env")
        if env is not None and not isinstance(env, dict):
            raise ValidationError("env must be an object of variable names to values.")
        pack_path = self.request.pack_path
        common = pack_path / "lib" if pack_path and self.services.pack_common_libs else None
        self._python = pack_python_environment(
            self.services.virtualenvs,
            self.request.pack,
            library_directory=pack_path / "actions" / "lib" if pack_path else None,
            common_library=common,
        )

    def _log_level(self) -> str:
        if self._debug():
            return "DEBUG"
        return str(self.request.runner_parameters.get("log_level") or DEFAULT_LOG_LEVEL)

    def _debug(self) -> bool:
        return bool(self.request.runner_parameters.get("debug"))

    def _environment(
        self, python: PackPythonEnvironment, api_access: Mapping[str, str]
    ) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if name in INHERITED_VARIABLES or name.startswith(INHERITED_PREFIXES)
        }
        if "PATH" in env:
            env["PATH"] = python.path_variable(env["PATH"])
        for name, value in (self.request.runner_parameters.get("env") or {}).items():
            env[str(name)] = str(value)
        if self.services.config_file is not None:
            env["ST2_CONFIG_PATH"] = str(self.services.config_file)
        env.update(
            PYTHONPATH=python.pythonpath,
            PYTHONUNBUFFERED="1",
            PYTHONIOENCODING="utf-8",
            ST2_ACTION_PACK_NAME=self.request.pack,
            ST2_ACTION_EXECUTION_ID=self.request.execution_id,
            ST2_ACTION_DEBUG=str(self._debug()),
        )
        env.update(api_access)
        if api_access:
            # st2client's own names, which ``Client()`` reads (StackStorm's python runner sets
            # them for its datastore access).
            env["ST2_API_URL"] = api_access["ST2_ACTION_API_URL"]
            env["ST2_AUTH_TOKEN"] = api_access["ST2_ACTION_AUTH_TOKEN"]
        return env

    def _action_parameters(self) -> dict[str, Any]:
        """Every parameter the action declares, ``None`` where it has no value: StackStorm calls
        ``run()`` with all of them, so optional parameters may be plain positional arguments."""
        runner_parameters = runner_types()[self.runner_type].runner_parameters
        declared = dict.fromkeys(
            name for name in self.request.parameter_schema if name not in runner_parameters
        )
        return {**declared, **self.request.action_parameters}

    def _payload(self, api_access: Mapping[str, str]) -> bytes:
        request = self.request
        document = {
            "entry_point": str(request.entry_point_path),
            "pack": request.pack,
            "action_ref": request.action_ref,
            "user": request.user,
            "execution_id": request.execution_id,
            "parameters": self._action_parameters(),
            "config": dict(request.pack_config),
            "log_level": self._log_level(),
        }
        if api_access:
            document["api"] = {
                "url": api_access["ST2_ACTION_API_URL"],
                "token": api_access["ST2_ACTION_AUTH_TOKEN"],
            }
        return json.dumps(document, default=str).encode("utf-8")

    def run(self) -> RunnerOutcome:
        with action_api_access(self.services, self.request, ttl=self.timeout) as api_access:
            return self._run(api_access)

    def _run(self, api_access: Mapping[str, str]) -> RunnerOutcome:
        timeout = self.timeout
        input_read, input_write = os.pipe()
        result_read, result_write = os.pipe()
        assert self._python is not None, "pre_run() finds the interpreter"
        argv = [
            str(self._python.python),
            "-P",  # the action's directory must not shadow modules the wrapper imports
            "-m",
            WRAPPER_MODULE,
            "--input-fd",
            str(input_read),
            "--result-fd",
            str(result_write),
        ]
        assert self.request.entry_point_path is not None
        process = StreamedProcess(
            argv,
            env=self._environment(self._python, api_access),
            output=self.output,
            cwd=self.request.entry_point_path.parent,
            pass_fds=(input_read, result_write),
        )
        try:
            with self._lock:
                if self._canceled:
                    os.close(input_write)
                    os.close(result_read)
                    return self._outcome(ExecutionStatus.CANCELED, None, "", "", None)
                process.start()
                self._process = process
        except OSError as error:
            os.close(input_write)
            os.close(result_read)
            result = {"error": f"Cannot start the Python interpreter: {error}"}
            return RunnerOutcome(ExecutionStatus.FAILED, result)
        finally:
            os.close(input_read)
            os.close(result_write)
        feeder = threading.Thread(
            target=_feed, args=(input_write, self._payload(api_access)), daemon=True
        )
        feeder.start()
        returned: list[bytes] = []
        collector = threading.Thread(target=_collect, args=(result_read, returned), daemon=True)
        collector.start()

        exit_code = process.wait(timeout)
        timed_out = exit_code is None
        if timed_out:
            process.kill()
        stdout, stderr = process.finish()
        exit_code = process.wait(None)
        feeder.join()
        collector.join()
        with self._lock:
            canceled = self._canceled
        if canceled:
            return self._outcome(ExecutionStatus.CANCELED, None, stdout, stderr, exit_code)
        if timed_out:
            message = f"Action failed to complete in {_seconds(timeout)} seconds"
            return self._outcome(ExecutionStatus.TIMEOUT, None, stdout, stderr, exit_code, message)
        return self._completed(b"".join(returned), stdout, stderr, exit_code)

    def _completed(
        self, returned: bytes, stdout: str, stderr: str, exit_code: int | None
    ) -> RunnerOutcome:
        try:
            document = json.loads(returned) if returned else {}
        except ValueError:
            document = {}
        result = document.get("result") if isinstance(document, dict) else None
        if exit_code == INVALID_STATUS_EXIT_CODE:
            return self._outcome(
                ExecutionStatus.FAILED, result, stdout, stderr, exit_code, stderr.strip()
            )
        status = ExecutionStatus.SUCCEEDED
        if exit_code != 0 or (isinstance(document, dict) and document.get("status") is False):
            status = ExecutionStatus.FAILED
        return self._outcome(status, result, stdout, stderr, exit_code)

    @staticmethod
    def _outcome(
        status: ExecutionStatus,
        result: Any,
        stdout: str,
        stderr: str,
        exit_code: int | None,
        error: str | None = None,
    ) -> RunnerOutcome:
        document: dict[str, Any] = {
            "result": result,
            "stdout": stdout,
            "stderr": stderr,
            "exit_code": KILLED_EXIT_CODE if exit_code is None else exit_code,
        }
        if error is not None:
            document["error"] = error
        return RunnerOutcome(status, document)

    def cancel(self) -> None:
        with self._lock:
            self._canceled = True
            process = self._process
        if process is not None:
            process.kill()


def _feed(descriptor: int, payload: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), os.fdopen(descriptor, "wb") as pipe:
        pipe.write(payload)


def _collect(descriptor: int, into: list[bytes]) -> None:
    with os.fdopen(descriptor, "rb") as pipe:
        into.append(pipe.read())
