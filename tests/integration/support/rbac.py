"""Giving a user RBAC roles as an operator does: an assignment file, then
``st2-apply-rbac-definitions``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from poundcake.config import load_st2_config
from tests.integration.support.commands import command_environment, run_command


def assign_roles(config_path: Path, user: str, roles: Sequence[str]) -> None:
    """Write ``assignments/<user>.yaml`` with ``roles`` into the engine's RBAC definitions and
    apply them; raises if the command fails."""
    root = load_st2_config(config_path).rbac_definitions_dir
    for folder in ("roles", "assignments", "mappings"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    listed = ", ".join(roles)
    (root / "assignments" / f"{user}.yaml").write_text(f"username: {user}\nroles: [{listed}]\n")
    applied = run_command(
        "st2-apply-rbac-definitions",
        "--config-file",
        str(config_path),
        env=command_environment(config_path.parent),
    )
    if applied.returncode != 0:
        raise RuntimeError(f"st2-apply-rbac-definitions failed: {applied.stdout}{applied.stderr}")
