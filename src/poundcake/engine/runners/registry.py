"""Runner plugins and their metadata.

Each runner package under ``poundcake.engine.runners`` ships a ``runner.yaml`` in StackStorm's
format: a list of runner types with ``name``, ``description``, ``enabled``,
``runner_parameters``, ``output_key``, ``output_schema`` and ``runner_module`` (here the import
path ``package.module:Class`` of the plugin). Nothing is imported until a runner is needed.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from poundcake.engine.runners.base import Runner
from poundcake.exceptions import NotFoundError, ValidationError

RUNNERS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class RunnerTypeSpec:
    """One runner type as its ``runner.yaml`` declares it."""

    name: str
    description: str
    enabled: bool
    runner_module: str
    runner_parameters: dict[str, Any] = field(default_factory=dict)
    output_key: str | None = None
    output_schema: dict[str, Any] = field(default_factory=dict)
    metadata_file: str = ""


def _load(path: Path) -> list[RunnerTypeSpec]:
    documents = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if isinstance(documents, dict):
        documents = [documents]
    specs = []
    for document in documents:
        try:
            specs.append(
                RunnerTypeSpec(
                    name=document["name"],
                    description=document.get("description", ""),
                    enabled=bool(document.get("enabled", True)),
                    runner_module=document["runner_module"],
                    runner_parameters=document.get("runner_parameters") or {},
                    output_key=document.get("output_key"),
                    output_schema=document.get("output_schema") or {},
                    metadata_file=str(path.relative_to(RUNNERS_DIR)),
                )
            )
        except KeyError as missing:
            raise ValidationError(f"{path}: runner type is missing {missing}") from None
    return specs


_READING = threading.Lock()


def runner_types() -> dict[str, RunnerTypeSpec]:
    """Return every runner type shipped with PoundCake, by name (read once per process: the
    first callers wait for that one reading instead of each reading every file)."""
    with _READING:
        return _runner_types()


@cache
def _runner_types() -> dict[str, RunnerTypeSpec]:
    found: dict[str, RunnerTypeSpec] = {}
    for path in sorted(RUNNERS_DIR.glob("*/runner.yaml")):
        for spec in _load(path):
            found[spec.name] = spec
    return found


def runner_class(name: str) -> type[Runner]:
    """Import and return the plugin class for runner type ``name``."""
    spec = runner_types().get(name)
    if spec is None:
        raise NotFoundError(f'Runner type "{name}" is not found.')
    module_name, _, class_name = spec.runner_module.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Runner)):
        raise ValidationError(f"{spec.runner_module} is not a Runner")
    return cls
