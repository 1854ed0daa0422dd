"""StackStorm's RBAC vocabulary: resource types, the permission types valid on each, the ones
granted without a resource (global), their descriptions, and the system roles.

The names and descriptions are StackStorm's wire contract (``/v1/rbac/permission_types``
answers them, role files use them), as in ``st2common/rbac/types.py`` of StackStorm 3.9.
"""

from __future__ import annotations

SYSTEM_ROLES: tuple[str, ...] = ("system_admin", "admin", "observer")

# Each resource type with its permission types, in StackStorm's order, and each description.
_VIEW = 'Also implies "{}_view" permission.'


def _crud(noun: str, plural: str, prefix: str) -> dict[str, str]:
    return {
        f"{prefix}_list": f"Ability to list (view all) {plural}.",
        f"{prefix}_view": f"Ability to view {noun}.",
    }


PERMISSION_TYPES: dict[str, dict[str, str]] = {
    "runner_type": {
        **_crud("a runner", "runners", "runner_type"),
        "runner_type_modify": "Ability to modify (update) an existing runner. "
        + _VIEW.format("runner_type"),
        "runner_type_all": "Ability to perform all the supported operations on a particular "
        "runner.",
    },
    "pack": {
        **_crud("a pack", "packs", "pack"),
        "pack_create": "Ability to create a new pack.",
        "pack_modify": "Ability to modify (update) an existing pack.",
        "pack_delete": "Ability to delete an existing pack.",
        "pack_install": "Ability to install packs.",
        "pack_uninstall": "Ability to uninstall packs.",
        "pack_register": "Ability to register packs and corresponding resources.",
        "pack_config": "Ability to configure a pack.",
        "pack_search": "Ability to query registry and search packs.",
        "pack_views_index_health": "Ability to query health of pack registries.",
        "pack_all": "Ability to perform all the supported operations on a particular pack.",
    },
    "sensor_type": {
        "sensor_type_list": "Ability to list (view all) sensors.",
        "sensor_type_view": "Ability to view a sensor",
        "sensor_type_modify": "Ability to modify (update) an existing sensor. "
        + _VIEW.format("sensor_type"),
        "sensor_type_all": "Ability to perform all the supported operations on a particular "
        "sensor.",
    },
    "action": {
        **_crud("an action", "actions", "action"),
        "action_create": "Ability to create a new action. " + _VIEW.format("action"),
        "action_modify": "Ability to modify (update) an existing action. " + _VIEW.format("action"),
        "action_delete": "Ability to delete an existing action. " + _VIEW.format("action"),
        "action_execute": "Ability to execute (run) an action. " + _VIEW.format("action"),
        "action_all": "Ability to perform all the supported operations on a particular action.",
    },
    "action_alias": {
        **_crud("an action alias", "action aliases", "action_alias"),
        "action_alias_create": "Ability to create a new action alias. "
        + _VIEW.format("action_alias"),
        "action_alias_modify": "Ability to modify (update) an existing action alias. "
        + _VIEW.format("action_alias"),
        "action_alias_match": "Ability to use action alias match API endpoint.",
        "action_alias_help": "Ability to use action alias help API endpoint.",
        "action_alias_delete": "Ability to delete an existing action alias. "
        + _VIEW.format("action_alias"),
        "action_alias_all": "Ability to perform all the supported operations on a particular "
        "action alias.",
    },
    "rule": {
        **_crud("a rule", "rules", "rule"),
        "rule_create": 'Ability to create a new rule. Also implies "rule_view" permission',
        "rule_modify": "Ability to modify (update) an existing rule. " + _VIEW.format("rule"),
        "rule_delete": "Ability to delete an existing rule. " + _VIEW.format("rule"),
        "rule_all": "Ability to perform all the supported operations on a particular rule.",
    },
    "rule_enforcement": _crud("a rule enforcement", "rule enforcements", "rule_enforcement"),
    "execution": {
        **_crud("an execution", "executions", "execution"),
        "execution_rerun": "Ability to create a new action.",
        "execution_stop": "Ability to stop (cancel) a running execution.",
        "execution_all": "Ability to perform all the supported operations on a particular "
        "execution.",
        "execution_views_filters_list": "Ability view all the distinct execution filters.",
    },
    "key_value_pair": {
        "key_value_pair_list": "Ability to list (view all) Key-Value Pairs.",
        "key_value_pair_view": "Ability to view Key-Value Pairs.",
        "key_value_pair_set": "Ability to set a Key-Value Pair.",
        "key_value_pair_delete": "Ability to delete an existing Key-Value Pair.",
        "key_value_pair_all": "Ability to perform all the supported operations on a "
        "Key-Value Pair.",
    },
    "webhook": {
        **_crud("a webhook", "webhooks", "webhook"),
        "webhook_create": "Ability to create a new webhook.",
        "webhook_send": "Ability to send / POST data to an existing webhook.",
        "webhook_delete": "Ability to delete an existing webhook.",
        "webhook_all": "Ability to perform all the supported operations on a particular webhook.",
    },
    "timer": {
        **_crud("a timer", "timers", "timer"),
        "timer_all": "Ability to perform all the supported operations on timers",
    },
    "api_key": {
        "api_key_list": "Ability to list (view all) API keys.",
        "api_key_view": "Ability to view an API Key.",
        "api_key_create": "Ability to create a new API Key.",
        "api_key_modify": "Ability to modify (update) an existing API key. "
        + _VIEW.format("api_key"),
        "api_key_delete": "Ability to delete an existing API Keys.",
        "api_key_all": "Ability to perform all the supported operations on an API Key.",
    },
    "trace": {
        **_crud("a trace", "traces", "trace"),
        "trace_all": "Ability to perform all the supported operations on traces.",
    },
    "trigger": {
        **_crud("a trigger", "triggers", "trigger"),
        "trigger_all": "Ability to perform all the supported operations on triggers.",
    },
    "policy_type": {
        **_crud("a policy types", "policy types", "policy_type"),
        "policy_type_all": "Ability to perform all the supported operations on policy types.",
    },
    "policy": {
        "policy_list": "Ability to list (view all) policies.",
        "policy_view": "Ability to view a policy.",
        "policy_create": "Ability to create a new policy.",
        "policy_modify": "Ability to modify an existing policy.",
        "policy_delete": "Ability to delete an existing policy.",
        "policy_all": "Ability to perform all the supported operations on a particular policy.",
    },
    "inquiry": {
        "inquiry_list": "Ability to list existing Inquiries",
        "inquiry_view": 'Ability to view an existing Inquiry. Also implies "inquiry_respond" '
        "permission.",
        "inquiry_respond": "Ability to respond to an existing Inquiry (in general - user still "
        "needs access per specific inquiry parameters). Also implies "
        '"inquiry_view" permission.',
        "inquiry_all": "Ability to perform all supported operations on a particular Inquiry.",
    },
}

# A pack grant also covers what is in the pack: its sensors, actions, aliases and rules.
_PACK_CONTENT = {
    "sensor_type": ("view", "modify", "all"),
    "action": ("view", "create", "modify", "delete", "execute", "all"),
    "action_alias": ("view", "create", "modify", "delete", "all"),
    "rule": ("view", "create", "modify", "delete", "all"),
}
PERMISSION_TYPES["pack"].update(
    {
        f"{resource}_{name}": PERMISSION_TYPES[resource][f"{resource}_{name}"]
        for resource, names in _PACK_CONTENT.items()
        for name in names
    }
)

STREAM_VIEW = "stream_view"
STREAM_VIEW_DESCRIPTION = "Ability to view / listen to the events on the stream API endpoint."

ALL_PERMISSION_TYPES: frozenset[str] = frozenset(
    {name for names in PERMISSION_TYPES.values() for name in names} | {STREAM_VIEW}
)

# Granted without a resource_uid: every *_list, and these.
GLOBAL_PERMISSION_TYPES: tuple[str, ...] = (
    "pack_install",
    "pack_uninstall",
    "pack_create",
    "pack_register",
    "pack_config",
    "pack_search",
    "pack_views_index_health",
    "action_alias_match",
    "action_alias_help",
    "api_key_create",
    "policy_create",
    "execution_views_filters_list",
    STREAM_VIEW,
    "inquiry_list",
    "inquiry_respond",
    "inquiry_view",
    *sorted(
        {name for names in PERMISSION_TYPES.values() for name in names if name.endswith("_list")}
        - {"inquiry_list", "execution_views_filters_list"}
    ),
)


def resource_type_of_uid(uid: str) -> str:
    """The resource type a uid names (``action:core:local`` -> ``action``); ``ValueError`` if
    the uid has no ``type:`` part."""
    resource_type, separator, rest = uid.partition(":")
    if not separator or not resource_type or not rest:
        raise ValueError(f'invalid uid "{uid}": expected <resource type>:<id>')
    return resource_type
