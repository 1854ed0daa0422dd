"""Where packs and pack configs are on disk, from st2.conf.

Packs are searched in the system packs directory (the repository's ``packs/``, or
``[content] system_packs_base_path``), then in ``[content] packs_base_paths`` (``:``-separated;
default ``<data_dir>/packs``, where ``st2 pack install`` puts packs). A pack in the user's
directories replaces a bundled pack of the same name, except the system packs (see
:func:`poundcake.engine.packs.loader.discover_packs`).
Pack configs are ``<configs_dir>/<pack>.yaml``: ``[system] base_path``/configs when set, as in
StackStorm's ``/opt/stackstorm/configs``, else ``<data_dir>/configs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import poundcake
from poundcake.config import St2Config
from poundcake.engine.packs.index import index_urls

BUNDLED_PACKS_DIR = Path(poundcake.__file__).resolve().parents[2] / "packs"


@dataclass(frozen=True)
class ContentLocations:
    """The pack search path, in order, and the directory of pack configs."""

    system_packs_path: Path
    packs_base_paths: tuple[Path, ...]
    configs_dir: Path
    # Whether an orquesta action whose workflow fails inspection is refused (else registered
    # with a warning): ``[workflow_engine] refuse_at_registration``.
    refuse_failing_workflows: bool = True
    # Where ``st2 pack install <name>`` and ``st2 pack search`` look packs up, in priority order:
    # ``[content] index_url`` (comma-separated; StackStorm's exchange index when unset).
    index_urls: tuple[str, ...] = ()

    @property
    def search_paths(self) -> tuple[Path, ...]:
        """Return every pack directory to search, system packs first, without repeats."""
        paths = (self.system_packs_path, *self.packs_base_paths)
        unique: dict[Path, Path] = {}
        for path in paths:
            unique.setdefault(path.expanduser().resolve(), path.expanduser())
        return tuple(unique.values())


def content_locations(config: St2Config) -> ContentLocations:
    """Return where this configuration keeps packs and pack configs."""
    content = config.sections.get("content", {})
    system = config.sections.get("system", {})
    system_packs = content.get("system_packs_base_path", "").strip()
    base_path = system.get("base_path", "").strip()
    packs_base_paths = config.packs_base_paths
    if not packs_base_paths:
        default = config.data_dir / "packs"
        default.mkdir(parents=True, exist_ok=True)
        packs_base_paths = (default,)
    return ContentLocations(
        system_packs_path=Path(system_packs).expanduser() if system_packs else BUNDLED_PACKS_DIR,
        packs_base_paths=packs_base_paths,
        configs_dir=(
            Path(base_path).expanduser() / "configs" if base_path else config.data_dir / "configs"
        ),
        refuse_failing_workflows=config.workflow_engine.refuse_at_registration,
        index_urls=tuple(index_urls(content.get("index_url"))),
    )
