"""A sensor process's interpreter, PYTHONPATH (StackStorm's order) and configuration path."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import poundcake
from poundcake.config import load_st2_config
from poundcake.engine.runners.python.compat import COMPAT_DIR
from poundcake.engine.sensors.children import child_environment
from poundcake.engine.sensors.environment import sensor_environment, sensor_python_path
from poundcake.engine.sensors.service import SensorToRun


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, SensorToRun]:
    venvs = tmp_path / "venvs"
    minor = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = venvs / "mypack" / "lib" / minor / "site-packages"
    site.mkdir(parents=True)
    python = venvs / "mypack" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    pack = tmp_path / "packs" / "mypack"
    (pack / "lib").mkdir(parents=True)
    (pack / "sensors").mkdir()
    (tmp_path / "st2.conf").write_text(
        f"[database]\nbackend = sqlite\n\n[actionrunner]\nvirtualenvs_path = {venvs}\n\n"
        "[packs]\nenable_common_libs = True\n"
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


def test_the_path_puts_our_shim_then_the_pack_then_the_virtualenv_first(
    setup: tuple[Path, SensorToRun],
) -> None:
    site, sensor = setup
    config = load_st2_config("st2.conf")
    assert sensor.pack_path is not None
    environment = sensor_environment(config, pack="mypack", pack_path=sensor.pack_path)
    entries = sensor_python_path(environment, sensor_file=sensor.file_path).split(os.pathsep)
    # StackStorm's order: the pack's common lib/ (enable_common_libs), then the virtualenv.
    assert entries[:3] == [str(COMPAT_DIR), str(sensor.pack_path / "lib"), str(site)]
    # Then the engine's own path, so the wrapper reaches PoundCake; the sensor's directory last.
    assert str(Path(poundcake.__file__).resolve().parents[1]) in entries[3:]
    assert entries[-1] == str(sensor.file_path.parent)
    assert environment.python.name == "python"
    other = sensor_environment(config, pack="otherpack", pack_path=None)
    assert other.python == Path(sys.executable)


def test_a_relative_config_file_reaches_the_sensor_as_an_absolute_path(
    setup: tuple[Path, SensorToRun], tmp_path: Path
) -> None:
    _site, sensor = setup
    config = load_st2_config("st2.conf")
    environment = sensor_environment(config, pack=sensor.pack, pack_path=sensor.pack_path)
    env = child_environment(config, sensor, environment)
    assert env["ST2_CONFIG_PATH"] == str(tmp_path / "st2.conf")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(COMPAT_DIR)
