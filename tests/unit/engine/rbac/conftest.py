from __future__ import annotations

from pathlib import Path

import pytest


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


OPS_ROLE = """\
name: ops
description: Operators
permission_grants:
  - resource_uid: "pack:core"
    permission_types: [action_execute, action_view]
  - resource_uid: "action:linux:check_loadavg"
    permission_types: [action_view]
  - permission_types: [action_list, execution_list, stream_view]
"""


@pytest.fixture
def definitions_dir(tmp_path: Path) -> Path:
    """A definitions directory with one role, one user's assignments and one group mapping."""
    root = tmp_path / "rbac"
    write(root / "roles" / "ops.yaml", OPS_ROLE)
    write(
        root / "assignments" / "alice.yaml",
        "username: alice\ndescription: on call\nroles: [ops, observer]\n",
    )
    write(root / "mappings" / "sre.yaml", "group: sre\nroles: [ops]\nenabled: false\n")
    return root
