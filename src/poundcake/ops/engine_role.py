"""PoundCake's own engine role: the ``poundcake`` RBAC role its engine API key holds when the
engine's ``[rbac] enable`` is on, with exactly the grants of the calls PoundCake makes
(:class:`~poundcake.remediation.engine_api.EngineClient`).

:data:`ROLE` is the one definition. :func:`grant_engine_role` writes it as
``<rbac dir>/roles/poundcake.yaml`` with ``<rbac dir>/assignments/<user>.yaml`` (the key's user
holds this role and no other file role) and then applies the whole definitions directory with
the code ``st2-apply-rbac-definitions`` runs, so a second run changes nothing.

Why each grant (StackStorm's permission types and uids):

* ``webhook:st2`` ``webhook_send``: dispatching an alert as a ``poundcake.alert`` trigger
  instance (``POST /v1/webhooks/st2``). StackStorm checks the generic webhook by its url only, so
  this also lets the key post other triggers through it.
* ``pack:poundcake_cabs`` action and rule create, modify, delete, view and execute: the CABs'
  workflows and rules; ``action_view`` covers their executions (``execution_view``) and
  ``action_execute`` running them again (on_unverified CABs, resumed runs) and cancelling them
  (``execution_stop``).
* ``pack_register``: ``poundcake cabs apply`` registers the CAB pack (``POST /v1/packs/register``);
  StackStorm has this permission only as a global one, so the key could re-register any pack
  already on the engine's disk (it cannot install or write one).
* ``action:core:ask`` ``action_execute``: approvals ask through a ``core.ask`` inquiry, and its
  ``action_view`` lets PoundCake read the inquiry's execution.
* ``inquiry_list``, ``inquiry_view``, ``inquiry_respond``: the approvals it asked and answers.
* ``execution_list``: a workflow's steps and a crashed run's lookup; ``rule_list``: the rule
  enforcements of a trigger instance (StackStorm's ``rule_enforcement_list``); reading trigger
  instances needs no permission in StackStorm.
* ``action_list``, ``runner_type_list``: validating a CAB reads its steps' actions (``core.noop``,
  ``linux.*``...) and their runner types by listing, since the list shows every action's
  metadata anyway; the steps themselves run inside the engine as the workflow's children, which
  StackStorm (action-chain, Orquesta, ``services/action.py``) never checks against RBAC.

Nothing else: no key-value pair, API key, RBAC, pack install, policy or stream permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from poundcake.config import St2Config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.rbac.definitions import load_definitions
from poundcake.engine.rbac.sync import SyncReport, sync_definitions

ROLE_NAME = "poundcake"
CAB_PACK = "poundcake_cabs"

ROLE: dict[str, Any] = {
    "name": ROLE_NAME,
    "description": "PoundCake's engine API key: what PoundCake calls and nothing else",
    "enabled": True,
    "permission_grants": [
        {"resource_uid": "webhook:st2", "permission_types": ["webhook_send"]},
        {
            "resource_uid": f"pack:{CAB_PACK}",
            "permission_types": [
                "action_create",
                "action_modify",
                "action_delete",
                "action_view",
                "action_execute",
                "rule_create",
                "rule_modify",
                "rule_delete",
                "rule_view",
            ],
        },
        {"resource_uid": "action:core:ask", "permission_types": ["action_execute"]},
        {
            "permission_types": [
                "pack_register",
                "execution_list",
                "rule_list",
                "action_list",
                "runner_type_list",
                "inquiry_list",
                "inquiry_view",
                "inquiry_respond",
            ]
        },
    ],
}


def role_file_text() -> str:
    """The role as ``rbac/roles/poundcake.yaml``."""
    return yaml.safe_dump(ROLE, sort_keys=False)


def assignment_file_text(user: str) -> str:
    """``user``'s assignment of the role alone, as ``rbac/assignments/<user>.yaml``."""
    return yaml.safe_dump(
        {
            "username": user,
            "description": "PoundCake's engine API key (written by poundcake engine-key)",
            "enabled": True,
            "roles": [ROLE_NAME],
        },
        sort_keys=False,
    )


@dataclass
class RoleGrant:
    """What :func:`grant_engine_role` did: files written (or left as they were), and the sync."""

    directory: Path
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    report: SyncReport = field(default_factory=SyncReport)


def _write_if_changed(path: Path, text: str, grant: RoleGrant) -> None:
    try:
        current = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if current == text:
        grant.unchanged.append(path)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    grant.written.append(path)


def grant_engine_role(st2_config: St2Config, user: str) -> RoleGrant | None:
    """With the engine's RBAC on, give ``user`` the ``poundcake`` role alone and apply the
    definitions directory; None (nothing done) with RBAC off."""
    if not st2_config.rbac.enable:
        return None
    directory = st2_config.rbac_definitions_dir
    grant = RoleGrant(directory)
    _write_if_changed(directory / "roles" / f"{ROLE_NAME}.yaml", role_file_text(), grant)
    _write_if_changed(directory / "assignments" / f"{user}.yaml", assignment_file_text(user), grant)
    definitions = load_definitions(directory)
    db_engine = make_st2_engine(st2_config, pool_size=1)
    try:
        with unit_of_work(make_session_factory(db_engine)) as session:
            grant.report = sync_definitions(session=session, definitions=definitions)
    finally:
        db_engine.dispose()
    return grant
