"""Webhooks: ``POST /v1/webhooks/<url>`` turned into trigger instances, and the webhooks listed.

A URL is registered while a ``core.st2.webhook`` trigger has it (see
:mod:`poundcake.engine.webhooks.registry`). A request to it stores one pending instance per such
trigger, with the payload ``{headers, headers_lower, body}``; credentials never reach the payload.
``st2`` is the generic webhook: its body names any trigger and carries the payload.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from sqlalchemy.orm import Session

from poundcake.engine.packs.schema import validate
from poundcake.engine.triggers.instances import create_trigger_instance
from poundcake.engine.triggers.models import TriggerDB, TriggerInstanceDB
from poundcake.engine.triggers.service import (
    WEBHOOK_TRIGGER_TYPE,
    get_trigger,
    get_trigger_type,
    list_triggers,
)
from poundcake.engine.webhooks.registry import normalise_url, triggers_for_url
from poundcake.exceptions import NotFoundError, ValidationError

logger = logging.getLogger(__name__)

GENERIC_WEBHOOK = "st2"
# Credentials are checked by the API and must not travel on into rules and executions.
CREDENTIAL_HEADERS = frozenset({"x-auth-token", "st2-api-key", "cookie", "authorization"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def parse_webhook_body(raw: bytes, content_type: str | None) -> Any:
    """Read a webhook body as StackStorm does: JSON (the default), form fields or plain text."""
    media_type = (content_type or "application/json").split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
        if media_type == "text/plain":
            return text
        if media_type in FORM_TYPES:
            return parse_qs(text, keep_blank_values=True)
        if media_type not in ("application/json", ""):
            raise ValueError(f'Unsupported Content-Type: "{media_type}"')
        return json.loads(text) if text.strip() else {}
    except ValueError as error:
        raise ValidationError(f"Failed to parse request body: {error}") from None


def webhook_payload(headers: Iterable[tuple[str, str]], body: Any) -> dict[str, Any]:
    """Build a webhook instance's payload; header names as StackStorm shows them (``X-Foo``)."""
    shown: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in CREDENTIAL_HEADERS:
            continue
        key = name.title()
        shown[key] = f"{shown[key]}, {value}" if key in shown else value
    return {
        "headers": shown,
        "headers_lower": {name.lower(): value for name, value in shown.items()},
        "body": body,
    }


def list_webhooks(*, session: Session) -> list[TriggerDB]:
    """Every webhook trigger."""
    _total, found = list_triggers(
        session=session, offset=0, limit=None, type_ref=WEBHOOK_TRIGGER_TYPE
    )
    return found


def webhook_triggers(*, session: Session, url: str) -> list[TriggerDB]:
    """The triggers registered for ``url``; NotFoundError when there is none."""
    found = triggers_for_url(session=session, type_ref=WEBHOOK_TRIGGER_TYPE, url=url)
    if not found:
        raise NotFoundError(f"Webhook {normalise_url(url)} not registered with st2")
    return found


def dispatch_webhook(
    *, session: Session, url: str, headers: Iterable[tuple[str, str]], body: Any
) -> list[TriggerInstanceDB]:
    """Store one pending instance per trigger registered for ``url``."""
    triggers = webhook_triggers(session=session, url=url)
    payload = webhook_payload(headers, body)
    return [
        create_trigger_instance(session=session, trigger_ref=trigger.ref, payload=payload)
        for trigger in triggers
    ]


def dispatch_generic(*, session: Session, body: Any) -> TriggerInstanceDB:
    """Store an instance of the trigger the body names, with the body's ``payload``."""
    if not isinstance(body, Mapping):
        raise ValidationError(f"Webhook body needs to be an object, got: {type(body).__name__}")
    trigger_ref = body.get("trigger")
    if not trigger_ref:
        raise ValidationError("Trigger not specified.")
    if not isinstance(trigger_ref, str):
        raise ValidationError("trigger: must be a trigger reference (a string)")
    payload = body.get("payload") or {}
    if not isinstance(payload, Mapping):
        raise ValidationError("payload: must be an object")
    trigger = get_trigger(session=session, ref=trigger_ref)
    if trigger is None:
        raise ValidationError(f'Trigger "{trigger_ref}" does not exist')
    trigger_type = get_trigger_type(session=session, ref=trigger.type)
    if trigger_type is not None and trigger_type.payload_schema:
        validate(payload, trigger_type.payload_schema, "payload")
    return create_trigger_instance(session=session, trigger_ref=trigger.ref, payload=payload)
