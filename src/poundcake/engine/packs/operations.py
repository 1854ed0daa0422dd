"""The work of the bundled ``packs.install`` and ``packs.uninstall`` actions, in one transaction.

The actions run in an action process that finds st2.conf the usual way (``ST2_CONFIG_PATH``
from the action runner); each call opens its own connection, does the whole install or removal
in one unit of work, and returns the workflow output StackStorm's ``packs.*`` actions report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from poundcake.config import St2Config, load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.packs.install import PackOperationReport, install_packs
from poundcake.engine.packs.loader import discover_packs
from poundcake.engine.packs.locations import content_locations
from poundcake.engine.packs.removal import uninstall_packs
from poundcake.engine.packs.virtualenvs import (
    VirtualenvRequest,
    virtualenvs_dir,
    virtualenvs_set_up,
)
from poundcake.exceptions import ValidationError


def _in_unit_of_work(
    operation: Callable[[Session, St2Config], PackOperationReport],
) -> dict[str, Any]:
    config = load_st2_config()
    engine = make_st2_engine(config, pool_size=1)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            report = operation(session, config)
    finally:
        engine.dispose()
    return dict(report.output())


def run_install(
    packs: Sequence[str], *, force: bool = False, skip_dependencies: bool = False
) -> dict[str, Any]:
    """Install local packs and register them; return ``packs_list`` and ``warning_list``."""
    return _in_unit_of_work(
        lambda session, config: install_packs(
            session=session,
            locations=content_locations(config),
            sources=list(packs),
            force=force,
            skip_dependencies=skip_dependencies,
            system_user=config.system_user,
            virtualenvs=virtualenvs_dir(config),
        )
    )


def run_uninstall(packs: Sequence[str]) -> dict[str, Any]:
    """Unregister packs and delete their directories; return the workflow output."""
    return _in_unit_of_work(
        lambda session, config: uninstall_packs(
            session=session,
            locations=content_locations(config),
            packs=list(packs),
            virtualenvs=virtualenvs_dir(config),
        )
    )


def run_setup_virtualenvs(
    packs: Sequence[str], *, update: bool = False, no_download: bool = True
) -> list[str]:
    """Set up the virtualenv of each pack found in the pack search path; return their paths.

    Like StackStorm, the packs are looked for on disk (registered or not) and nothing is
    registered; if one setup fails, the virtualenvs already set up are put back as they were.
    """
    if not packs:
        raise ValidationError("Name at least one pack to set up a virtualenv for.")
    config = load_st2_config()
    locations = content_locations(config)
    found, _ = discover_packs(locations.search_paths, locations.system_packs_path)
    paths = {pack.ref: pack.path for pack in found}
    missing = [pack for pack in packs if pack not in paths]
    if missing:
        searched = ", ".join(str(path) for path in locations.search_paths)
        raise ValidationError(f"Pack {', '.join(missing)} is not installed. Looked in: {searched}")
    requests = [
        VirtualenvRequest(pack, paths[pack], update=update, no_download=no_download)
        for pack in packs
    ]
    with virtualenvs_set_up(virtualenvs_dir(config), requests) as created:
        return [str(path) for path in created]
