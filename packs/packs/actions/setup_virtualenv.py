"""``packs.setup_virtualenv``: create or update packs' virtualenvs and install requirements."""

from __future__ import annotations

from st2common.runners.base_action import Action

from poundcake.engine.packs.operations import run_setup_virtualenvs


class SetupVirtualEnvironmentAction(Action):
    """Set up every named pack's virtualenv, or leave every one as it was."""

    def run(
        self, packs: list[str], update: bool = False, no_download: bool = True, python3: bool = True
    ) -> str:
        if python3 is False:
            raise ValueError(
                "python3=false asks for a Python 2 virtualenv; packs run on Python 3 only."
            )
        paths = run_setup_virtualenvs(packs, update=update, no_download=no_download)
        for path in paths:
            self.logger.info("Virtualenv ready: %s", path)
        return "Successfully set up virtualenv for the following packs: " + ", ".join(packs)
