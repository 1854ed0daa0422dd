"""``slack.chat_post_message``: ``chat.postMessage`` of the Slack Web API with a bot token.

The API answers JSON ``{"ok": true, "channel": ..., "ts": ...}`` or ``{"ok": false, "error":
...}``; ``ok: false``, a non-JSON answer or an error status fails the execution.
"""

from __future__ import annotations

from typing import Any

import httpx
from st2common.runners.base_action import Action


class ChatPostMessage(Action):
    """Post ``text`` to ``channel`` as the pack config's bot."""

    def run(
        self,
        text: str,
        channel: str | None = None,
        thread_ts: str | None = None,
        blocks: list[Any] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        bot_token = token or self.config.get("bot_token")
        if not bot_token:
            raise ValueError("No bot token: set bot_token in the slack pack config.")
        target = channel or self.config.get("channel")
        if not target:
            raise ValueError("Name a channel, or set channel in the slack pack config.")
        payload: dict[str, Any] = {"channel": target, "text": text}
        if thread_ts:
            payload["thread_ts"] = thread_ts
        if blocks:
            payload["blocks"] = blocks
        base = str(self.config.get("api_url") or "https://slack.com/api/").rstrip("/")
        timeout = float(self.config.get("timeout") or 30)
        try:
            response = httpx.post(
                f"{base}/chat.postMessage",
                json=payload,
                headers={"Authorization": f"Bearer {bot_token}"},
                timeout=timeout,
            )
        except httpx.HTTPError as error:
            raise RuntimeError(f"Cannot reach the Slack API at {base}: {error}") from None
        if response.status_code == 429:
            retry = response.headers.get("Retry-After", "?")
            raise RuntimeError(f"Slack rate-limited the request; retry after {retry}s.")
        try:
            answer = response.json()
        except ValueError:
            raise RuntimeError(
                f"Slack answered HTTP {response.status_code} without JSON: {response.text[:200]}"
            ) from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else None
            raise RuntimeError(f"Slack refused the message: {error or answer}")
        return {"ok": True, "channel": answer.get("channel"), "ts": answer.get("ts")}
