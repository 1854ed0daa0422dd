"""``slack.post_message``: post through an incoming webhook.

Slack answers a webhook with ``200 ok``, or an error status with the reason as text
(``invalid_payload``, ``no_service``, ``channel_not_found``...); an error fails the execution.
"""

from __future__ import annotations

from typing import Any

import httpx
from st2common.runners.base_action import Action


class PostMessage(Action):
    """Post ``message`` to the webhook of the parameters or the pack config."""

    def run(
        self,
        message: str,
        channel: str | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
        webhook_url: str | None = None,
    ) -> dict[str, Any]:
        url = webhook_url or self.config.get("webhook_url")
        if not url:
            raise ValueError("No webhook URL: set webhook_url in the slack pack config.")
        payload: dict[str, Any] = {"text": message}
        for key, value in (
            ("channel", channel or self.config.get("channel")),
            ("username", username or self.config.get("username")),
            ("icon_emoji", icon_emoji or self.config.get("icon_emoji")),
        ):
            if value:
                payload[key] = value
        timeout = float(self.config.get("timeout") or 30)
        try:
            response = httpx.post(str(url), json=payload, timeout=timeout)
        except httpx.HTTPError as error:
            # The URL itself is the secret: name only the kind of failure.
            raise RuntimeError(f"Cannot reach the Slack webhook: {type(error).__name__}") from None
        answer = response.text.strip()
        if response.status_code != 200 or answer != "ok":
            raise RuntimeError(
                f"Slack refused the message: HTTP {response.status_code} {answer[:200]}"
            )
        return {"ok": True, "channel": payload.get("channel"), "response": answer}
