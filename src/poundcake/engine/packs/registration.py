"""``POST /v1/packs/register``: StackStorm's content types and counts on top of registration.

The API names content the way ``st2 pack register --types`` does (``action`` or ``actions``,
``rule_type``, ``alias``, ``all`` ...). Registering actions also registers runners and rules
also count the rule types, as in StackStorm. Any file of the chosen packs that fails to
register fails the request, StackStorm's default, and the caller's transaction is then rolled
back.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.packs.errors import MetadataError
from poundcake.engine.packs.loader import ContentType
from poundcake.engine.packs.locations import ContentLocations
from poundcake.engine.packs.models import PackDB
from poundcake.engine.packs.service import POLICY_TYPES_COUNT, register_content
from poundcake.engine.policies.service import register_policy_types
from poundcake.engine.rules.service import RULE_TYPES
from poundcake.engine.runners.registry import RUNNERS_DIR
from poundcake.exceptions import NotFoundError, ValidationError

# StackStorm's content types, singular -> the plural the response counts them under, in the
# order of StackStorm's response.
CONTENT_TYPES = {
    "runner": "runners",
    "action": "actions",
    "trigger": "triggers",
    "sensor": "sensors",
    "rule": "rules",
    "rule_type": "rule_types",
    "policy_type": "policy_types",
    "alias": "aliases",
    "policy": "policies",
    "config": "configs",
}
ALL_TYPES = "all"
_REGISTERED_BY = {
    "runners": ContentType.RUNNERS,
    "actions": ContentType.ACTIONS,
    "triggers": ContentType.TRIGGERS,
    "sensors": ContentType.SENSORS,
    "rules": ContentType.RULES,
    "aliases": ContentType.ALIASES,
    "policies": ContentType.POLICIES,
    "configs": ContentType.CONFIGS,
}
# What else a kind brings along: actions need runners, rules their types, policies theirs.
_IMPLIED = {"actions": ("runners",), "rules": ("rule_types",), "policies": ("policy_types",)}

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegistrationPlan:
    """The kinds to count, in response order, and the content types to register."""

    counted: tuple[str, ...]
    content_types: frozenset[ContentType]


def plan_registration(types: Iterable[str] | None) -> RegistrationPlan:
    """Turn ``--types`` into a plan; none or ``all`` means everything."""
    requested = [str(name).strip().lower() for name in types or ()]
    if not requested or ALL_TYPES in requested:
        chosen = set(CONTENT_TYPES.values())
    else:
        chosen = set()
        plurals = set(CONTENT_TYPES.values())
        for name in requested:
            plural = CONTENT_TYPES.get(name, name)
            if plural not in plurals:
                valid = ", ".join([ALL_TYPES, *CONTENT_TYPES])
                raise ValidationError(f'Invalid content type "{name}"; valid types are: {valid}.')
            chosen.add(plural)
    for kind in list(chosen):
        chosen.update(_IMPLIED.get(kind, ()))
    counted = tuple(plural for plural in CONTENT_TYPES.values() if plural in chosen)
    content_types = frozenset(_REGISTERED_BY[kind] for kind in counted if kind in _REGISTERED_BY)
    return RegistrationPlan(counted, content_types)


def _within(path: str, directories: Collection[Path]) -> bool:
    candidate = Path(path).resolve()
    return any(candidate == folder or folder in candidate.parents for folder in directories)


def _relevant_failures(
    session: Session,
    failures: list[MetadataError],
    packs: list[str] | None,
    configs_dir: Path,
) -> list[MetadataError]:
    """All failures, or with named packs only those in their directories, their config files
    and the runners."""
    if packs is None:
        return failures
    paths = session.scalars(sa.select(PackDB.path).where(PackDB.ref.in_(packs)))
    folders = {Path(path).resolve() for path in paths if path} | {RUNNERS_DIR.resolve()}
    configs = {(configs_dir / f"{pack}.yaml").resolve() for pack in packs}
    return [
        failure
        for failure in failures
        if _within(failure.path, folders) or Path(failure.path).resolve() in configs
    ]


def register_packs(
    *,
    session: Session,
    locations: ContentLocations,
    packs: list[str] | None,
    types: Iterable[str] | None,
    system_user: str,
    warnings: list[str] | None = None,
) -> dict[str, int]:
    """Register ``packs`` (every pack on disk when None); return StackStorm's count per kind.

    What registered but will fail when it runs (a workflow task naming an action that is not
    registered) is logged, and added to ``warnings`` when given.
    """
    plan = plan_registration(types)
    wanted = sorted(set(packs)) if packs else None
    try:
        report = register_content(
            session=session,
            locations=locations,
            types=plan.content_types,
            system_user=system_user,
            only_packs=wanted,
        )
    except NotFoundError as error:
        raise ValidationError(str(error)) from None
    for warning in report.warnings:
        logger.warning("Registered with a problem: %s", warning)
    if warnings is not None:
        warnings.extend(report.warnings)
    failures = _relevant_failures(session, report.failures, wanted, locations.configs_dir)
    if failures:
        raise ValidationError("Failed to register: " + "; ".join(str(f) for f in failures))
    counts = dict(report.counts)
    if "policy_types" in plan.counted and POLICY_TYPES_COUNT not in counts:
        counts[POLICY_TYPES_COUNT] = register_policy_types(session=session)
    counts["policy_types"] = counts.pop(POLICY_TYPES_COUNT, 0)
    counts["rule_types"] = len(RULE_TYPES)
    return {kind: counts.get(kind, 0) for kind in plan.counted}
