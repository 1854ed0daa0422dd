"""``action.retry``: request the action again when an execution fails or times out.

As StackStorm 3.9 does it (``st2actions/policies/retry.py``), applied by the notifier once the
execution has finished: an execution that ended ``failed`` (``retry_on: failure``) or ``timeout``
(``retry_on: timeout``) is requested again with the same parameters and its context plus
``policies.retry`` (``applied_policy``, ``retry_count``, ``retried_liveaction_id``), until
``retry_count`` reaches ``max_retry_count``. Executions under a workflow are not retried (a
warning says so; workflows have their own retry). Unlike StackStorm, ``delay`` does not wait in
memory: the new execution is requested with that delay and the scheduler holds it ``delayed``,
so a notifier, runner or scheduler that dies loses no retry.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.actions.parameters import merge_schemas, secret_names
from poundcake.engine.executions.models import ExecutionDB, LiveActionDB
from poundcake.engine.executions.sealed import open_parameters
from poundcake.engine.executions.service import RequestedExecution, request_execution
from poundcake.engine.keyvalue.crypto import DatastoreCipher
from poundcake.engine.policies.models import PolicyDB

logger = logging.getLogger(__name__)

RETRY = "action.retry"
RETRY_ON_STATUS = {"failure": "failed", "timeout": "timeout"}


def retry_count(context: dict[str, Any] | None) -> int:
    """How many times the execution's chain of retries has been retried so far."""
    policies = (context or {}).get("policies") or {}
    return int(((policies.get("retry") or {}).get("retry_count")) or 0)


def apply_retry(
    session: Session,
    liveaction: LiveActionDB,
    execution: ExecutionDB,
    *,
    cipher: DatastoreCipher | None = None,
) -> list[RequestedExecution]:
    """Request the retries the action's enabled retry policies call for; return them."""
    policies = session.scalars(
        sa.select(PolicyDB)
        .where(
            PolicyDB.resource_ref == liveaction.action,
            PolicyDB.policy_type == RETRY,
            PolicyDB.enabled.is_(True),
        )
        .order_by(PolicyDB.ref)
    ).all()
    requested = []
    for policy in policies:
        retried = _apply_one(session, policy, liveaction, execution, cipher)
        if retried is not None:
            requested.append(retried)
    return requested


def _apply_one(
    session: Session,
    policy: PolicyDB,
    liveaction: LiveActionDB,
    execution: ExecutionDB,
    cipher: DatastoreCipher | None,
) -> RequestedExecution | None:
    context = dict(liveaction.context or {})
    if context.get("parent"):
        logger.warning(
            "Retry policy %s is not applied to execution %s: it runs under a workflow; use the "
            "workflow's own retry",
            policy.ref,
            execution.id,
        )
        return None
    parameters = policy.parameters or {}
    if liveaction.status != RETRY_ON_STATUS.get(str(parameters.get("retry_on"))):
        return None
    count = retry_count(context)
    if count + 1 > int(parameters.get("max_retry_count", 2)):
        logger.info(
            "Retry policy %s: execution %s reached max_retry_count; not retrying",
            policy.ref,
            execution.id,
        )
        return None
    context = copy.deepcopy(context)
    context["policies"] = {
        "retry": {
            "applied_policy": policy.ref,
            "retry_count": count + 1,
            "retried_liveaction_id": liveaction.id,
        }
    }
    delay = float(parameters.get("delay") or 0)
    logger.info(
        "Retry policy %s matched execution %s (%s); retrying in %s seconds",
        policy.ref,
        execution.id,
        liveaction.status,
        delay,
    )
    return request_execution(
        session,
        action_ref=liveaction.action,
        parameters=_parameters(liveaction, execution, cipher),
        user=str(context.get("user") or execution.context_user or "stanley"),
        context=context,
        delay=int(delay * 1000) or None,
        cipher=cipher,
        rendered=True,
    )


def _parameters(
    liveaction: LiveActionDB, execution: ExecutionDB, cipher: DatastoreCipher | None
) -> dict[str, Any]:
    action: dict[str, Any] = execution.action_snapshot or {}
    runner: dict[str, Any] = execution.runner or {}
    schema = merge_schemas(runner.get("runner_parameters") or {}, action.get("parameters") or {})
    return open_parameters(liveaction.parameters or {}, secret_names(schema), cipher)
