"""The engine's API as applying CABs uses it: actions, runner types, rules, pack registration."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from poundcake.remediation.engine_client import EngineClient, EngineNotFoundError


class CabEngineClient(EngineClient):
    """:class:`EngineClient` plus what ``apply_cabs`` and CAB validation need."""

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            found = self._json(self._request("GET", path))
        except EngineNotFoundError:
            return None
        return found if isinstance(found, dict) else None

    def get_action(self, ref: str) -> dict[str, Any] | None:
        """The action ``ref``, or None when the engine has none."""
        return self._get_or_none(f"/actions/{quote(ref, safe='')}")

    def get_runner_type(self, name: str) -> dict[str, Any] | None:
        """The runner type ``name``, or None."""
        return self._get_or_none(f"/runnertypes/{quote(name, safe='')}")

    def get_rule(self, ref: str) -> dict[str, Any] | None:
        """The rule ``ref``, or None."""
        return self._get_or_none(f"/rules/{quote(ref, safe='')}")

    def register_pack(self, pack: str) -> dict[str, Any]:
        """Register (or re-register) one pack from disk; the engine's counts per kind."""
        found = self._json(self._request("POST", "/packs/register", body={"packs": [pack]}))
        return found if isinstance(found, dict) else {}

    def _delete(self, path: str) -> None:
        try:
            self._request("DELETE", path)
        except EngineNotFoundError:
            return

    def delete_rule(self, ref: str) -> None:
        """Delete the rule ``ref`` (nothing when it is gone already)."""
        self._delete(f"/rules/{quote(ref, safe='')}")

    def delete_action(self, ref: str) -> None:
        """Delete the action ``ref`` (nothing when it is gone already)."""
        self._delete(f"/actions/{quote(ref, safe='')}")
