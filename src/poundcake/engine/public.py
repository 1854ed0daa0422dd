"""What PoundCake may use of the engine in process: its face towards ``poundcake.remediation``.

PoundCake *writes* to the engine only through its HTTP API (``poundcake.remediation.engine_api``),
so every change passes the engine's own validation, policies and audit. In process it may:

* **read** the engine's tables, joined with its own extension tables in one query: the ORM
  models below, never written to, and the engine's execution filters;
* **check and preview** what the engine would do, with the engine's own rules: merge an action's
  parameter schemas, mask secrets, compile rule criteria, render parameters, parse ``steps``;
* **know the engine's vocabulary**: execution statuses, runner names, where packs live;
* **log in** operators against the engine's users (``st2-setup-auth`` creates them).

An import contract (``pyproject.toml``) allows ``poundcake.remediation`` no other module of the
engine.
"""

from __future__ import annotations

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.actions.parameters import mask_secrets, merge_schemas
from poundcake.engine.auth.models import UserDB
from poundcake.engine.auth.users import hash_password, verify_password
from poundcake.engine.documents import isoformat
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.executions.pausing import PAUSABLE_RUNNERS
from poundcake.engine.executions.queries import ExecutionFilters, filter_conditions, parse_timestamp
from poundcake.engine.executions.service import WORKFLOW_RUNNER_TYPES
from poundcake.engine.executions.states import CANCELABLE, COMPLETED, FAILED, ExecutionStatus
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.models import PackDB
from poundcake.engine.rendering import (
    RenderError,
    environment,
    is_template,
    render_shell_command,
    render_value,
)
from poundcake.engine.rules.criteria import CompiledCriteria, CriteriaError, compile_criteria
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.runners.steps.definition import parse_steps
from poundcake.engine.runners.steps.runner import RESUME_FROM, SHELL_COMMAND_RUNNERS
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.engine.workflows.models import TaskExecutionDB

# An execution's status, as strings compare with it: finished, finished without success, and
# still cancelable.
COMPLETED_STATUSES: frozenset[str] = frozenset(COMPLETED)
FAILED_STATUSES: frozenset[str] = frozenset(FAILED)
CANCELABLE_STATUSES: frozenset[str] = frozenset(CANCELABLE)

__all__ = [
    "CANCELABLE_STATUSES",
    "COMPLETED_STATUSES",
    "FAILED_STATUSES",
    "PAUSABLE_RUNNERS",
    "RESUME_FROM",
    "SHELL_COMMAND_RUNNERS",
    "WORKFLOW_RUNNER_TYPES",
    "ActionDB",
    "CompiledCriteria",
    "CriteriaError",
    "ExecutionDB",
    "ExecutionFilters",
    "ExecutionOutputDB",
    "ExecutionStatus",
    "LiveActionDB",
    "PackDB",
    "RenderError",
    "RuleDB",
    "RuleEnforcementDB",
    "RunnerTypeDB",
    "TaskExecutionDB",
    "TriggerInstanceDB",
    "UserDB",
    "compile_criteria",
    "content_locations",
    "environment",
    "filter_conditions",
    "hash_password",
    "is_template",
    "isoformat",
    "mask_secrets",
    "merge_schemas",
    "parse_steps",
    "parse_timestamp",
    "render_shell_command",
    "render_value",
    "verify_password",
]
