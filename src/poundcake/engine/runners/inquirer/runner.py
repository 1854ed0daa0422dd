"""The ``inquirer`` runner.

``run`` ends at once with ``pending`` and the result ``{schema, roles, users, route, ttl}``; the
action runner then records the execution as waiting for a response, stores the
``core.st2.generic.inquiry`` trigger instance and pauses the action-chain it runs in (see
:mod:`poundcake.engine.inquiries.service`). The response comes through ``PUT /v1/inquiries/<id>``
(``st2 inquiry respond``). A ``schema`` that is not a JSON schema fails the execution at once,
since no response could ever be checked against it.
"""

from __future__ import annotations

from typing import Any

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.schema import check_schema
from poundcake.engine.runners.base import Runner, RunnerOutcome

DEFAULT_SCHEMA: dict[str, Any] = {
    "title": "response_data",
    "type": "object",
    "properties": {
        "continue": {
            "type": "boolean",
            "description": "Would you like to continue the workflow?",
            "required": True,
        }
    },
}
DEFAULT_TTL = 1440


class InquirerRunner(Runner):
    """Asks for a response: the execution waits in ``pending`` until one comes."""

    runner_type = "inquirer"

    def pre_run(self) -> None:
        check_schema(self._schema(), "schema")

    def run(self) -> RunnerOutcome:
        parameters = self.request.runner_parameters
        ttl = parameters.get("ttl")
        result = {
            "schema": self._schema(),
            "roles": list(parameters.get("roles") or []),
            "users": list(parameters.get("users") or []),
            "route": str(parameters.get("route") or ""),
            "ttl": DEFAULT_TTL if ttl is None else int(ttl),
        }
        return RunnerOutcome(ExecutionStatus.PENDING, result)

    def _schema(self) -> Any:
        schema = self.request.runner_parameters.get("schema")
        return DEFAULT_SCHEMA if schema is None else schema
