"""The integration guard in tests/conftest.py, run on scratch test trees in a pytest subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

PASSING = "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n"
SKIPPED_AT_COLLECTION = (
    "import pytest\n\npytest.importorskip('no_such_module_here')\n\n\ndef test_never():\n    pass\n"
)
# A plugin that swallows one test: pytest collected it, nothing ran it, no report came.
SWALLOW = (
    "def pytest_runtest_protocol(item, nextitem):\n"
    "    return True if item.name == 'test_two' else None\n"
)


def run_tree(tmp_path: Path, files: dict[str, str], *arguments: str) -> tuple[int, str]:
    """Run pytest (integration required) on a tree with our conftest; exit code and output."""
    tests = tmp_path / "tests"
    (tests / "integration" / "engine").mkdir(parents=True)
    shutil.copy(CONFTEST, tests / "conftest.py")
    for name, text in files.items():
        (tests / name).write_text(text)
    environment = {
        **os.environ,
        "POUNDCAKE_REQUIRE_INTEGRATION": "1",
        "PYTHONPATH": str(tmp_path),
        # Installed plugins (xdist, playwright, ...) only slow the scratch run down.
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    environment.pop("PYTEST_XDIST_WORKER", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *arguments, "tests"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_run_of_every_integration_test_passes(tmp_path: Path) -> None:
    code, output = run_tree(tmp_path, {"integration/test_a.py": PASSING})
    assert code == 0, output
    assert "integration tests are required" not in output


def test_tests_in_subfolders_of_an_integration_folder_count(tmp_path: Path) -> None:
    code, output = run_tree(
        tmp_path, {"integration/engine/test_b.py": SKIPPED_AT_COLLECTION, "test_unit.py": PASSING}
    )
    assert code == 1, output
    assert "no integration test ran" in output
    assert "skipped at collection: tests/integration/engine/test_b.py" in output


def test_a_skipped_module_and_a_test_that_never_ran_fail_the_run(tmp_path: Path) -> None:
    (tmp_path / "swallow.py").write_text(SWALLOW)
    code, output = run_tree(
        tmp_path,
        {"integration/test_a.py": PASSING, "integration/test_b.py": SKIPPED_AT_COLLECTION},
        "-p",
        "swallow",
    )
    assert code == 1, output
    assert "1 module(s) skipped at collection: tests/integration/test_b.py" in output
    assert "1 collected but never run: tests/integration/test_a.py::test_two" in output


def test_under_xdist_the_controller_sees_what_the_workers_collected(tmp_path: Path) -> None:
    code, output = run_tree(
        tmp_path,
        {"integration/test_a.py": PASSING, "integration/test_b.py": SKIPPED_AT_COLLECTION},
        *("-p", "xdist.plugin", "-n", "2"),
    )
    assert code == 1, output
    assert "2 ran; 1 module(s) skipped at collection: tests/integration/test_b.py" in output
