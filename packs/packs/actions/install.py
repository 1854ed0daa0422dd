"""``packs.install``: copy local packs into the packs directory and register them."""

from __future__ import annotations

from typing import Any

from st2common.runners.base_action import Action

from poundcake.engine.packs.operations import run_install
from poundcake.exceptions import PoundCakeError


class InstallPacks(Action):
    """Install every named pack in one transaction, or none of them."""

    def run(
        self, packs: list[str], force: bool = False, skip_dependencies: bool = False
    ) -> tuple[bool, dict[str, Any]]:
        try:
            return True, run_install(packs, force=force, skip_dependencies=skip_dependencies)
        except PoundCakeError as error:
            self.logger.error("Installing %s failed: %s", ", ".join(packs), error)
            return False, {"packs_list": [], "warning_list": [], "error": str(error)}
