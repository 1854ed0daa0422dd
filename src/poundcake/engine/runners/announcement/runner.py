"""The ``announcement`` runner, StackStorm's experimental runner behind ``chatops.post_message``.

It publishes the action's parameters as the stream event ``st2.announcement__<route>`` with the
body ``{"payload": <parameters>, "trace_context": null}``, which chat adapters such as hubot
listen for, and succeeds with the parameters as its result (also under ``output``). As in
StackStorm, it refuses to run unless the ``experimental`` runner parameter is true.
"""

from __future__ import annotations

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.runners.base import Runner, RunnerOutcome
from poundcake.exceptions import ValidationError


class AnnouncementRunner(Runner):
    """Announces the parameters on the event stream."""

    runner_type = "announcement"

    def pre_run(self) -> None:
        if not self.request.runner_parameters.get("experimental"):
            raise ValidationError(
                f"Experimental flag is missing for action {self.request.action_ref}"
            )
        if self.services.announcements is None:
            raise ValidationError("this process cannot publish announcements")

    def run(self) -> RunnerOutcome:
        route = str(self.request.runner_parameters.get("route") or "general")
        parameters = dict(self.request.action_parameters)
        announcements = self.services.announcements
        assert announcements is not None  # checked in pre_run
        announcements.announce(route, parameters)
        return RunnerOutcome(ExecutionStatus.SUCCEEDED, {"output": parameters, **parameters})
