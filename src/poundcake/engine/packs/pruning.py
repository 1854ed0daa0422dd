"""Content a pack no longer has: rows registered from metadata files that are gone from it.

When a pack is registered again from another copy (a new version, or a user's pack replacing a
bundled one of the same name), its actions, rules, policies and sensors whose metadata file the
copy does not have are deleted, so ``linux.disk_usage`` of the bundled ``linux`` does not linger
beside the user's ``linux`` actions. Only the kinds registered in that run are pruned. Trigger
types and their triggers stay (rules of other packs may use them). Functions flush; the caller
commits.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.actions.models import ActionDB
from poundcake.engine.packs.loader import ContentType, PackSpec
from poundcake.engine.policies.models import PolicyDB
from poundcake.engine.rules.models import RuleDB
from poundcake.engine.sensors.models import SensorTypeDB
from poundcake.engine.triggers.service import release_trigger

logger = logging.getLogger(__name__)

_PRUNED: dict[ContentType, type[ActionDB] | type[RuleDB] | type[PolicyDB] | type[SensorTypeDB]] = {
    ContentType.ACTIONS: ActionDB,
    ContentType.RULES: RuleDB,
    ContentType.POLICIES: PolicyDB,
    ContentType.SENSORS: SensorTypeDB,
}


def prune_stale_content(
    *, session: Session, pack: PackSpec, types: Collection[ContentType]
) -> list[str]:
    """Delete the pack's rows of ``types`` whose metadata file the pack no longer has; return
    their refs."""
    files = set(pack.files)
    pruned: list[str] = []
    for content_type, model in _PRUNED.items():
        if content_type not in types:
            continue
        rows = session.execute(
            sa.select(model.id, model.ref, model.metadata_file).where(
                model.pack == pack.ref, model.metadata_file.is_not(None)
            )
        )
        for row_id, ref, metadata_file in list(rows):
            if metadata_file in files:
                continue
            row = session.get(model, row_id)
            if isinstance(row, RuleDB):
                release_trigger(session=session, ref=row.trigger)
            session.delete(row)
            pruned.append(ref)
    if pruned:
        session.flush()
        logger.info("Pack %s no longer has %s: unregistered", pack.ref, ", ".join(pruned))
    return pruned
