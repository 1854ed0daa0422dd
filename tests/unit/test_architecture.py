"""docs/architecture.md names real code: every ``module:function`` of its tables exists, and the
code path table lists its steps in order."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "architecture.md"
# `remediation.dispatch:process_deliveries`, `engine.rules.process:RulesEngine.process_pending`
REFERENCE = re.compile(r"`((?:[a-z_]+\.)*[a-z_]+):([A-Za-z_][\w.]*)`")


def _code_path_rows() -> list[str]:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The code path of an alert", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if re.match(r"\| \d+a? \|", line)]


def _references() -> list[tuple[str, str]]:
    return REFERENCE.findall(DOC.read_text(encoding="utf-8"))


def test_the_page_names_code() -> None:
    assert len(_references()) >= 15
    assert len(_code_path_rows()) >= 10


@pytest.mark.parametrize(("module", "name"), _references())
def test_every_named_function_exists(module: str, name: str) -> None:
    found: object = importlib.import_module(f"poundcake.{module}")
    for part in name.split("."):
        assert hasattr(found, part), f"poundcake.{module}:{name}: no {part}"
        found = getattr(found, part)
    assert callable(found)


def test_the_steps_are_numbered_in_order() -> None:
    numbers = [row.split("|")[1].strip() for row in _code_path_rows()]
    whole = [int(number.rstrip("a")) for number in numbers]
    assert whole == sorted(whole)
    assert whole[0] == 1
