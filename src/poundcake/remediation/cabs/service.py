"""Applying CABs: validate them all, write the ``poundcake_cabs`` pack, register it, link rows.

``apply_cabs`` is all or nothing on validation: one CAB that does not validate (unknown action,
bad regex, broken template, an undeclared parameter) refuses the whole set with every problem
named, and nothing is written. Then the pack directory is made to hold exactly these CABs, the
engine registers it (``POST /v1/packs/register``), rules and actions of CABs that are gone are
deleted from the engine, and each CAB's rule gets its ``poundcake_st2_rule_extensions`` row and
its workflow action its ``poundcake_st2_action_extensions`` row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import PoundCakeConfig, find_st2_config, load_st2_config
from poundcake.db.queries import upsert_by_key
from poundcake.db.session import unit_of_work
from poundcake.engine.public import content_locations
from poundcake.remediation.cabs.definition import (
    Cab,
    CabError,
    load_cab_directory,
    parse_cab,
)
from poundcake.remediation.cabs.models import ActionExtension, RuleExtension
from poundcake.remediation.cabs.pack import PACK, rule_ref, write_pack
from poundcake.remediation.cabs.run_safety import ESCALATE, RunSafety
from poundcake.remediation.cabs.validation import ActionLookup, validate_cab

logger = logging.getLogger(__name__)

CAB_ACTION_TYPE = "cab_workflow"


class CabEngineApi(ActionLookup, Protocol):
    """What applying CABs needs from the engine's API."""

    def register_pack(self, pack: str) -> dict[str, Any]: ...

    def get_rule(self, ref: str) -> dict[str, Any] | None: ...

    def delete_rule(self, ref: str) -> None: ...

    def delete_action(self, ref: str) -> None: ...


@dataclass
class ApplyReport:
    """What ``apply_cabs`` did."""

    applied: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def cabs_directory(config: PoundCakeConfig) -> Path:
    """Where CAB files live: ``POUNDCAKE_CABS_DIR`` or ``<data_dir>/cabs``."""
    settings = config.settings
    return settings.cabs_dir or settings.data_dir / "cabs"


def cabs_pack_directory(config: PoundCakeConfig) -> Path:
    """Where the engine pack of CABs is written: ``POUNDCAKE_CABS_PACK_DIR``, else in the first
    of the engine's ``packs_base_paths`` (st2.conf), else ``<data_dir>/packs``."""
    settings = config.settings
    if settings.cabs_pack_dir:
        return settings.cabs_pack_dir
    if find_st2_config(settings.st2_config_path) is not None:
        st2 = load_st2_config(settings.st2_config_path)
        return content_locations(st2).packs_base_paths[0] / PACK
    return settings.data_dir / "packs" / PACK


def load_cabs(directory: Path) -> list[Cab]:
    """Every CAB in ``directory``; CabError listing every file that does not load."""
    cabs, problems = load_cab_directory(directory)
    if problems:
        raise CabError("; ".join(str(problem) for problem in problems))
    return cabs


def validate_cabs(cabs: list[Cab], engine_api: ActionLookup) -> list[CabError]:
    """Every problem of every CAB against the engine (an empty list when all are good)."""
    problems: list[CabError] = []
    for cab in cabs:
        try:
            validate_cab(cab, engine_api)
        except CabError as error:
            problems.append(error)
    return problems


def _upsert_extensions(session: Session, cab: Cab, rule_id: str, action_id: str | None) -> None:
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "st2_rule_id": rule_id,
        "alert_name_pattern": cab.alert_name_pattern,
        "severity_filter": list(cab.severity_filter),
        "stop_on_first_failure": cab.stop_on_first_failure,
        "steps": [step.document() for step in cab.steps],
        "run_safety": cab.run_safety.document(),
        "guards": cab.guards.document(),
        "is_active": cab.enabled,
        "updated_at": now,
    }
    upsert_by_key(
        session, RuleExtension, ("cab_name", cab.name), values, on_insert={"created_at": now}
    )
    if action_id is None:
        return
    action_values: dict[str, Any] = {
        "action_type": CAB_ACTION_TYPE,
        "expected_result_schema": {
            step.name: step.expected_result for step in cab.steps if step.expected_result
        },
        "parameter_templates": {step.name: step.parameters for step in cab.steps},
        "timeout_seconds": sum(step.timeout_seconds or 0 for step in cab.steps) or None,
        "is_active": cab.enabled,
        "updated_at": now,
    }
    upsert_by_key(
        session,
        ActionExtension,
        ("st2_action_id", action_id),
        action_values,
        on_insert={"created_at": now},
    )


def apply_cabs(
    cabs: list[Cab],
    *,
    engine_api: CabEngineApi,
    pack_dir: Path,
    sessions: sessionmaker[Session],
    alertmanager_url: str | None,
) -> ApplyReport:
    """Make the engine hold exactly ``cabs`` (see the module docstring); ``alertmanager_url``
    is where silences are made (a CAB with ``silence: true`` is refused without it)."""
    names = [cab.name for cab in cabs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CabError(f"CAB names must be unique: {', '.join(duplicates)}")
    check_run_safety(cabs, alertmanager_url=alertmanager_url)
    problems = validate_cabs(cabs, engine_api)
    if problems:
        raise CabError("; ".join(str(problem) for problem in problems))
    changed, removed = write_pack(pack_dir, cabs)
    engine_api.register_pack(PACK)
    for name in removed:
        engine_api.delete_rule(rule_ref(name))
        engine_api.delete_action(rule_ref(name))
    with unit_of_work(sessions) as session:
        for cab in cabs:
            rule = engine_api.get_rule(rule_ref(cab.name))
            if rule is None:
                raise CabError(f'the engine did not register the rule of CAB "{cab.name}"')
            action = engine_api.get_action(rule_ref(cab.name))
            action_id = str(action["id"]) if action else None
            _upsert_extensions(session, cab, str(rule["id"]), action_id)
        if removed:
            session.execute(sa.delete(RuleExtension).where(RuleExtension.cab_name.in_(removed)))
    logger.info("Applied %d CAB(s): %d changed, %d removed", len(cabs), len(changed), len(removed))
    return ApplyReport(applied=names, changed=changed, removed=removed)


def save_cab_file(directory: Path, document: dict[str, Any]) -> Cab:
    """Validate a CAB document and write it as ``<directory>/<name>.yaml``."""
    cab = parse_cab(document)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{cab.name}.yaml"
    path.write_text(
        "---\n" + yaml.safe_dump(cab.file_document(), sort_keys=False), encoding="utf-8"
    )
    return parse_cab(cab.file_document(), source=str(path))


def delete_cab_file(directory: Path, name: str) -> bool:
    """Remove a CAB's file; tell whether there was one."""
    removed = False
    for suffix in (".yaml", ".yml"):
        path = directory / f"{name}{suffix}"
        if path.is_file():
            path.unlink()
            removed = True
    return removed


def applied_cabs(session: Session) -> list[RuleExtension]:
    """The CABs the engine holds, as their rule extensions, by name."""
    return list(session.scalars(sa.select(RuleExtension).order_by(RuleExtension.cab_name)))


def cab_run_safety(session: Session, cab_name: str | None) -> RunSafety:
    """The run safety of an applied CAB (the defaults for an unknown one or None)."""
    if cab_name is None:
        return RunSafety()
    stored = session.scalar(
        sa.select(RuleExtension.run_safety).where(RuleExtension.cab_name == cab_name)
    )
    return RunSafety.from_document(stored)


def silenced_cabs(session: Session) -> list[str]:
    """The applied CABs whose runs an Alertmanager silence covers."""
    rows = session.execute(sa.select(RuleExtension.cab_name, RuleExtension.run_safety))
    return [name for name, stored in rows if RunSafety.from_document(stored).silence]


def run_safety_problems(
    cabs: list[Cab], *, alertmanager_url: str | None, known: frozenset[str] = frozenset()
) -> list[CabError]:
    """What cannot work in these CABs' run safety with this configuration; ``known`` names
    other CABs an ``on_unverified`` may name (the files, when one document is checked)."""
    names = {cab.name for cab in cabs} | known
    problems: list[CabError] = []
    for cab in cabs:
        where = f"{cab.source}: " if cab.source else f"{cab.name}: "
        safety = cab.run_safety
        if safety.silence and alertmanager_url is None:
            problems.append(
                CabError(
                    f"{where}silence: needs POUNDCAKE_ALERTMANAGER_URL (where to create silences)"
                )
            )
        target = safety.on_unverified
        if target is not None and target != ESCALATE:
            if target == cab.name:
                problems.append(CabError(f"{where}on_unverified: cannot run the same CAB again"))
            elif target not in names:
                problems.append(CabError(f'{where}on_unverified: no CAB named "{target}"'))
    return problems


def check_run_safety(cabs: list[Cab], *, alertmanager_url: str | None) -> None:
    """Refuse run safety fields that cannot work with these CABs and this configuration."""
    problems = run_safety_problems(cabs, alertmanager_url=alertmanager_url)
    if problems:
        raise CabError("; ".join(str(problem) for problem in problems))
