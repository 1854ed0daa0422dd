"""RBAC definition files are read as StackStorm's st2-rbac-backend reads them, and every
problem names the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from poundcake.engine.packs.errors import MetadataError
from poundcake.engine.rbac.definitions import GrantDefinition, load_definitions
from poundcake.engine.rbac.types import GLOBAL_PERMISSION_TYPES, PERMISSION_TYPES
from poundcake.exceptions import ValidationError
from tests.unit.engine.rbac.conftest import write


def test_roles_assignments_and_mappings_are_read(definitions_dir: Path) -> None:
    definitions = load_definitions(definitions_dir)
    [role] = definitions.roles
    assert (role.name, role.description, role.source) == ("ops", "Operators", "roles/ops.yaml")
    assert role.grants == (
        GrantDefinition("pack:core", "pack", ("action_execute", "action_view")),
        GrantDefinition("action:linux:check_loadavg", "action", ("action_view",)),
        GrantDefinition(None, None, ("action_list", "execution_list", "stream_view")),
    )
    [assignment] = definitions.assignments
    assert assignment.username == "alice"
    assert assignment.roles == ("ops", "observer")
    assert assignment.source == "assignments/alice.yaml"
    [mapping] = definitions.mappings
    assert (mapping.group, mapping.roles, mapping.enabled) == ("sre", ("ops",), False)


def test_disabled_roles_and_assignments_are_skipped(definitions_dir: Path) -> None:
    write(definitions_dir / "roles" / "old.yaml", "name: old\nenabled: false\n")
    write(
        definitions_dir / "assignments" / "bob.yaml",
        "username: bob\nenabled: false\nroles: [old]\n",
    )
    definitions = load_definitions(definitions_dir)
    assert [role.name for role in definitions.roles] == ["ops"]
    assert [a.username for a in definitions.assignments] == ["alice"]


@pytest.mark.parametrize(
    ("folder", "text", "expected"),
    [
        ("roles", "name: x\ncolour: red\n", "roles/bad.yaml: colour: is not a known field"),
        ("roles", "description: no name\n", "roles/bad.yaml: name: is required"),
        (
            "roles",
            "name: x\npermission_grants:\n  - resource_uid: 'action:core:local'\n"
            "    permission_types: [action_view, rule_view]\n",
            "roles/bad.yaml: permission_grants.0.permission_types.1: invalid permission type "
            '"rule_view" for resource type "action"',
        ),
        (
            "roles",
            "name: x\npermission_grants:\n  - permission_types: [action_execute]\n",
            'roles/bad.yaml: permission_grants.0.permission_types.0: "action_execute" needs a '
            "resource_uid",
        ),
        (
            "roles",
            "name: x\npermission_grants:\n  - resource_uid: 'planet:earth'\n"
            "    permission_types: [action_view]\n",
            'roles/bad.yaml: permission_grants.0.resource_uid: unknown resource type "planet"',
        ),
        (
            "roles",
            "name: x\npermission_grants:\n  - resource_uid: core\n",
            'roles/bad.yaml: permission_grants.0.resource_uid: invalid uid "core"',
        ),
        (
            "roles",
            "name: x\npermission_grants:\n  - permission_types: [action_fly]\n",
            'permission_grants.0.permission_types.0: unknown permission type "action_fly"',
        ),
        (
            "roles",
            "name: x\npermission_grants:\n  - permission_types: [pack_list, pack_list]\n",
            'permission_grants.0.permission_types.1: "pack_list" is listed twice',
        ),
        ("roles", "name: admin\n", 'roles/bad.yaml: name: "admin" is a system role'),
        ("roles", "", "roles/bad.yaml: is empty"),
        ("roles", "name: [unclosed\n", "roles/bad.yaml: is not valid YAML"),
        ("roles", "- a list\n", "roles/bad.yaml: must be a mapping"),
        ("assignments", "username: bob\n", "assignments/bad.yaml: roles: is required"),
        ("assignments", "roles: [ops]\n", "assignments/bad.yaml: username: is required"),
        (
            "assignments",
            "username: bob\nroles: [ops, nobody]\n",
            'assignments/bad.yaml: roles.1: role "nobody" does not exist',
        ),
        ("assignments", "username: bob\nroles: ops\n", "roles: must be a list"),
        ("mappings", "roles: [ops]\n", "mappings/bad.yaml: group: is required"),
        ("mappings", "group: g\nroles: [gone]\n", 'roles.0: role "gone" does not exist'),
        ("mappings", "group: g\nroles: [ops]\nenabled: maybe\n", "enabled: must be true"),
    ],
)
def test_a_bad_file_is_named_with_its_field(
    definitions_dir: Path, folder: str, text: str, expected: str
) -> None:
    write(definitions_dir / folder / "bad.yaml", text)
    with pytest.raises(MetadataError) as raised:
        load_definitions(definitions_dir)
    assert str(definitions_dir / folder) in str(raised.value)
    assert expected in str(raised.value)


def test_one_definition_per_role_user_and_group(definitions_dir: Path) -> None:
    write(definitions_dir / "roles" / "ops2.yaml", "name: ops\n")
    with pytest.raises(MetadataError, match=r'ops2.yaml: role "ops" is already defined in ops'):
        load_definitions(definitions_dir)


def test_a_missing_directory_is_refused_rather_than_read_as_empty(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="definitions directory does not exist"):
        load_definitions(tmp_path / "nowhere")


def test_the_vocabulary_is_stackstorms() -> None:
    assert len(PERMISSION_TYPES) == 17  # stream_view is global only
    assert list(PERMISSION_TYPES["execution"]) == [
        "execution_list",
        "execution_view",
        "execution_rerun",
        "execution_stop",
        "execution_all",
        "execution_views_filters_list",
    ]
    # A pack grant covers the pack's content: its actions, aliases, rules and sensors.
    assert {"action_execute", "rule_modify", "sensor_type_view"} <= set(PERMISSION_TYPES["pack"])
    assert "stream_view" in GLOBAL_PERMISSION_TYPES
    assert "rule_list" in GLOBAL_PERMISSION_TYPES
    assert "action_view" not in GLOBAL_PERMISSION_TYPES
