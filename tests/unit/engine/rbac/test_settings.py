"""``[rbac]`` is read as StackStorm names it; ``enable`` runs with the ``default`` backend, and
what is not built (isolation, remote groups) or would enforce nothing (``enable`` on ``noop``)
stops every engine service with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from poundcake.config import STACKSTORM_BASE_PATH, load_st2_config
from poundcake.config_unread import unread_st2_settings
from poundcake.engine.rbac.settings import refuse_unenforced_rbac
from poundcake.exceptions import ConfigurationError


def conf(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "st2.conf"
    path.write_text(f"[database]\nbackend = sqlite\n[system]\ndata_dir = {tmp_path}\n{text}")
    return path


def test_defaults_are_stackstorms_and_run(tmp_path: Path) -> None:
    config = load_st2_config(conf(tmp_path, ""))
    assert (config.rbac.enable, config.rbac.backend) == (False, "noop")
    assert config.rbac_definitions_dir == tmp_path / "rbac"
    refuse_unenforced_rbac(config)


def test_every_rbac_setting_is_read(tmp_path: Path) -> None:
    text = (
        "[rbac]\nenable = False\nbackend = default\npermission_isolation = False\n"
        "sync_remote_groups = False\n"
    )
    config = load_st2_config(conf(tmp_path, text))
    assert config.rbac.backend == "default"
    assert unread_st2_settings(config.sections) == []
    refuse_unenforced_rbac(config)


def test_definitions_live_under_base_path(tmp_path: Path) -> None:
    path = tmp_path / "st2.conf"
    path.write_text(f"[database]\nbackend = sqlite\n[system]\nbase_path = {tmp_path}/opt\n")
    assert load_st2_config(path).rbac_definitions_dir == tmp_path / "opt" / "rbac"
    assert Path("/opt/stackstorm/rbac") == STACKSTORM_BASE_PATH / "rbac"


def test_enable_runs_with_the_default_backend(tmp_path: Path) -> None:
    config = load_st2_config(conf(tmp_path, "[rbac]\nenable = True\nbackend = default\n"))
    assert config.rbac.enable
    refuse_unenforced_rbac(config)


def test_enable_on_the_noop_backend_is_refused(tmp_path: Path) -> None:
    path = conf(tmp_path, "[rbac]\nenable = True\n")
    with pytest.raises(ConfigurationError) as raised:
        refuse_unenforced_rbac(load_st2_config(path))
    assert str(raised.value).startswith(
        f"[rbac] backend in {path}: enable = True needs backend = default"
    )


@pytest.mark.parametrize("name", ["permission_isolation", "sync_remote_groups"])
def test_what_is_not_built_is_refused(tmp_path: Path, name: str) -> None:
    path = conf(tmp_path, f"[rbac]\nenable = True\nbackend = default\n{name} = True\n")
    with pytest.raises(ConfigurationError) as raised:
        refuse_unenforced_rbac(load_st2_config(path))
    assert str(raised.value).startswith(f"[rbac] {name} in {path}: True is not supported yet")


def test_an_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\[rbac\] backend"):
        load_st2_config(conf(tmp_path, "[rbac]\nbackend = ldap\n"))
