"""Reading one resource file of a pack: action, rule, sensor, trigger type, policy or alias.

Each ``load_*`` function checks what can be checked without the database, the way StackStorm's
API models do (unknown top-level fields are refused, ``pack`` must match the pack), and returns
a spec with StackStorm's defaults applied. Parameter schemas are kept exactly as written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from poundcake.engine.packs.errors import FieldError, MetadataError
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.loader import PackSpec, read_metadata
from poundcake.engine.packs.schema import check_parameters, check_schema, type_name

MINIMUM_POLL_INTERVAL = 4
_COMMON_FIELDS = frozenset({"id", "ref", "uid", "pack", "metadata_file"})
ACTION_FIELDS = _COMMON_FIELDS | {
    "name",
    "description",
    "enabled",
    "runner_type",
    "entry_point",
    "parameters",
    "output_schema",
    "tags",
    "notify",
}
RULE_FIELDS = _COMMON_FIELDS | {
    "name",
    "description",
    "type",
    "trigger",
    "criteria",
    "action",
    "enabled",
    "context",
    "tags",
}
TRIGGER_TYPE_FIELDS = _COMMON_FIELDS | {
    "name",
    "description",
    "payload_schema",
    "parameters_schema",
    "tags",
}
POLICY_FIELDS = _COMMON_FIELDS | {
    "name",
    "description",
    "enabled",
    "resource_ref",
    "policy_type",
    "parameters",
}
ALIAS_FIELDS = _COMMON_FIELDS | {
    "name",
    "description",
    "enabled",
    "action_ref",
    "formats",
    "ack",
    "result",
    "extra",
    "immutable_parameters",
}
ALIAS_ACK_FIELDS = frozenset({"enabled", "format", "extra", "append_url"})
ALIAS_RESULT_FIELDS = frozenset({"enabled", "format", "extra"})
ALIAS_FORMAT_FIELDS = frozenset({"display", "representation", "match_multiple"})
NOTIFY_EVENTS = frozenset({"on-complete", "on-success", "on-failure"})
NOTIFY_FIELDS = frozenset({"message", "data", "routes", "channels"})
RULE_ACTION_FIELDS = frozenset({"ref", "description", "parameters"})


@dataclass(frozen=True)
class ActionSpec:
    """An action definition ready to be registered."""

    pack: str
    name: str
    runner_type: str
    description: str | None = None
    enabled: bool = True
    entry_point: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    notify: dict[str, Any] = field(default_factory=dict)
    metadata_file: str | None = None

    @property
    def ref(self) -> str:
        """Return ``pack.name``."""
        return f"{self.pack}.{self.name}"


@dataclass(frozen=True)
class TriggerTypeSpec:
    """A trigger type from ``triggers/`` or a sensor's ``trigger_types``."""

    pack: str
    name: str
    description: str | None = None
    payload_schema: dict[str, Any] = field(default_factory=dict)
    parameters_schema: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    metadata_file: str | None = None

    @property
    def ref(self) -> str:
        """Return ``pack.name``."""
        return f"{self.pack}.{self.name}"


# StackStorm's sensor schema. StackStorm does not validate sensor files against it, so other
# fields are registered with a warning naming them rather than refused.
SENSOR_FIELDS = _COMMON_FIELDS | {
    "class_name",
    "description",
    "artifact_uri",
    "entry_point",
    "enabled",
    "trigger_types",
    "poll_interval",
}


@dataclass(frozen=True)
class SensorSpec:
    """A sensor and the trigger types it emits."""

    pack: str
    class_name: str
    entry_point: str
    artifact_uri: str
    description: str | None = None
    poll_interval: int | None = None
    enabled: bool = True
    trigger_types: list[TriggerTypeSpec] = field(default_factory=list)
    metadata_file: str | None = None
    ignored_fields: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """Return ``pack.class_name``."""
        return f"{self.pack}.{self.class_name}"


@dataclass(frozen=True)
class RuleSpec:
    """A rule as written; the trigger is resolved to a Trigger when it is registered."""

    pack: str
    name: str
    trigger_type: str
    action_ref: str
    description: str | None = None
    enabled: bool = False
    trigger_parameters: dict[str, Any] = field(default_factory=dict)
    criteria: dict[str, Any] = field(default_factory=dict)
    action_parameters: dict[str, Any] = field(default_factory=dict)
    type: dict[str, Any] = field(default_factory=lambda: {"ref": "standard", "parameters": {}})
    context: dict[str, Any] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    metadata_file: str | None = None

    @property
    def ref(self) -> str:
        """Return ``pack.name``."""
        return f"{self.pack}.{self.name}"


@dataclass(frozen=True)
class PolicySpec:
    """A policy applied to one action."""

    pack: str
    name: str
    resource_ref: str
    policy_type: str
    description: str | None = None
    enabled: bool = True
    parameters: dict[str, Any] = field(default_factory=dict)
    metadata_file: str | None = None

    @property
    def ref(self) -> str:
        """Return ``pack.name``."""
        return f"{self.pack}.{self.name}"


@dataclass(frozen=True)
class AliasSpec:
    """An action alias: the commands that run ``action_ref``, and what chat adapters show."""

    pack: str
    name: str
    action_ref: str
    description: str | None = None
    enabled: bool = True
    formats: list[Any] = field(default_factory=list)
    ack: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    immutable_parameters: dict[str, Any] = field(default_factory=dict)
    metadata_file: str | None = None

    @property
    def ref(self) -> str:
        """Return ``pack.name``."""
        return f"{self.pack}.{self.name}"


def _document(pack: PackSpec, path: Path, allowed: frozenset[str] | None) -> Fields:
    fields = Fields(read_metadata(path))
    try:
        if allowed is not None:
            fields.only(allowed)
        declared = fields.optional_string("pack")
        if declared and declared != pack.ref:
            raise FieldError("pack", f'is "{declared}" but the file is in pack "{pack.ref}"')
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None
    return fields


def load_action(pack: PackSpec, path: Path) -> ActionSpec:
    """Read one ``actions/*.yaml``."""
    fields = _document(pack, path, ACTION_FIELDS)
    try:
        output_schema = fields.mapping("output_schema")
        if output_schema:
            check_schema(output_schema, "output_schema")
        return ActionSpec(
            pack=pack.ref,
            name=fields.required_string("name"),
            runner_type=fields.required_string("runner_type"),
            description=fields.optional_string("description"),
            enabled=fields.boolean("enabled", True),
            entry_point=fields.optional_string("entry_point") or "",
            parameters=check_parameters(fields.document.get("parameters")),
            output_schema=output_schema,
            tags=fields.mapping_list("tags"),
            notify=check_notify(fields.nested("notify")),
            metadata_file=pack.relative(path),
        )
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None


def check_notify(fields: Fields) -> dict[str, Any]:
    """Check ``notify`` settings (StackStorm's schema) and return them."""
    fields.only(NOTIFY_EVENTS)
    for event in fields.document:
        settings = fields.nested(event)
        settings.only(NOTIFY_FIELDS)
        settings.optional_string("message")
        settings.mapping("data")
        settings.string_list("routes")
        settings.string_list("channels")
    return dict(fields.document)


def load_trigger_type(pack: PackSpec, path: Path) -> TriggerTypeSpec:
    """Read one ``triggers/*.yaml``."""
    fields = _document(pack, path, TRIGGER_TYPE_FIELDS)
    try:
        return _trigger_type(fields, pack, pack.relative(path))
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None


def _trigger_type(fields: Fields, pack: PackSpec, metadata_file: str) -> TriggerTypeSpec:
    schemas = {}
    for name in ("payload_schema", "parameters_schema"):
        schemas[name] = fields.mapping(name)
        if schemas[name]:
            check_schema(schemas[name], fields.where(name))
    return TriggerTypeSpec(
        pack=pack.ref,
        name=fields.required_string("name"),
        description=fields.optional_string("description"),
        payload_schema=schemas["payload_schema"],
        parameters_schema=schemas["parameters_schema"],
        tags=fields.mapping_list("tags"),
        metadata_file=metadata_file,
    )


def load_sensor(pack: PackSpec, path: Path) -> SensorSpec:
    """Read one ``sensors/*.yaml``; its ``trigger_types`` belong to the pack.

    StackStorm does not check sensor files against its schema: fields outside it are kept in
    ``ignored_fields`` for a warning, not refused.
    """
    fields = _document(pack, path, None)
    metadata_file = pack.relative(path)
    try:
        class_name = fields.required_string("class_name")
        entry_point = fields.required_string("entry_point")
        poll_interval = fields.number("poll_interval")
        if poll_interval is not None and poll_interval < MINIMUM_POLL_INTERVAL:
            raise FieldError("poll_interval", f"must be at least {MINIMUM_POLL_INTERVAL} seconds")
        trigger_types = []
        for index, document in enumerate(fields.mapping_list("trigger_types")):
            item = Fields(document, f"trigger_types.{index}")
            item.only(TRIGGER_TYPE_FIELDS)
            trigger_types.append(_trigger_type(item, pack, metadata_file))
        description = fields.optional_string("description")
        enabled = fields.boolean("enabled", True)
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None
    module_file = (path.parent / entry_point).resolve()
    return SensorSpec(
        pack=pack.ref,
        class_name=class_name,
        entry_point=_sensor_entry_point(pack, module_file, class_name),
        artifact_uri=f"file://{module_file}",
        description=description,
        poll_interval=None if poll_interval is None else int(poll_interval),
        enabled=enabled,
        trigger_types=trigger_types,
        metadata_file=metadata_file,
        ignored_fields=tuple(
            sorted(str(key) for key in fields.document if key not in SENSOR_FIELDS)
        ),
    )


def _sensor_entry_point(pack: PackSpec, module_file: Path, class_name: str) -> str:
    """``sensors/metrics.py`` with class ``MetricSensor`` is ``sensors.metrics.MetricSensor``."""
    try:
        module = module_file.relative_to(pack.path).with_suffix("")
    except ValueError:
        return class_name
    return ".".join((*module.parts, class_name))


def load_rule(pack: PackSpec, path: Path) -> RuleSpec:
    """Read one ``rules/*.yaml``; ``enabled`` omitted means disabled, as in StackStorm."""
    fields = _document(pack, path, RULE_FIELDS)
    try:
        trigger = fields.nested("trigger", required=True)
        action = fields.nested("action", required=True)
        action.only(RULE_ACTION_FIELDS)
        rule_type = fields.nested("type")
        rule_type.only({"ref", "parameters"})
        criteria = fields.mapping("criteria")
        for key in criteria:
            fields.nested("criteria").mapping(key)
        return RuleSpec(
            pack=pack.ref,
            name=fields.required_string("name"),
            trigger_type=trigger.required_string("type"),
            action_ref=action.required_string("ref"),
            description=fields.optional_string("description"),
            enabled=fields.boolean("enabled", False),
            trigger_parameters=trigger.mapping("parameters"),
            criteria=criteria,
            action_parameters=action.mapping("parameters"),
            type={
                "ref": rule_type.optional_string("ref") or "standard",
                "parameters": rule_type.mapping("parameters"),
            },
            context=fields.mapping("context"),
            tags=fields.mapping_list("tags"),
            metadata_file=pack.relative(path),
        )
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None


def load_policy(pack: PackSpec, path: Path) -> PolicySpec:
    """Read one ``policies/*.yaml``."""
    fields = _document(pack, path, POLICY_FIELDS)
    try:
        return policy_spec(fields, pack.ref, pack.relative(path))
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None


def load_alias(pack: PackSpec, path: Path) -> AliasSpec:
    """Read one ``aliases/*.yaml``."""
    fields = _document(pack, path, ALIAS_FIELDS)
    try:
        return alias_spec(fields, pack=pack.ref, metadata_file=pack.relative(path))
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None


def alias_spec(fields: Fields, *, pack: str, metadata_file: str | None) -> AliasSpec:
    """Check the fields of an alias document (file or API body) against StackStorm's schema."""
    ack = fields.nested("ack")
    ack.only(ALIAS_ACK_FIELDS)
    result = fields.nested("result")
    result.only(ALIAS_RESULT_FIELDS)
    for part in (ack, result):
        part.boolean("enabled", True)
        part.optional_string("format")
        part.mapping("extra")
    ack.boolean("append_url", True)
    return AliasSpec(
        pack=pack,
        name=fields.required_string("name"),
        action_ref=fields.required_string("action_ref"),
        description=fields.optional_string("description"),
        enabled=fields.boolean("enabled", True),
        formats=_alias_formats(fields),
        ack=dict(ack.document),
        result=dict(result.document),
        extra=fields.mapping("extra"),
        immutable_parameters=fields.mapping("immutable_parameters"),
        metadata_file=metadata_file,
    )


def _alias_formats(fields: Fields) -> list[Any]:
    """A format is a string, or ``display`` with a list of ``representation`` strings."""
    formats = fields.array("formats")
    for index, entry in enumerate(formats):
        if isinstance(entry, str):
            continue
        where = f"{fields.where('formats')}.{index}"
        if not isinstance(entry, dict):
            raise FieldError(where, f"must be a string or a mapping, not {type_name(entry)}")
        item = Fields(entry, where)
        item.only(ALIAS_FORMAT_FIELDS)
        item.optional_string("display")
        item.boolean("match_multiple", False)
        if not isinstance(entry.get("representation"), str):
            item.string_list("representation")
    return formats


def policy_spec(fields: Fields, pack: str, metadata_file: str | None) -> PolicySpec:
    """A policy of ``pack`` from its fields (a metadata file's, or an API request's)."""
    return PolicySpec(
        pack=pack,
        name=fields.required_string("name"),
        resource_ref=fields.required_string("resource_ref"),
        policy_type=fields.required_string("policy_type"),
        description=fields.optional_string("description"),
        enabled=fields.boolean("enabled", True),
        parameters=fields.mapping("parameters"),
        metadata_file=metadata_file,
    )
