"""Setting up pack virtualenvs directly (python -m venv, pip from PyPI): one setup of a pack at a
time, and requests that are refused before anything is touched."""

from __future__ import annotations

import fcntl
import threading
import time
from pathlib import Path

import pytest

from poundcake.engine.packs.virtualenvs import (
    INCOMPLETE_MARKER,
    LOCK_DIRECTORY,
    VirtualenvRequest,
    ready_virtualenv,
    virtualenvs_set_up,
)
from poundcake.exceptions import ValidationError


def make_pack(root: Path, name: str) -> Path:
    pack = root / name
    pack.mkdir(parents=True)
    (pack / "pack.yaml").write_text(f"name: {name}\ndescription: d\nversion: 1.0.0\nauthor: t\n")
    return pack


def test_a_second_setup_of_a_pack_waits_for_the_first(tmp_path: Path) -> None:
    virtualenvs = tmp_path / "virtualenvs"
    pack = make_pack(tmp_path / "packs", "waiting")
    (virtualenvs / LOCK_DIRECTORY).mkdir(parents=True)
    errors: list[Exception] = []

    def set_up() -> None:
        try:
            with virtualenvs_set_up(virtualenvs, [VirtualenvRequest("waiting", pack)]):
                pass
        except Exception as error:  # noqa: BLE001 - reported to the test thread
            errors.append(error)

    with (virtualenvs / LOCK_DIRECTORY / "waiting.lock").open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        setup = threading.Thread(target=set_up)
        setup.start()
        time.sleep(1.5)
        assert not (virtualenvs / "waiting").exists(), "the setup waits for the lock"
    setup.join(timeout=300)
    assert not setup.is_alive() and not errors, errors
    path = virtualenvs / "waiting"
    assert ready_virtualenv(virtualenvs, "waiting") == path
    assert not (path / INCOMPLETE_MARKER).exists()
    assert list(path.glob("lib/python3*/site-packages/six.py")), "the base requirement is in"


def test_a_pack_named_twice_is_refused_before_anything_happens(tmp_path: Path) -> None:
    pack = make_pack(tmp_path / "packs", "twice")
    request = VirtualenvRequest("twice", pack)
    with (
        pytest.raises(ValidationError, match="A pack is named twice in twice, twice"),
        virtualenvs_set_up(tmp_path / "virtualenvs", [request, request]),
    ):
        pass
    assert not (tmp_path / "virtualenvs").exists()
