"""``core.inject_trigger``: store an instance of a trigger, as ``POST /v1/webhooks/st2`` does."""

from __future__ import annotations

from typing import Any

from st2common.runners.base_action import Action


class InjectTriggerAction(Action):
    """Inject one trigger instance and return what the generic webhook echoes."""

    def run(
        self,
        trigger: str | None = None,
        trigger_name: str | None = None,
        payload: dict[str, Any] | None = None,
        trace_tag: str | None = None,
    ) -> dict[str, Any]:
        if trigger and trigger_name:
            raise ValueError("Parameters `trigger` and `trigger_name` are mutually exclusive.")
        ref = trigger or trigger_name
        if not ref:
            raise ValueError("You must include the `trigger_name` parameter.")
        self.logger.debug("Injecting trigger %s", ref)
        client = self.action_service.datastore_service.get_api_client()
        result: dict[str, Any] = client.webhooks.post_generic_webhook(
            trigger=ref, payload=payload or {}, trace_tag=trace_tag
        )
        return result
