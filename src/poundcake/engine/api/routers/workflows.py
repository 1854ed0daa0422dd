"""``/v1/workflows/inspect``: inspect an Orquesta workflow definition (``st2 workflow inspect``).

The body is the definition's YAML text; the answer is StackStorm's list of problems (empty when
there are none), with the content checks against what is registered now. Nothing is stored.

As in StackStorm, inspection asks no permission beyond authentication: it reads nothing but
the definition sent and the actions it names."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from poundcake.engine.api.dependencies import CurrentCaller, Db
from poundcake.engine.workflows.inspection import RUNTIME_CONTEXT_KEYS, inspect_text
from poundcake.engine.workflows.requests import action_parameter_schema

router = APIRouter(tags=["workflows"])


@router.post("/workflows/inspect")
async def inspect(request: Request, _caller: CurrentCaller, session: Db) -> list[dict[str, Any]]:
    """The problems of the workflow definition in the body."""
    text = (await request.body()).decode("utf-8", errors="replace")
    return inspect_text(
        text,
        known_context=RUNTIME_CONTEXT_KEYS,
        action_parameters=lambda ref: action_parameter_schema(session, ref),
    )
