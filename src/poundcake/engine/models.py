"""Every engine table, imported in one place so the metadata is complete."""

from __future__ import annotations

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.engine.auth.models import ApiKeyDB, TokenDB, UserDB
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.keyvalue.models import KeyValuePairDB
from poundcake.engine.notifier.models import NotifierPendingDB
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.policies.models import PolicyDB, PolicyTypeDB
from poundcake.engine.rbac.models import (
    GroupToRoleMappingDB,
    PermissionGrantDB,
    RoleDB,
    UserRoleAssignmentDB,
)
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.sensors.models import SensorLeaseDB, SensorTypeDB
from poundcake.engine.timers.models import TimerScheduleDB
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB, TriggerTypeDB
from poundcake.engine.webhooks.models import WebhookDB
from poundcake.engine.workflows.models import (
    TaskExecutionDB,
    WorkflowActionDB,
    WorkflowContextDB,
    WorkflowExecutionDB,
)

__all__ = [
    "ActionAliasDB",
    "ActionDB",
    "ApiKeyDB",
    "ConfigDB",
    "ConfigSchemaDB",
    "ExecutionDB",
    "ExecutionOutputDB",
    "GroupToRoleMappingDB",
    "KeyValuePairDB",
    "LiveActionDB",
    "NotifierPendingDB",
    "PackDB",
    "PermissionGrantDB",
    "PolicyDB",
    "PolicyTypeDB",
    "RoleDB",
    "RuleDB",
    "RuleEnforcementDB",
    "RunnerTypeDB",
    "SensorLeaseDB",
    "SensorTypeDB",
    "TaskExecutionDB",
    "TimerScheduleDB",
    "TokenDB",
    "TriggerDB",
    "TriggerInstanceDB",
    "TriggerTypeDB",
    "UserDB",
    "UserRoleAssignmentDB",
    "WebhookDB",
    "WorkflowActionDB",
    "WorkflowContextDB",
    "WorkflowExecutionDB",
]
