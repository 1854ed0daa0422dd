"""A CAB's steps rendered for one alert, as the ``steps`` runner would render them.

The CAB match test (``ui/match.py``) and shadow mode (``guards``) both show what a CAB would run:
each step's parameters rendered from the alert (shell commands quoted word by word, so label
values stay data), secret parameters masked.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.public import (
    SHELL_COMMAND_RUNNERS,
    ActionDB,
    RenderError,
    RunnerTypeDB,
    mask_secrets,
    merge_schemas,
    render_shell_command,
    render_value,
)
from poundcake.remediation.cabs.definition import Cab, CabStep


class StepActions:
    """Runner types and parameter schemas of the actions steps name, read once."""

    def __init__(self, session: Session, cabs: list[Cab]) -> None:
        refs = {step.action for cab in cabs for step in cab.steps}
        actions = list(session.scalars(sa.select(ActionDB).where(ActionDB.ref.in_(refs))))
        runner_names = {action.runner_type for action in actions}
        runners = {
            runner.name: runner.runner_parameters or {}
            for runner in session.scalars(
                sa.select(RunnerTypeDB).where(RunnerTypeDB.name.in_(runner_names))
            )
        }
        self.found = {
            action.ref: (
                action.runner_type,
                merge_schemas(runners.get(action.runner_type, {}), action.parameters or {}),
            )
            for action in actions
        }


def render_step(
    step: CabStep, names: dict[str, Any], actions: StepActions
) -> tuple[dict[str, Any], str | None]:
    """A step's rendered parameters (secrets masked) and the error that stopped it, if any."""
    known = actions.found.get(step.action)
    if known is None:
        return dict(step.parameters), f'step {step.order} ({step.name}): no action "{step.action}"'
    runner_type, schema = known
    rendered: dict[str, Any] = {}
    for name, value in step.parameters.items():
        shell = name == "cmd" and runner_type in SHELL_COMMAND_RUNNERS
        try:
            rendered[name] = (
                render_shell_command(value, names) if shell else render_value(value, names)
            )
        except RenderError as error:
            return mask_secrets(
                step.parameters, schema
            ), f'step {step.order} ({step.name}): parameter "{name}": {error}'
    if step.timeout_seconds is not None and "timeout" not in rendered and "timeout" in schema:
        rendered["timeout"] = step.timeout_seconds
    return mask_secrets(rendered, schema), None
