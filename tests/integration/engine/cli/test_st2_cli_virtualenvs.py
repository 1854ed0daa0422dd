"""Per-pack virtualenvs and the Python action API through the official ``st2`` CLI.

The engine runs as real processes with ``tests/fixtures/packs/virtualenvs`` in its pack search
path. ``st2 run packs.setup_virtualenv`` and ``st2 pack install`` build virtualenvs with pip
from PyPI (a few small wheels, cached by pip after the first run).
"""

from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.support.pack_actions import engine_api
from tests.integration.support.st2cli import (
    STREAM_SERVICES,
    USER,
    CliResult,
    RunningEngine,
    St2,
    logged_in,
    output,
    running_engine,
)
from tests.paths import FIXTURE_PACKS

FIXTURES = FIXTURE_PACKS / "virtualenvs"
INSTALLED = "installed-packs"
MARKER = ".poundcake-setup-incomplete"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("st2cli-virtualenvs")
    (directory / INSTALLED).mkdir()
    configs = directory / "data" / "configs"
    configs.mkdir(parents=True)
    (configs / "venv_tests.yaml").write_text("region: eu-west\n")
    extra = f"[content]\npacks_base_paths = {directory / INSTALLED}:{FIXTURES}\n"
    with running_engine(directory, extra_conf=extra, services=STREAM_SERVICES) as running:
        yield running


@pytest.fixture
def st2(engine: RunningEngine, tmp_path: Path) -> St2:
    return logged_in(engine, tmp_path / "home")


@pytest.fixture
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def virtualenv(engine: RunningEngine, pack: str) -> Path:
    return engine.directory / "data" / "virtualenvs" / pack


def ran(result: CliResult) -> dict[str, Any]:
    """The execution ``st2 run ... -j`` printed, whatever its status."""
    assert result.stdout.strip(), output(result)
    document: dict[str, Any] = result.json()
    return document


def test_setup_virtualenv_installs_the_packs_requirements(st2: St2, engine: RunningEngine) -> None:
    engine_xmltodict = importlib.metadata.version("xmltodict")
    assert engine_xmltodict != "0.13.0"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("termcolor")
    before = ran(st2("run", "venv_tests.dependencies", "-j"))
    assert before["status"] == "failed"
    assert "No module named 'termcolor'" in before["result"]["stderr"]

    setup = st2("run", "packs.setup_virtualenv", "packs=venv_tests", "-j", timeout=300)
    assert setup.returncode == 0, output(setup)
    document = ran(setup)
    assert document["status"] == "succeeded", document["result"]
    assert document["result"]["result"] == (
        "Successfully set up virtualenv for the following packs: venv_tests"
    )
    path = virtualenv(engine, "venv_tests")
    assert (path / "bin" / "python").exists()
    assert not (path / MARKER).exists()

    after = ran(st2("run", "venv_tests.dependencies", "-j"))
    assert after["status"] == "succeeded", after["result"]
    result = after["result"]["result"]
    assert result["python"] == str(path / "bin" / "python")
    assert result["prefix"] == str(path)
    assert result["termcolor"].startswith(str(path))
    assert result["colored"] == "\x1b[32mok\x1b[0m"
    assert result["xmltodict"].startswith(str(path)), "the pack's pin wins over the engine's"
    assert result["xmltodict_version"] == "0.13.0"
    assert result["parsed"] == {"a": {"b": "1"}}


def test_update_keeps_the_virtualenv_and_refuses_unknown_values(
    st2: St2, engine: RunningEngine
) -> None:
    path = virtualenv(engine, "venv_tests")
    if not path.exists():
        assert st2("run", "packs.setup_virtualenv", "packs=venv_tests", timeout=300).returncode == 0
    keep = path / "kept-by-update"
    keep.write_text("")
    update = ran(
        st2("run", "packs.setup_virtualenv", "packs=venv_tests", "update=true", "-j", timeout=300)
    )
    assert update["status"] == "succeeded", update["result"]
    assert keep.exists(), "update=true keeps the virtualenv"
    # The env parameter reaches pip (here a constraints file that does not exist); the failed
    # update puts the virtualenv back as it was.
    offline = ran(
        st2(
            "run",
            "packs.setup_virtualenv",
            "packs=venv_tests",
            "update=true",
            'env={"PIP_CONSTRAINT": "/nonexistent/constraints.txt"}',
            "-j",
            timeout=300,
        )
    )
    assert offline["status"] == "failed"
    assert "/nonexistent/constraints.txt" in offline["result"]["stderr"]
    assert keep.exists() and not (path / MARKER).exists()
    still = ran(st2("run", "venv_tests.dependencies", "-j"))
    assert still["status"] == "succeeded", still["result"]
    python2 = ran(st2("run", "packs.setup_virtualenv", "packs=venv_tests", "python3=false", "-j"))
    assert python2["status"] == "failed"
    assert "python3=false asks for a Python 2 virtualenv" in python2["result"]["stderr"]
    unknown = st2("run", "packs.setup_virtualenv", "packs=venv_tests", "python2=true")
    assert unknown.returncode != 0
    assert "python2" in output(unknown)
    system = ran(st2("run", "packs.setup_virtualenv", "packs=core", "-j"))
    assert system["status"] == "failed"
    assert 'Pack "core" is a system pack' in system["result"]["stderr"]
    absent = ran(st2("run", "packs.setup_virtualenv", "packs=no_such_pack", "-j"))
    assert absent["status"] == "failed"
    assert "Pack no_such_pack is not installed. Looked in:" in absent["result"]["stderr"]


def test_a_failed_pip_install_fails_with_pips_error_and_leaves_no_virtualenv(
    st2: St2, engine: RunningEngine
) -> None:
    result = ran(st2("run", "packs.setup_virtualenv", "packs=venv_broken", "-j", timeout=300))
    assert result["status"] == "failed"
    stderr = result["result"]["stderr"]
    assert 'Installing the requirements of pack "venv_broken"' in stderr
    assert "poundcake-test-no-such-distribution==9.9.9" in stderr
    assert "No matching distribution found" in stderr
    assert not virtualenv(engine, "venv_broken").exists()
    assert not list((engine.directory / "data" / "virtualenvs").glob(".replaced/*"))


def test_the_python_action_api(st2: St2, api: httpx.Client) -> None:
    failed = ran(st2("run", "venv_tests.api", "-j"))
    assert failed["status"] == "failed", "(False, result) fails the execution"
    result = failed["result"]["result"]
    assert result == {
        "region": "eu-west",
        "retries": 3,
        "missing": 'Config for pack "venv_tests" is missing key "absent".',
        "counter": "7",
        "secret_masked": True,
        "secret": "hunter2",
        "shared": "global",
        "listed": [["venv_tests.ApiTour:brief", "gone soon"]],
        "all_local": [
            "venv_tests.ApiTour:brief",
            "venv_tests.ApiTour:counter",
            "venv_tests.ApiTour:secret",
        ],
        "deleted": True,
        "deleted_again": False,
        "after_delete": None,
        "user": USER,
        "same_service": "gone soon",
    }
    assert "INFO actions.python.ApiTour [-] working in eu-west" in failed["result"]["stderr"]
    assert failed["result"]["exit_code"] == 0
    brief = api.get("/keys/venv_tests.ApiTour:brief").json()
    assert brief["expire_timestamp"]
    secret = api.get("/keys/venv_tests.ApiTour:secret").json()
    assert secret["secret"] is True and secret["value"] != "hunter2"

    succeeded = ran(st2("run", "venv_tests.api", "succeed=true", "-j"))
    assert succeeded["status"] == "succeeded", succeeded["result"]
    assert succeeded["result"]["result"]["region"] == "eu-west"


def test_pack_install_creates_the_virtualenv_and_remove_deletes_it(
    st2: St2, engine: RunningEngine, tmp_path: Path
) -> None:
    source = tmp_path / "venv_installed"
    shutil.copytree(FIXTURES / "venv_installed", source)
    installed = st2("pack", "install", f"file://{source}", timeout=300)
    assert installed.returncode == 0, output(installed)
    path = virtualenv(engine, "venv_installed")
    assert (path / "bin" / "python").exists()
    assert not (path / MARKER).exists()

    colored = ran(st2("run", "venv_installed.colored", "word=hello", "-j"))
    assert colored["status"] == "succeeded", colored["result"]
    assert colored["result"]["result"]["colored"] == "\x1b[31mhello\x1b[0m"
    assert colored["result"]["result"]["from"].startswith(str(path))

    removed = st2("pack", "remove", "venv_installed", timeout=180)
    assert removed.returncode == 0, output(removed)
    assert not path.exists()


def test_an_install_whose_requirements_fail_leaves_nothing(
    st2: St2, engine: RunningEngine, api: httpx.Client, tmp_path: Path
) -> None:
    source = tmp_path / "venv_broken"
    shutil.copytree(FIXTURES / "venv_broken", source)
    installed = st2("pack", "install", f"file://{source}", timeout=300)
    assert installed.returncode == 1, output(installed)
    [execution] = api.get("/executions", params={"action": "packs.install", "limit": 1}).json()
    assert execution["status"] == "failed"
    [error] = execution["result"]["errors"]
    assert (
        "No matching distribution found for poundcake-test-no-such-distribution"
        in (error["message"])
    )
    assert not (engine.directory / INSTALLED / "venv_broken").exists()
    assert not virtualenv(engine, "venv_broken").exists()
    # Still the copy registered from the fixtures at start-up.
    assert api.get("/packs/venv_broken").json()["path"] == str(FIXTURES / "venv_broken")
