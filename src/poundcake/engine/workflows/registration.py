"""Checking an ``orquesta`` action's workflow definition when the action is registered.

A definition that fails Orquesta's own inspection (syntax, semantics, expressions, context) can
never run; its action is refused, with the workflow file, the place in it and the problem named,
as ``st2 workflow inspect`` would report them. What depends on other registered content (each
task's action exists and fits its input) is only a warning here, since packs register one after
another; it is checked again, and fails the run, when the workflow starts, as on StackStorm.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from poundcake.engine.workflows.definition import DefinitionError, build_definition, read_document
from poundcake.engine.workflows.inspection import describe, inspect_content, inspect_document
from poundcake.engine.workflows.requests import action_parameter_schema
from poundcake.exceptions import ValidationError

ORQUESTA = "orquesta"


class WorkflowRefusedError(ValidationError):
    """A workflow definition that fails inspection; the message lists every problem.
    ``document`` is the parsed definition when there is one (its file exists and is YAML)."""

    def __init__(self, message: str, document: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.document = document


def workflow_path(pack_path: Path, entry_point: str) -> Path:
    """Where an action's workflow definition is (entry points are relative to ``actions/``)."""
    return pack_path / "actions" / entry_point


def check_workflow(path: Path) -> dict[str, Any]:
    """The parsed definition at ``path``; WorkflowRefusedError when it cannot run as written."""
    if not path.is_file():
        raise WorkflowRefusedError(f"the workflow definition {path} does not exist")
    try:
        document = read_document(path.read_text(encoding="utf-8"))
    except (OSError, DefinitionError) as error:
        raise WorkflowRefusedError(f"{path}: {error}") from None
    problems = inspect_document(document)
    if problems:
        lines = "; ".join(describe(problem) for problem in problems)
        raise WorkflowRefusedError(f"{path} fails inspection: {lines}", document)
    return document


def content_warnings(session: Session, document: Mapping[str, Any]) -> list[str]:
    """What the run would refuse about the tasks' actions as things are registered now."""
    try:
        definition = build_definition(document)
    except DefinitionError:
        return []
    problems = inspect_content(definition, lambda ref: action_parameter_schema(session, ref))
    return [describe(problem) for problem in problems]
