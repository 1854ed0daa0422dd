"""Where pack virtualenvs are, when one counts as ready, and the import path pack code gets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import poundcake
from poundcake.config import load_st2_config
from poundcake.engine.packs.virtualenvs import (
    INCOMPLETE_MARKER,
    VirtualenvError,
    VirtualenvRequest,
    check_virtualenv_request,
    common_library,
    engine_python_path,
    pack_python,
    pack_python_environment,
    ready_virtualenv,
    virtualenvs_dir,
)
from poundcake.engine.runners.python.compat import COMPAT_DIR
from poundcake.engine.runners.python.fallback import FALLBACK_DIR
from poundcake.exceptions import ValidationError


def fake_virtualenv(root: Path, pack: str) -> Path:
    """The files a virtualenv's readiness and import path depend on."""
    path = root / pack
    (path / "bin").mkdir(parents=True)
    (path / "bin" / "python").write_text("")
    (path / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    return path


def test_virtualenvs_live_under_the_data_dir_unless_configured(tmp_path: Path) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[system]\ndata_dir = {tmp_path / 'data'}\n")
    assert virtualenvs_dir(load_st2_config(conf)) == tmp_path / "data" / "virtualenvs"
    conf.write_text(f"[actionrunner]\nvirtualenvs_path = {tmp_path / 'venvs'}\n")
    config = load_st2_config(conf)
    assert virtualenvs_dir(config) == tmp_path / "venvs"
    assert pack_python(config, "mypack") == Path(sys.executable)
    fake_virtualenv(tmp_path / "venvs", "mypack")
    assert pack_python(config, "mypack") == tmp_path / "venvs" / "mypack" / "bin" / "python"


def test_a_virtualenv_being_set_up_is_not_ready(tmp_path: Path) -> None:
    path = fake_virtualenv(tmp_path, "mypack")
    assert ready_virtualenv(tmp_path, "mypack") == path
    assert ready_virtualenv(tmp_path, "other") is None
    (path / INCOMPLETE_MARKER).write_text("")
    with pytest.raises(VirtualenvError, match="incomplete") as raised:
        ready_virtualenv(tmp_path, "mypack")
    assert "st2 run packs.setup_virtualenv packs=mypack" in str(raised.value)
    (path / INCOMPLETE_MARKER).unlink()
    (path / "bin" / "python").unlink()
    with pytest.raises(VirtualenvError, match="has no bin/python"):
        ready_virtualenv(tmp_path, "mypack")


def test_system_packs_always_run_with_the_engines_interpreter(tmp_path: Path) -> None:
    fake_virtualenv(tmp_path, "packs")
    assert ready_virtualenv(tmp_path, "packs") is None
    environment = pack_python_environment(tmp_path, "packs")
    assert environment.python == Path(sys.executable)
    assert environment.virtualenv is None


def test_the_import_path_puts_the_packs_own_libraries_first(tmp_path: Path) -> None:
    path = fake_virtualenv(tmp_path / "venvs", "mypack")
    library = tmp_path / "packs" / "mypack" / "actions" / "lib"
    library.mkdir(parents=True)
    environment = pack_python_environment(tmp_path / "venvs", "mypack", library_directory=library)
    assert environment.python == path / "bin" / "python"
    assert environment.virtualenv == path
    site_packages = path / "lib" / "python3.11" / "site-packages"
    assert environment.python_path[:3] == (COMPAT_DIR, site_packages, library)
    assert list(environment.python_path[3:-1]) == engine_python_path()
    assert environment.python_path[-1] == FALLBACK_DIR
    assert environment.pythonpath.split(":")[:3] == [
        str(COMPAT_DIR),
        str(site_packages),
        str(library),
    ]
    assert environment.path_variable("/usr/bin:/bin") == f"{path / 'bin'}:/usr/bin:/bin"


def test_without_a_virtualenv_the_engine_runs_the_code(tmp_path: Path) -> None:
    environment = pack_python_environment(None, "mypack", library_directory=tmp_path / "missing")
    assert environment.python == Path(sys.executable)
    assert environment.python_path[0] == COMPAT_DIR
    assert tmp_path / "missing" not in environment.python_path
    assert environment.path_variable("/usr/bin") == "/usr/bin"


def test_the_engines_path_reaches_poundcake_but_not_the_standard_library() -> None:
    paths = engine_python_path()
    assert Path(poundcake.__file__).resolve().parents[1] in paths
    assert Path(json.__file__).resolve().parent not in paths


@pytest.mark.parametrize(
    ("pack", "problem"),
    [
        ("Bad-Name", 'Invalid pack name "Bad-Name"'),
        ("core", 'Pack "core" is a system pack'),
        ("absent", 'Pack "absent" is not installed'),
    ],
)
def test_setup_refuses_packs_that_cannot_have_a_virtualenv(
    tmp_path: Path, pack: str, problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        check_virtualenv_request(VirtualenvRequest(pack, tmp_path / pack))


def test_the_packs_common_library_comes_first_when_enabled(tmp_path: Path) -> None:
    pack_path = tmp_path / "packs" / "mypack"
    (pack_path / "lib").mkdir(parents=True)
    conf = tmp_path / "st2.conf"
    conf.write_text("[packs]\nenable_common_libs = True\n")
    enabled = common_library(load_st2_config(conf), pack_path)
    assert enabled == pack_path / "lib"
    conf.write_text("[packs]\n")
    assert common_library(load_st2_config(conf), pack_path) is None
    venv = fake_virtualenv(tmp_path / "venvs", "mypack")
    environment = pack_python_environment(tmp_path / "venvs", "mypack", common_library=enabled)
    site_packages = venv / "lib" / "python3.11" / "site-packages"
    assert environment.python_path[:3] == (COMPAT_DIR, pack_path / "lib", site_packages)


def test_a_virtualenv_of_another_python_is_not_used(tmp_path: Path) -> None:
    path = fake_virtualenv(tmp_path, "mypack")
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    (path / "pyvenv.cfg").write_text(f"home = /usr/bin\nversion = {ours}.1\n")
    assert ready_virtualenv(tmp_path, "mypack") == path
    (path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 2.7.18\n")
    with pytest.raises(
        VirtualenvError, match=f"made with Python 2.7, and the engine runs Python {ours}"
    ):
        ready_virtualenv(tmp_path, "mypack")
