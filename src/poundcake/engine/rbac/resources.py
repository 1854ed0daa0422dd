"""The engine's rows (and refs) as the :class:`Resource` a resolver checks: uid, pack, parent."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.executions.models import ExecutionDB
from poundcake.engine.rbac import uids
from poundcake.engine.rbac.resolvers import Resource
from poundcake.exceptions import NotFoundError


def pack_resource(ref: str) -> Resource:
    """A pack by its ref."""
    return Resource("pack", uids.pack_uid(ref))


def content_resource(resource_type: str, pack: str, name: str) -> Resource:
    """An action, alias, rule, sensor type, policy, trigger type or timer of ``pack``."""
    return Resource(resource_type, uids.content_uid(resource_type, pack, name), pack=pack)


def split_ref(ref: str) -> tuple[str, str]:
    """``pack.name`` as (pack, name): a pack name has no dot, a resource name may."""
    pack, _, name = ref.partition(".")
    return pack, name


def content_resource_of(resource_type: str, row: Any) -> Resource:
    """A pack resource row (``pack`` and ``name`` attributes)."""
    return content_resource(resource_type, row.pack, row.name)


def action_resource(ref: str) -> Resource:
    """An action by its ref (it need not exist: rules may name actions not registered yet)."""
    return content_resource("action", *split_ref(ref))


def execution_resource(execution_id: str, action_ref: str) -> Resource:
    """An execution, with its action's uid and pack (what grants on it inherit from)."""
    pack, name = split_ref(action_ref)
    return Resource(
        "execution",
        uids.execution_uid(execution_id),
        pack=pack,
        parent_uid=uids.content_uid("action", pack, name),
    )


def action_of_execution(execution: Resource) -> Resource:
    """The action an execution resource ran."""
    return Resource("action", execution.parent_uid or "", pack=execution.pack)


def find_execution_resource(session: Session, execution_id: str) -> Resource:
    """The execution ``execution_id`` as a resource; StackStorm's 404 if it does not exist."""
    action = session.scalar(sa.select(ExecutionDB.action).where(ExecutionDB.id == execution_id))
    if action is None:
        raise NotFoundError(f'Unable to identify resource with id "{execution_id}".')
    return execution_resource(execution_id, action)


def inquiry_resource(parent_action_ref: str | None) -> Resource:
    """An inquiry (uid ``inquiry``, as StackStorm's), with the workflow action that asked it."""
    if not parent_action_ref:
        return Resource("inquiry", uids.INQUIRY_UID)
    pack, name = split_ref(parent_action_ref)
    return Resource(
        "inquiry", uids.INQUIRY_UID, pack=pack, parent_uid=uids.content_uid("action", pack, name)
    )


def rule_enforcement_resource(enforcement_id: str, rule: dict[str, Any]) -> Resource:
    """A rule enforcement, with its rule's uid and pack (from the rule snapshot it keeps)."""
    ref = str(rule.get("ref") or "")
    pack, name = split_ref(ref) if ref else (None, None)
    uid = rule.get("uid") or (uids.content_uid("rule", pack, name) if pack and name else None)
    return Resource(
        "rule_enforcement",
        uids.rule_enforcement_uid(enforcement_id),
        pack=pack or None,
        parent_uid=uid,
    )


def key_value_pair_resource(scope: str, stored_name: str) -> Resource:
    """A datastore key by its full scope and stored name (``<user>:<name>`` in the user scope)."""
    return Resource(
        "key_value_pair",
        uids.key_value_pair_uid(scope, stored_name),
        scope=scope,
        name=stored_name,
    )


def webhook_resource(url: str) -> Resource:
    """A webhook by its url."""
    return Resource("webhook", uids.webhook_uid(url))


def api_key_resource(key_hash: str) -> Resource:
    """An API key by its hash."""
    return Resource("api_key", uids.api_key_uid(key_hash))


def runner_type_resource(name: str) -> Resource:
    """A runner type by name."""
    return Resource("runner_type", uids.runner_type_uid(name))


def policy_type_resource(resource_type: str, name: str) -> Resource:
    """A policy type by the resource type it applies to and its name."""
    return Resource("policy_type", uids.policy_type_uid(resource_type, name))


def timer_resource(pack: str, name: str) -> Resource:
    """A timer (a trigger of a timer type) as StackStorm's ``timer:<pack>:<name>``."""
    return Resource("timer", uids.content_uid("timer", pack, name))


def body_content_resource(resource_type: str, body: dict[str, Any]) -> Resource:
    """The pack resource a create request describes (``pack`` defaults to ``default``)."""
    return content_resource(
        resource_type, str(body.get("pack") or "default"), str(body.get("name") or "")
    )
