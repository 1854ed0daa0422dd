"""Removing installed packs: their registered content, then their directory.

Unregistering deletes what registration made from the pack (rules, releasing their triggers,
policies, sensors, actions, trigger types with their triggers and webhooks, config schema,
config, the pack itself); past executions stay. The pack's directory is deleted only when it
sits directly in a ``[content] packs_base_paths`` directory, never elsewhere; the config file in
the configs directory is kept, as StackStorm keeps it. System packs cannot be removed. Removing
a user's pack that replaced a bundled pack of the same name (``linux``) registers the bundled
one again.
Functions flush; the caller commits.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.aliases.models import ActionAliasDB
from poundcake.engine.packs.install import PACKS_SETTING, PackOperationReport
from poundcake.engine.packs.loader import MANIFEST_FILE, SYSTEM_PACK_REFS, load_pack
from poundcake.engine.packs.locations import ContentLocations
from poundcake.engine.packs.models import ConfigDB, ConfigSchemaDB, PackDB
from poundcake.engine.packs.service import register_content
from poundcake.engine.packs.virtualenvs import remove_virtualenv
from poundcake.engine.policies.models import PolicyDB
from poundcake.engine.rules.models import RuleDB
from poundcake.engine.sensors.models import SensorTypeDB
from poundcake.engine.triggers.models import TriggerDB, TriggerTypeDB
from poundcake.engine.triggers.service import release_trigger
from poundcake.engine.webhooks.models import WebhookDB
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)


def unregister_pack(*, session: Session, pack: str) -> None:
    """Delete everything registered from ``pack``, and the pack."""
    for rule in session.scalars(sa.select(RuleDB).where(RuleDB.pack == pack)):
        release_trigger(session=session, ref=rule.trigger)
        session.delete(rule)
    session.execute(sa.delete(PolicyDB).where(PolicyDB.pack == pack))
    session.execute(sa.delete(ActionAliasDB).where(ActionAliasDB.pack == pack))
    session.execute(sa.delete(SensorTypeDB).where(SensorTypeDB.pack == pack))
    session.execute(sa.delete(ActionDB).where(ActionDB.pack == pack))
    type_refs = list(
        session.scalars(sa.select(TriggerTypeDB.ref).where(TriggerTypeDB.pack == pack))
    )
    owned = sa.or_(TriggerDB.pack == pack, TriggerDB.type.in_(type_refs))
    trigger_refs = list(session.scalars(sa.select(TriggerDB.ref).where(owned)))
    if trigger_refs:
        session.execute(sa.delete(WebhookDB).where(WebhookDB.trigger.in_(trigger_refs)))
    session.execute(sa.delete(TriggerDB).where(owned))
    session.execute(sa.delete(TriggerTypeDB).where(TriggerTypeDB.pack == pack))
    session.execute(sa.delete(ConfigSchemaDB).where(ConfigSchemaDB.pack == pack))
    session.execute(sa.delete(ConfigDB).where(ConfigDB.pack == pack))
    session.execute(sa.delete(PackDB).where(PackDB.ref == pack))
    session.flush()


def _on_disk(locations: ContentLocations, pack: str) -> Path | None:
    """Find an unregistered pack's directory in the packs base paths."""
    for base in locations.packs_base_paths:
        if not base.is_dir():
            continue
        for folder in sorted(base.iterdir()):
            if not (folder / MANIFEST_FILE).is_file():
                continue
            try:
                if load_pack(folder).ref == pack:
                    return folder
            except ValidationError:
                continue
    return None


def removable_directory(locations: ContentLocations, folder: Path) -> Path:
    """Return ``folder`` if it sits directly in a packs base path; refuse any other."""
    resolved = folder.resolve()
    bases = {base.expanduser().resolve() for base in locations.packs_base_paths}
    if resolved.parent not in bases:
        raise ValidationError(
            f"Refusing to delete {resolved}: it is not a pack directory in {PACKS_SETTING}."
        )
    return resolved


def check_uninstall(packs: Sequence[str]) -> None:
    """Refuse an empty request and the system packs."""
    if not packs:
        raise ValidationError("Name at least one pack to remove.")
    system = sorted(set(packs) & SYSTEM_PACK_REFS)
    if system:
        raise ValidationError(f'Pack "{system[0]}" is a system pack and cannot be removed.')


def uninstall_packs(
    *,
    session: Session,
    locations: ContentLocations,
    packs: Sequence[str],
    virtualenvs: Path | None = None,
) -> PackOperationReport:
    """Unregister ``packs`` and delete their directories (and their virtualenvs in
    ``virtualenvs``, if given, as StackStorm does)."""
    check_uninstall(packs)
    report = PackOperationReport()
    for pack in dict.fromkeys(packs):
        row = session.execute(sa.select(PackDB.path).where(PackDB.ref == pack)).first()
        registered_path = row.path if row is not None else None
        folder = Path(registered_path) if registered_path else _on_disk(locations, pack)
        directory = removable_directory(locations, folder) if folder and folder.exists() else None
        if row is None and directory is None:
            report.warning_list.append(f'Pack "{pack}" is not installed.')
            continue
        unregister_pack(session=session, pack=pack)
        if directory is not None:
            shutil.rmtree(directory)
        if virtualenvs is not None:
            remove_virtualenv(virtualenvs, pack)
        report.packs_list.append(pack)
        logger.info("Removed pack %s", pack)
        _restore_bundled(session, locations, pack, report)
    return report


def _restore_bundled(
    session: Session, locations: ContentLocations, pack: str, report: PackOperationReport
) -> None:
    """Register the bundled pack a removed user's pack of the same name had replaced."""
    bundled = (locations.system_packs_path / pack).resolve()
    if not (bundled / MANIFEST_FILE).is_file():
        return
    restored = register_content(session=session, locations=locations, only_packs=[pack])
    for failure in restored.failures:
        if Path(failure.path).resolve().is_relative_to(bundled):
            report.warning_list.append(f"The bundled pack {pack} did not register again: {failure}")
    logger.info("Registered the bundled pack %s from %s again", pack, bundled)
