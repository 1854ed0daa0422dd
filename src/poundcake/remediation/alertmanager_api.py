"""Alertmanager's v2 API as PoundCake uses it: silences while a CAB runs, and whether an alert
still fires when its fix is verified. The one client of Alertmanager's HTTP API.

The base URL is ``POUNDCAKE_ALERTMANAGER_URL``. Errors::

    AlertmanagerError                  Alertmanager refused the request (HTTP 4xx)
    └── AlertmanagerUnavailableError       unreachable, too slow, HTTP 5xx, or not JSON

Callers retry :class:`AlertmanagerUnavailableError` on their next pass. Tests use a real
Alertmanager (``tests/e2e``) or swap the transport.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from poundcake.exceptions import PoundCakeError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CREATED_BY = "poundcake"
EXPIRED = "expired"


class AlertmanagerError(PoundCakeError):
    """Alertmanager refused a request."""


class AlertmanagerUnavailableError(AlertmanagerError):
    """Alertmanager cannot be used now; try again later."""


def label_matchers(labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """Equality matchers for exactly these labels (a silence of this one alert)."""
    return [
        {"name": name, "value": value, "isRegex": False, "isEqual": True}
        for name, value in sorted(labels.items())
    ]


def _filter(name: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{name}="{escaped}"'


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class AlertmanagerClient:
    """A small synchronous client of Alertmanager's v2 API."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(
            base_url=self.base_url + "/api/v2",
            timeout=timeout,
            transport=transport or httpx.HTTPTransport(retries=2),
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise AlertmanagerUnavailableError(
                f"{method} {path}: cannot reach Alertmanager at {self.base_url} "
                f"({type(error).__name__})"
            ) from None
        if response.status_code >= 500:
            raise AlertmanagerUnavailableError(
                f"{method} {path}: Alertmanager answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        if response.status_code >= 400:
            raise AlertmanagerError(
                f"{method} {path}: Alertmanager answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise AlertmanagerUnavailableError("Alertmanager's answer is not JSON") from None

    def create_silence(
        self, matchers: list[dict[str, Any]], starts_at: datetime, ends_at: datetime, comment: str
    ) -> str:
        """Create a silence; its id."""
        body = {
            "matchers": matchers,
            "startsAt": _timestamp(starts_at),
            "endsAt": _timestamp(ends_at),
            "createdBy": CREATED_BY,
            "comment": comment,
        }
        found = self._json(self._request("POST", "/silences", json=body))
        silence_id = found.get("silenceID") if isinstance(found, dict) else None
        if not isinstance(silence_id, str) or not silence_id:
            raise AlertmanagerUnavailableError("Alertmanager did not name the new silence")
        return silence_id

    def silences(self) -> list[dict[str, Any]]:
        """Every silence Alertmanager holds (expired ones too, until it forgets them)."""
        found = self._json(self._request("GET", "/silences"))
        return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []

    def get_silence(self, silence_id: str) -> dict[str, Any] | None:
        """One silence, or None when Alertmanager does not know it."""
        try:
            found = self._json(self._request("GET", f"/silence/{silence_id}"))
        except AlertmanagerError as error:
            if isinstance(error, AlertmanagerUnavailableError):
                raise
            return None
        return found if isinstance(found, dict) else None

    def expire_silence(self, silence_id: str) -> None:
        """Expire a silence; one already expired or unknown is left as it is."""
        try:
            self._request("DELETE", f"/silence/{silence_id}")
        except AlertmanagerError:
            # Alertmanager refuses to expire a silence that has expired (500 on some versions,
            # 404 on unknown ids): look before deciding whether it failed.
            found = self.get_silence(silence_id)
            state = (found or {}).get("status", {}).get("state")
            if found is not None and state != EXPIRED:
                raise

    def is_firing(self, labels: Mapping[str, str], fingerprint: str) -> bool:
        """Whether Alertmanager still holds the alert (by fingerprint) as firing: active,
        silenced, inhibited or not yet processed."""
        params = [("filter", _filter(name, value)) for name, value in sorted(labels.items())]
        found = self._json(self._request("GET", "/alerts", params=params))
        for alert in found if isinstance(found, list) else []:
            if not isinstance(alert, dict):
                continue
            if alert.get("fingerprint") == fingerprint or alert.get("labels") == dict(labels):
                return True
        return False
