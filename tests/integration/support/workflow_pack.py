"""A pack of Orquesta workflow actions written into a directory, for tests and benchmarks that
register it with ``st2ctl reload --register-all`` (``[content] packs_base_paths``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def write_workflow_pack(
    base: Path, pack: str, workflows: Mapping[str, tuple[Mapping[str, Any], str]]
) -> Path:
    """Write ``pack`` under ``base``: for each action name, an ``orquesta`` action with the given
    parameters (StackStorm's schema) whose entry point is the given workflow definition. Returns
    ``base``, the directory to name in ``packs_base_paths``."""
    actions = base / pack / "actions"
    (actions / "workflows").mkdir(parents=True)
    metadata = {
        "ref": pack,
        "name": pack,
        "description": "Orquesta workflows for tests.",
        "version": "1.0.0",
        "author": "PoundCake",
    }
    (base / pack / "pack.yaml").write_text(yaml.safe_dump(metadata))
    for name, (parameters, definition) in workflows.items():
        action = {
            "name": name,
            "runner_type": "orquesta",
            "enabled": True,
            "entry_point": f"workflows/{name}.yaml",
            "parameters": dict(parameters),
        }
        (actions / f"{name}.yaml").write_text(yaml.safe_dump(action, sort_keys=False))
        (actions / "workflows" / f"{name}.yaml").write_text(definition)
    return base
