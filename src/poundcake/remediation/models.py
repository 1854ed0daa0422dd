"""Every PoundCake table, imported in one place so the metadata is complete."""

from __future__ import annotations

from poundcake.remediation.aftercare.models import Silence
from poundcake.remediation.alerts.models import Alert, AlertDelivery
from poundcake.remediation.approvals.models import Approval
from poundcake.remediation.cabs.models import ActionExtension, RuleExtension
from poundcake.remediation.guards.models import (
    Breaker,
    Decision,
    GuardMember,
    GuardRow,
    TargetLock,
)
from poundcake.remediation.intake.models import ApiCall, WebhookExtension
from poundcake.remediation.tracking.models import ExecutionExtension
from poundcake.remediation.ui.models import UiSession

__all__ = [
    "ActionExtension",
    "Alert",
    "AlertDelivery",
    "ApiCall",
    "Approval",
    "Breaker",
    "Decision",
    "ExecutionExtension",
    "GuardMember",
    "GuardRow",
    "RuleExtension",
    "Silence",
    "TargetLock",
    "UiSession",
    "WebhookExtension",
]
