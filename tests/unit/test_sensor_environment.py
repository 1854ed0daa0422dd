"""A sensor process's interpreter, PYTHONPATH (StackStorm's order) and configuration path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import poundcake
from poundcake.config import load_st2_config
from poundcake.engine.runners.python.runner import COMPAT_DIR
from poundcake.engine.sensors.children import child_environment
from poundcake.engine.sensors.environment import sensor_interpreter, sensor_python_path
from poundcake.engine.sensors.service import SensorToRun


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, SensorToRun]:
    venvs = tmp_path / "venvs"
    site = venvs / "mypack" / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    python = venvs / "mypack" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    pack = tmp_path / "packs" / "mypack"
    (pack / "lib").mkdir(parents=True)
    (pack / "sensors").mkdir()
    (tmp_path / "st2.conf").write_text(
        f"[database]\nbackend = sqlite\n\n[actionrunner]\nvirtualenvs_path = {venvs}\n"
    )
    monkeypatch.chdir(tmp_path)
    sensor = SensorToRun(
        ref="mypack.Watcher",
        pack="mypack",
        class_name="Watcher",
        file_path=pack / "sensors" / "watcher.py",
        pack_path=pack,
        poll_interval=None,
        trigger_types=(),
    )
    return site, sensor


def test_the_path_puts_our_shim_then_the_virtualenv_then_the_pack_first(
    setup: tuple[Path, SensorToRun],
) -> None:
    site, sensor = setup
    config = load_st2_config("st2.conf")
    entries = sensor_python_path(
        config, pack="mypack", pack_path=sensor.pack_path, sensor_file=sensor.file_path
    ).split(os.pathsep)
    assert sensor.pack_path is not None
    assert entries[:4] == [
        str(COMPAT_DIR),
        str(site),
        str(sensor.pack_path / "lib"),
        str(sensor.file_path.parent),
    ]
    # Then the engine's own path, so the wrapper reaches PoundCake.
    assert str(Path(poundcake.__file__).resolve().parents[1]) in entries[4:]
    assert sensor_interpreter(config, "mypack").name == "python"
    assert sensor_interpreter(config, "otherpack") == Path(sys.executable)


def test_a_relative_config_file_reaches_the_sensor_as_an_absolute_path(
    setup: tuple[Path, SensorToRun], tmp_path: Path
) -> None:
    _site, sensor = setup
    env = child_environment(load_st2_config("st2.conf"), sensor)
    assert env["ST2_CONFIG_PATH"] == str(tmp_path / "st2.conf")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(COMPAT_DIR)
