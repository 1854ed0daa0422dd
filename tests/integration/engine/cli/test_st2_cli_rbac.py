"""RBAC definitions through ``st2-apply-rbac-definitions`` on MariaDB, read back with the
official CLI (``st2 role list|get``, ``st2 role-assignment list|get``, ``st2 whoami``) and the
API (``/v1/rbac/permission_types``) with RBAC off; and every engine service refusing the RBAC
settings it cannot honour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from poundcake.cli.st2ctl_services import engine_services
from poundcake.config import load_st2_config
from tests.integration.support.commands import command_environment, run_command
from tests.integration.support.mariadb import admin_sql
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    listing,
    logged_in,
    ok,
    output,
    running_engine,
)

pytestmark = pytest.mark.integration

ROLES = {
    "ops.yaml": """\
name: ops
description: Operators
permission_grants:
  - resource_uid: "pack:core"
    permission_types: [action_execute, action_view]
  - permission_types: [execution_list, stream_view]
""",
    "auditor.yaml": """\
name: auditor
permission_grants:
  - resource_uid: "execution:5f0c2b1e9d3a4c0012345678"
    permission_types: [execution_view]
""",
}
ASSIGNMENTS = {
    "alice.yaml": "username: alice\ndescription: on call\nroles: [ops, observer]\n",
    "bob.yaml": "username: bob\nroles: [auditor]\n",
}
MAPPINGS = {"sre.yaml": "group: sre\nroles: [ops]\n"}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    directory = tmp_path_factory.mktemp("rbac")
    with running_engine(directory, services=("st2api", "st2auth")) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine) -> St2:
    return logged_in(engine, engine.directory / "home")


def definitions(engine: RunningEngine) -> Path:
    """The definitions directory: ``<data_dir>/rbac`` without ``[system] base_path``."""
    return engine.directory / "data" / "rbac"


def write_definitions(root: Path) -> None:
    for folder, files in (("roles", ROLES), ("assignments", ASSIGNMENTS), ("mappings", MAPPINGS)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (root / folder / name).write_text(text)


def apply(engine: RunningEngine, *args: str) -> Any:
    return run_command(
        "st2-apply-rbac-definitions",
        "--config-file",
        str(engine.config_path),
        *args,
        env=command_environment(engine.directory),
    )


@pytest.fixture(scope="module")
def applied(engine: RunningEngine) -> Path:
    root = definitions(engine)
    missing = apply(engine)
    assert missing.returncode == 1
    assert f"{root}: the RBAC definitions directory does not exist" in missing.stderr
    write_definitions(root)
    first = apply(engine, "-v")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Roles: 2 created, 0 updated, 0 removed" in first.stdout
    assert "Role assignments: 3 created, 0 updated, 0 removed" in first.stdout
    assert "Group to role mappings: 1 created, 0 updated, 0 removed" in first.stdout
    assert "created: alice: observer (assignments/alice.yaml)" in first.stdout
    second = apply(engine)
    assert second.returncode == 0, second.stderr
    assert "are already applied" in second.stdout
    assert "nothing to do" in second.stdout
    return root


def test_roles_through_the_cli(st2: St2, applied: Path) -> None:
    roles = {row["name"]: row for row in ok(st2("role", "list", "-j"))}
    assert set(roles) == {"system_admin", "admin", "observer", "ops", "auditor"}
    assert roles["admin"]["system"] is True
    assert roles["ops"]["system"] is False
    system = ok(st2("role", "list", "-s", "-j"))
    assert sorted(row["name"] for row in system) == ["admin", "observer", "system_admin"]
    table = st2("role", "list")
    assert table.returncode == 0 and "Operators" in table.stdout, output(table)
    ops = ok(st2("role", "get", "ops", "-j"))
    assert ops["description"] == "Operators"
    grants = ops["permission_grant_objects"]
    assert [grant.get("resource_uid") for grant in grants] == ["pack:core", None]
    assert grants[0]["resource_type"] == "pack"
    assert grants[0]["permission_types"] == ["action_execute", "action_view"]
    assert ops["permission_grants"] == [grant["id"] for grant in grants]
    by_id = ok(st2("role", "get", ops["id"], "-j"))
    assert by_id["name"] == "ops"
    missing = st2("role", "get", "nobody")
    assert missing.returncode != 0
    assert 'Role "nobody" is not found' in output(missing)


def test_role_assignments_through_the_cli(engine: RunningEngine, st2: St2, applied: Path) -> None:
    admin_sql(
        "INSERT INTO user_role_assignment_db (id, user, role, source, description, is_remote) "
        "VALUES ('5f0000000000000000000001', 'carol', 'ops', 'mappings/sre.yaml', "
        "'from group sre', 1)",
        database=engine_database(engine),
    )
    every = listing(st2("role-assignment", "list", "-j"))
    assert {(row["user"], row["role"]) for row in every} == {
        ("alice", "ops"),
        ("alice", "observer"),
        ("bob", "auditor"),
        ("carol", "ops"),
    }
    alice = listing(st2("role-assignment", "list", "-u", "alice", "-j"))
    assert sorted(row["role"] for row in alice) == ["observer", "ops"]
    assert {row["source"] for row in alice} == {"assignments/alice.yaml"}
    assert {row["description"] for row in alice} == {"on call"}
    ops = listing(st2("role-assignment", "list", "-r", "ops", "-j"))
    assert sorted(row["user"] for row in ops) == ["alice", "carol"]
    by_source = listing(st2("role-assignment", "list", "-s", "assignments/bob.yaml", "-j"))
    assert [(row["user"], row["role"]) for row in by_source] == [("bob", "auditor")]
    remote = listing(st2("role-assignment", "list", "--remote", "-j"))
    assert [(row["user"], row["is_remote"]) for row in remote] == [("carol", True)]
    assert listing(st2("role-assignment", "list", "-u", "nobody", "-j")) == []
    one = ok(st2("role-assignment", "get", by_source[0]["id"], "-j"))
    assert one == by_source[0]
    missing = st2("role-assignment", "get", "5f00000000000000000000ff")
    assert missing.returncode != 0


def test_permission_types_and_whoami(engine: RunningEngine, st2: St2) -> None:
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    every = httpx.get(f"{engine.api_url}/rbac/permission_types", headers=headers, timeout=30)
    assert every.status_code == 200
    assert every.json()["webhook"]["webhook_send"] == (
        "Ability to send / POST data to an existing webhook."
    )
    action = httpx.get(
        f"{engine.api_url}/rbac/permission_types/action", headers=headers, timeout=30
    )
    assert list(action.json()) == [
        "action_list",
        "action_view",
        "action_create",
        "action_modify",
        "action_delete",
        "action_execute",
        "action_all",
    ]
    unknown = httpx.get(
        f"{engine.api_url}/rbac/permission_types/planet", headers=headers, timeout=30
    )
    assert unknown.status_code == 404
    assert unknown.json() == {"faultstring": "Invalid resource type: planet"}
    anonymous = httpx.get(f"{engine.api_url}/rbac/roles", timeout=30)
    assert anonymous.status_code == 401
    whoami = st2("whoami")
    assert whoami.returncode == 0, output(whoami)
    user = httpx.get(f"{engine.api_url}/user", headers=headers, timeout=30).json()
    assert user["rbac"] == {"enabled": False, "roles": [], "is_admin": True}


def test_a_bad_file_applies_nothing_and_a_removed_file_removes_its_roles(
    engine: RunningEngine, st2: St2, applied: Path
) -> None:
    (applied / "roles" / "ops.yaml").write_text(
        "name: ops\npermission_grants:\n  - resource_uid: 'rule:core:x'\n"
        "    permission_types: [rule_view, action_execute]\n"
    )
    (applied / "assignments" / "bob.yaml").unlink()
    bad = apply(engine)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith(
        f"error: {applied}/roles/ops.yaml: permission_grants.0.permission_types.1: invalid "
        'permission type "action_execute" for resource type "rule"'
    ), bad.stderr
    assert "bob" in {row["user"] for row in listing(st2("role-assignment", "list", "-j"))}
    assert ok(st2("role", "get", "ops", "-j"))["description"] == "Operators"
    (applied / "roles" / "ops.yaml").write_text(ROLES["ops.yaml"])
    (applied / "roles" / "auditor.yaml").unlink()
    fixed = apply(engine)
    assert fixed.returncode == 0, fixed.stderr
    assert "Roles: 0 created, 0 updated, 1 removed" in fixed.stdout
    assert "Role assignments: 0 created, 0 updated, 1 removed" in fixed.stdout
    names = {row["name"] for row in ok(st2("role", "list", "-j"))}
    assert names == {"system_admin", "admin", "observer", "ops"}
    users = {row["user"] for row in listing(st2("role-assignment", "list", "-j"))}
    assert users == {"alice", "carol"}


def test_every_engine_service_refuses_rbac_it_cannot_honour(
    engine: RunningEngine, applied: Path
) -> None:
    """``enable`` on the ``noop`` backend (which would check nothing) and ``permission_isolation``
    (not built) stop every process st2ctl starts, naming the setting."""
    env = command_environment(engine.directory)
    names = [spec.name for spec in engine_services(load_st2_config(engine.config_path))]
    assert len(names) == 11
    for setting, expected in (
        ("enable = True\n", "[rbac] backend in {conf}: enable = True needs backend = default"),
        (
            "enable = True\nbackend = default\npermission_isolation = True\n",
            "[rbac] permission_isolation in {conf}: True is not supported yet",
        ),
    ):
        conf = engine.directory / "st2-rbac-refused.conf"
        conf.write_text(engine.config_path.read_text() + "\n[rbac]\n" + setting)
        for command in [(name,) for name in names] + [("st2ctl", "start")]:
            result = run_command(*command, "--config-file", str(conf), env=env)
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            assert result.stderr.startswith("error: " + expected.format(conf=conf)), (
                command,
                result.stderr,
            )
    # Definitions apply whatever the switches say.
    definitions_on = run_command("st2-apply-rbac-definitions", "--config-file", str(conf), env=env)
    assert definitions_on.returncode == 0, definitions_on.stderr
    assert "nothing to do" in definitions_on.stdout


def engine_database(engine: RunningEngine) -> str:
    for line in engine.config_path.read_text().splitlines():
        if line.startswith("db_name = "):
            return line.removeprefix("db_name = ")
    raise AssertionError("no db_name in st2.conf")
