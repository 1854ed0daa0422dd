"""The ``noop`` runner."""

from __future__ import annotations

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import Runner, RunnerOutcome


class NoopRunner(Runner):
    """Does nothing and succeeds, with StackStorm's shell result shape."""

    runner_type = "noop"

    def run(self) -> RunnerOutcome:
        result = {"failed": False, "succeeded": True, "return_code": 0, "stdout": "", "stderr": ""}
        return RunnerOutcome(ExecutionStatus.SUCCEEDED, result)
