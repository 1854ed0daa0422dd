"""Registering pack content from disk into the database (``st2ctl reload``).

The order is StackStorm's: packs themselves (with their config schemas), then triggers,
sensors, runners, actions, rules, action aliases, policies and configs. Every resource is
upserted by ref, so a second registration keeps ids and writes nothing when nothing changed. A
file that cannot be registered is reported by name, with the field at fault, and the rest carry
on; the caller decides whether failures are fatal. Functions flush; the caller commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from poundcake.db.queries import upsert_by_key
from poundcake.engine.actions.service import register_action
from poundcake.engine.aliases.service import format_problems, register_alias
from poundcake.engine.packs.errors import FieldError, MetadataError
from poundcake.engine.packs.loader import (
    CONFIG_SCHEMA_FILE,
    MANIFEST_FILE,
    ContentType,
    PackSpec,
    config_path,
    content_files,
    discover_packs,
    load_config,
    load_config_schema,
)
from poundcake.engine.packs.locations import ContentLocations
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.packs.pruning import prune_stale_content
from poundcake.engine.packs.resources import (
    SensorSpec,
    load_action,
    load_alias,
    load_policy,
    load_rule,
    load_sensor,
    load_trigger_type,
)
from poundcake.engine.policies.service import register_policy, register_policy_types
from poundcake.engine.rbac.uids import content_uid, pack_uid
from poundcake.engine.rules.service import register_rule
from poundcake.engine.runners.registry import RUNNERS_DIR
from poundcake.engine.runners.service import register_runner_types
from poundcake.engine.sensors.models import SensorTypeDB
from poundcake.engine.triggers.service import register_builtin_trigger_types, upsert_trigger_type
from poundcake.engine.workflows.registration import (
    ORQUESTA,
    WorkflowRefusedError,
    check_workflow,
    content_warnings,
    workflow_path,
)
from poundcake.exceptions import NotFoundError, ValidationError

logger = logging.getLogger(__name__)

REGISTRATION_ORDER = (
    ContentType.TRIGGERS,
    ContentType.SENSORS,
    ContentType.RUNNERS,
    ContentType.ACTIONS,
    ContentType.RULES,
    ContentType.ALIASES,
    ContentType.POLICIES,
    ContentType.CONFIGS,
)
PACKS_COUNT = "packs"
POLICY_TYPES_COUNT = "policy types"


@dataclass
class RegistrationReport:
    """What one registration did: counts per kind (in order), the packs seen, what failed, and
    what registered but will fail when it runs as things stand (warnings)."""

    counts: dict[str, int] = field(default_factory=dict)
    packs: list[str] = field(default_factory=list)
    failures: list[MetadataError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether everything registered."""
        return not self.failures

    def add(self, kind: str, count: int = 1) -> None:
        """Count ``count`` more registered resources of ``kind``."""
        self.counts[kind] = self.counts.get(kind, 0) + count

    def attempt(self, path: Path, register: Callable[[], object]) -> bool:
        """Run ``register``; record its failure to register ``path`` instead of raising it."""
        try:
            register()
        except MetadataError as error:
            self.record_failure(error)
        except FieldError as error:
            self.record_failure(MetadataError.from_field_error(path, error))
        except ValidationError as error:
            self.record_failure(MetadataError(path, None, str(error)))
        else:
            return True
        return False

    def record_failure(self, error: MetadataError) -> None:
        """Add a failure to the report."""
        logger.info("Failed to register %s", error)
        self.failures.append(error)


# --- packs, config schemas, configs --------------------------------------------------------


def register_pack(*, session: Session, spec: PackSpec) -> PackDB:
    """Create or update a pack by ref (an existing one keeps its id)."""
    values: dict[str, Any] = {
        "uid": pack_uid(spec.ref),
        "name": spec.name,
        "description": spec.description,
        "keywords": spec.keywords,
        "version": spec.version,
        "stackstorm_version": spec.stackstorm_version,
        "python_versions": spec.python_versions,
        "author": spec.author,
        "email": spec.email,
        "contributors": spec.contributors,
        "files": spec.files,
        "path": str(spec.path),
        "dependencies": spec.dependencies,
        "system": spec.system,
    }
    pack = upsert_by_key(session, PackDB, ("ref", spec.ref), values)
    logger.debug("Registered pack %s from %s", spec.ref, spec.path)
    return pack


def register_config_schema(
    *, session: Session, pack: str, attributes: dict[str, Any]
) -> ConfigSchemaDB:
    """Create or update the config schema of ``pack``."""
    return upsert_by_key(session, ConfigSchemaDB, ("pack", pack), {"attributes": attributes})


def register_config(*, session: Session, pack: str, values: dict[str, Any]) -> ConfigDB:
    """Create or update the config values of ``pack``."""
    row = upsert_by_key(session, ConfigDB, ("pack", pack), {"values": values})
    logger.debug("Registered config of pack %s", pack)
    return row


def register_sensor(*, session: Session, spec: SensorSpec) -> SensorTypeDB:
    """Register a sensor's trigger types, then the sensor itself, by ref."""
    trigger_types = [
        upsert_trigger_type(session=session, spec=trigger_type).ref
        for trigger_type in spec.trigger_types
    ]
    values: dict[str, Any] = {
        "uid": content_uid("sensor_type", spec.pack, spec.class_name),
        "name": spec.class_name,
        "pack": spec.pack,
        "description": spec.description,
        "class_name": spec.class_name,
        "entry_point": spec.entry_point,
        "artifact_uri": spec.artifact_uri,
        "poll_interval": spec.poll_interval,
        "trigger_types": trigger_types,
        "enabled": spec.enabled,
        "metadata_file": spec.metadata_file,
    }
    sensor = upsert_by_key(session, SensorTypeDB, ("ref", spec.ref), values)
    logger.debug("Registered sensor %s", spec.ref)
    return sensor


# --- one registration ----------------------------------------------------------------------


@dataclass
class _Run:
    session: Session
    locations: ContentLocations
    system_user: str
    packs: list[PackSpec]
    report: RegistrationReport
    config_schemas: dict[str, dict[str, Any] | None] = field(default_factory=dict)

    def each_file(
        self, content_type: ContentType, register: Callable[[PackSpec, Path], None]
    ) -> int:
        """Register every metadata file of one kind in every pack; return how many succeeded."""
        registered = 0
        for pack in self.packs:
            for path in content_files(pack, content_type):
                if self.report.attempt(path, partial(register, pack, path)):
                    registered += 1
        return registered


def _register_packs(run: _Run) -> None:
    for pack in run.packs:
        register_pack(session=run.session, spec=pack)
        run.report.warnings.extend(
            f"{pack.path / MANIFEST_FILE}: {name}: is not a StackStorm pack field; ignored"
            for name in pack.ignored_fields
        )
        run.config_schemas[pack.ref] = None
        run.report.attempt(pack.path / CONFIG_SCHEMA_FILE, partial(_schema, run, pack))
    run.report.add(PACKS_COUNT, len(run.packs))


def _schema(run: _Run, pack: PackSpec) -> None:
    attributes = load_config_schema(pack)
    if attributes is not None:
        register_config_schema(session=run.session, pack=pack.ref, attributes=attributes)
        run.config_schemas[pack.ref] = attributes


def _triggers(run: _Run) -> None:
    def register(pack: PackSpec, path: Path) -> None:
        upsert_trigger_type(session=run.session, spec=load_trigger_type(pack, path))

    run.report.add(ContentType.TRIGGERS.value, run.each_file(ContentType.TRIGGERS, register))


def _sensors(run: _Run) -> None:
    def register(pack: PackSpec, path: Path) -> None:
        spec = load_sensor(pack, path)
        register_sensor(session=run.session, spec=spec)
        run.report.warnings.extend(
            f"{path}: {name}: is not a StackStorm sensor field; ignored"
            for name in spec.ignored_fields
        )

    run.report.add(ContentType.SENSORS.value, run.each_file(ContentType.SENSORS, register))


def _runners(run: _Run) -> None:
    def register() -> None:
        try:
            count = register_runner_types(session=run.session)
        except (yaml.YAMLError, OSError) as error:
            raise MetadataError(
                RUNNERS_DIR, None, f"a runner.yaml cannot be read ({error})"
            ) from None
        run.report.add(ContentType.RUNNERS.value, count)

    run.report.add(ContentType.RUNNERS.value, 0)
    run.report.attempt(RUNNERS_DIR, register)


def _actions(run: _Run) -> None:
    workflows: list[tuple[Path, dict[str, Any]]] = []

    def register(pack: PackSpec, path: Path) -> None:
        spec = load_action(pack, path)
        if spec.runner_type == ORQUESTA:
            if not spec.entry_point:
                raise MetadataError(path, "entry_point", "an orquesta action names its workflow")
            try:
                document = check_workflow(workflow_path(pack.path, spec.entry_point))
            except WorkflowRefusedError as refused:
                if run.locations.refuse_failing_workflows or refused.document is None:
                    raise MetadataError(path, "entry_point", str(refused)) from None
                run.report.warnings.append(f"{path}: entry_point: {refused}")
                register_action(session=run.session, spec=spec)
                return
            workflows.append((path, document))
        register_action(session=run.session, spec=spec)

    run.report.add(ContentType.ACTIONS.value, run.each_file(ContentType.ACTIONS, register))
    for path, document in workflows:
        for warning in content_warnings(run.session, document):
            run.report.warnings.append(f"{path}: {warning}")


def _rules(run: _Run) -> None:
    def register(pack: PackSpec, path: Path) -> None:
        spec = load_rule(pack, path)
        register_rule(session=run.session, spec=spec, system_user=run.system_user)

    run.report.add(ContentType.RULES.value, run.each_file(ContentType.RULES, register))


def _aliases(run: _Run) -> None:
    def register(pack: PackSpec, path: Path) -> None:
        spec = load_alias(pack, path)
        register_alias(session=run.session, spec=spec)
        run.report.warnings.extend(
            f"{path}: {problem}" for problem in format_problems(spec.formats)
        )

    run.report.add(ContentType.ALIASES.value, run.each_file(ContentType.ALIASES, register))


def _policies(run: _Run) -> None:
    run.report.add(POLICY_TYPES_COUNT, register_policy_types(session=run.session))

    def register(pack: PackSpec, path: Path) -> None:
        register_policy(session=run.session, spec=load_policy(pack, path))

    run.report.add(ContentType.POLICIES.value, run.each_file(ContentType.POLICIES, register))


def _configs(run: _Run) -> None:
    def register(pack: PackSpec, path: Path) -> None:
        schema_file = pack.path / CONFIG_SCHEMA_FILE
        if run.config_schemas.get(pack.ref) is None and schema_file.is_file():
            raise MetadataError(path, None, f"not registered: {schema_file} is invalid")
        values = load_config(path, run.config_schemas.get(pack.ref))
        register_config(session=run.session, pack=pack.ref, values=values)

    run.report.add(ContentType.CONFIGS.value, 0)
    for pack in run.packs:
        path = config_path(run.locations.configs_dir, pack)
        if path.is_file() and run.report.attempt(path, partial(register, pack, path)):
            run.report.add(ContentType.CONFIGS.value)


_REGISTRARS: dict[ContentType, Callable[[_Run], None]] = {
    ContentType.TRIGGERS: _triggers,
    ContentType.SENSORS: _sensors,
    ContentType.RUNNERS: _runners,
    ContentType.ACTIONS: _actions,
    ContentType.RULES: _rules,
    ContentType.ALIASES: _aliases,
    ContentType.POLICIES: _policies,
    ContentType.CONFIGS: _configs,
}


def register_content(
    *,
    session: Session,
    locations: ContentLocations,
    types: Collection[ContentType] = REGISTRATION_ORDER,
    system_user: str = "stanley",
    only_packs: Collection[str] | None = None,
) -> RegistrationReport:
    """Register the packs found on disk and the chosen kinds of their content.

    ``only_packs`` limits the registration to those pack refs (NotFoundError if one is not on
    disk). Failures are in the report; nothing that failed was written.
    """
    report = RegistrationReport()
    packs, failures = discover_packs(locations.search_paths, locations.system_packs_path)
    for failure in failures:
        report.record_failure(failure)
    if only_packs is not None:
        found = {pack.ref for pack in packs}
        missing = sorted(set(only_packs) - found)
        if missing:
            searched = ", ".join(str(path) for path in locations.search_paths)
            raise NotFoundError(f'Pack "{missing[0]}" not found on disk: searched {searched}')
        packs = [pack for pack in packs if pack.ref in only_packs]
    report.packs = [pack.ref for pack in packs]
    run = _Run(session, locations, system_user, packs, report)
    _register_packs(run)
    register_builtin_trigger_types(session=session)
    for content_type in REGISTRATION_ORDER:
        if content_type in types:
            _REGISTRARS[content_type](run)
    for pack in packs:
        prune_stale_content(session=session, pack=pack, types=types)
    return report
