"""``/v1/timers``: the timer triggers (interval, date, cron), as ``st2 timer list`` and ``get``
read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from poundcake.engine.api.dependencies import Db, Rbac
from poundcake.engine.rbac.resources import timer_resource
from poundcake.engine.timers.service import get_timer, list_timers
from poundcake.engine.triggers.documents import trigger_document

router = APIRouter(tags=["timers"])


@router.get("/timers")
def list_all(
    rbac: Rbac,
    session: Db,
    timer_type: Annotated[str | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Timer triggers, of one ``timer_type`` (a timer trigger type ref) if asked."""
    rbac.require("timer_list")
    return [trigger_document(row) for row in list_timers(session=session, timer_type=timer_type)]


@router.get("/timers/{ref_or_id}")
def get_one(ref_or_id: str, rbac: Rbac, session: Db) -> dict[str, Any]:
    """One timer trigger."""
    timer = get_timer(session=session, ref_or_id=ref_or_id)
    rbac.require_on(timer_resource(timer.pack, timer.name), "timer_view")
    return trigger_document(timer)
