"""``packs.uninstall``: unregister packs and delete their directories."""

from __future__ import annotations

from typing import Any

from st2common.runners.base_action import Action

from poundcake.engine.packs.operations import run_uninstall
from poundcake.exceptions import PoundCakeError


class UninstallPacks(Action):
    """Remove every named pack in one transaction, or none of them."""

    def run(self, packs: list[str]) -> tuple[bool, dict[str, Any]]:
        try:
            return True, run_uninstall(packs)
        except PoundCakeError as error:
            self.logger.error("Removing %s failed: %s", ", ".join(packs), error)
            return False, {"packs_list": [], "warning_list": [], "error": str(error)}
