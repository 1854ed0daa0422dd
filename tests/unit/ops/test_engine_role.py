"""PoundCake's engine role: valid for the engine's own loader, only what PoundCake calls, and
nothing written with the engine's RBAC off."""

from __future__ import annotations

from pathlib import Path

from poundcake.config import load_st2_config
from poundcake.engine.rbac.definitions import load_definitions
from poundcake.ops.engine_role import (
    ROLE_NAME,
    assignment_file_text,
    grant_engine_role,
    role_file_text,
)


def written(directory: Path) -> Path:
    for folder in ("roles", "assignments", "mappings"):
        (directory / folder).mkdir(parents=True)
    (directory / "roles" / "poundcake.yaml").write_text(role_file_text())
    (directory / "assignments" / "poundcake.yaml").write_text(assignment_file_text("poundcake"))
    return directory


def test_the_role_and_assignment_load_as_st2_apply_rbac_definitions_reads_them(
    tmp_path: Path,
) -> None:
    definitions = load_definitions(written(tmp_path / "rbac"))
    [role] = definitions.roles
    [assignment] = definitions.assignments
    assert (assignment.username, assignment.roles) == ("poundcake", (ROLE_NAME,))
    granted = {
        (grant.resource_uid, kind) for grant in role.grants for kind in grant.permission_types
    }
    uids = {uid for uid, _ in granted}
    assert uids == {"webhook:st2", "pack:poundcake_cabs", "action:core:ask", None}
    kinds = {kind for _, kind in granted}
    for never in ("key_value_pair", "api_key", "stream", "pack_install", "policy", "_all"):
        assert not [kind for kind in kinds if never in kind], never
    assert ("action:core:ask", "action_execute") in granted
    assert {kind for uid, kind in granted if uid == "pack:poundcake_cabs"} >= {
        "action_execute",
        "rule_modify",
    }


def test_with_rbac_off_nothing_is_written(tmp_path: Path) -> None:
    config_path = tmp_path / "st2.conf"
    config_path.write_text(
        f"[database]\nbackend = sqlite\n\n[system]\ndata_dir = {tmp_path / 'data'}\n"
    )
    config = load_st2_config(config_path)
    assert grant_engine_role(config, "poundcake") is None
    assert not config.rbac_definitions_dir.exists()
