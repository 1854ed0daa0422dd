"""Resource uids as StackStorm forms them (``<resource type>:<fields>``), the names permission
grants use in ``resource_uid``.

StackStorm builds each uid from the model's ``RESOURCE_TYPE`` and ``UID_FIELDS`` joined by
``:`` (``st2common/models/db/stormbase.py``), an empty field giving an empty part; a trigger adds
the MD5 of its parameters, an execution and a rule enforcement use their id, and an inquiry, which
shares the execution's model, is the bare ``inquiry`` (the controller's "UID hack").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

SEPARATOR = ":"


def _uid(resource_type: str, *fields: str | None) -> str:
    return SEPARATOR.join([resource_type, *(field or "" for field in fields)])


def pack_uid(ref: str) -> str:
    """``pack:<ref>``."""
    return _uid("pack", ref)


def runner_type_uid(name: str) -> str:
    """``runner_type:<name>``."""
    return _uid("runner_type", name)


def content_uid(resource_type: str, pack: str, name: str) -> str:
    """A pack resource's uid: ``action:core:local``, ``rule:<pack>:<name>``, ``sensor_type:...``,
    ``action_alias:...``, ``trigger_type:...``, ``policy:...``, ``timer:...``."""
    return _uid(resource_type, pack, name)


def trigger_uid(pack: str, name: str, parameters: Mapping[str, Any]) -> str:
    """``trigger:<pack>:<name>:<md5 of its parameters as sorted JSON>``."""
    canonical = json.dumps(dict(parameters), sort_keys=True)
    digest = hashlib.md5(canonical.encode(), usedforsecurity=False).hexdigest()
    return _uid("trigger", pack, name, digest)


def policy_type_uid(resource_type: str, name: str) -> str:
    """``policy_type:<resource type>:<name>`` (``policy_type:action:concurrency``)."""
    return _uid("policy_type", resource_type, name)


def execution_uid(execution_id: str) -> str:
    """``execution:<id>``."""
    return _uid("execution", execution_id)


def rule_enforcement_uid(enforcement_id: str) -> str:
    """``rule_enforcement:<id>``."""
    return _uid("rule_enforcement", enforcement_id)


def key_value_pair_uid(scope: str, stored_name: str) -> str:
    """``key_value_pair:<full scope>:<name>``; a user-scoped name is stored as ``<user>:<name>``
    (``key_value_pair:st2kv.user:alice:token``)."""
    return _uid("key_value_pair", scope, stored_name)


def webhook_uid(url: str) -> str:
    """``webhook:<url>`` (the url after ``/v1/webhooks/``)."""
    return _uid("webhook", url)


def api_key_uid(key_hash: str) -> str:
    """``api_key:<key hash>``."""
    return _uid("api_key", key_hash)


INQUIRY_UID = "inquiry"
STREAM_UID = "stream"
