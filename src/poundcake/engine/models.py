"""Every engine table, imported in one place so the metadata is complete."""

from __future__ import annotations

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.auth.models import ApiKeyDB, TokenDB, UserDB
from poundcake.engine.executions.models import ExecutionDB, ExecutionOutputDB, LiveActionDB
from poundcake.engine.keyvalue.models import KeyValuePairDB
from poundcake.engine.packs.models import PackDB
from poundcake.engine.rules.models import RuleDB, RuleEnforcementDB
from poundcake.engine.runners.models import RunnerTypeDB
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB, TriggerTypeDB
from poundcake.engine.webhooks.models import WebhookDB

__all__ = [
    "ActionDB",
    "ApiKeyDB",
    "ExecutionDB",
    "ExecutionOutputDB",
    "KeyValuePairDB",
    "LiveActionDB",
    "PackDB",
    "RuleDB",
    "RuleEnforcementDB",
    "RunnerTypeDB",
    "TokenDB",
    "TriggerDB",
    "TriggerInstanceDB",
    "TriggerTypeDB",
    "UserDB",
    "WebhookDB",
]
