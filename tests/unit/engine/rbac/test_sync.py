"""``sync_definitions`` on SQLite through the engine's own migrations (prefixed layout): the
tables end up holding exactly the files; a second run changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.packs.errors import MetadataError
from poundcake.engine.rbac.definitions import load_definitions
from poundcake.engine.rbac.models import (
    GroupToRoleMappingDB,
    PermissionGrantDB,
    RoleDB,
    UserRoleAssignmentDB,
)
from poundcake.engine.rbac.service import (
    AssignmentFilters,
    list_assignments,
    list_roles,
    role_documents,
    role_names_for_user,
    user_rbac_document,
)
from poundcake.engine.rbac.sync import SyncReport, sync_definitions
from poundcake.ids import new_id
from tests.unit.engine.rbac.conftest import write


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sa.orm.sessionmaker[Session]]:
    conf = tmp_path / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = sqlite\ntable_prefix = st2_\n[system]\ndata_dir = {tmp_path}\n"
    )
    config = load_st2_config(conf)
    setup_engine_schema(config)
    db_engine = make_st2_engine(config, pool_size=1)
    yield make_session_factory(db_engine)
    db_engine.dispose()


def apply(sessions: sa.orm.sessionmaker[Session], directory: Path) -> SyncReport:
    definitions = load_definitions(directory)
    with unit_of_work(sessions) as session:
        return sync_definitions(session=session, definitions=definitions)


def test_system_roles_exist_after_migration(sessions: sa.orm.sessionmaker[Session]) -> None:
    with sessions() as session:
        _, roles = list_roles(session=session, system=True)
        assert [role.name for role in roles] == ["admin", "observer", "system_admin"]
        table = session.execute(sa.text("SELECT count(*) FROM st2_role_db")).scalar()
        assert table == 3


def test_applying_twice_changes_nothing_the_second_time(
    sessions: sa.orm.sessionmaker[Session], definitions_dir: Path
) -> None:
    first = apply(sessions, definitions_dir)
    assert first.roles.created == ["ops"]
    assert first.assignments.created == [
        "alice: ops (assignments/alice.yaml)",
        "alice: observer (assignments/alice.yaml)",
    ]
    assert first.mappings.created == ["sre"]
    with sessions() as session:
        before = {row.id for row in session.scalars(sa.select(PermissionGrantDB))}
        [ops] = list_roles(session=session, name="ops")[1]
        [document] = role_documents(session=session, roles=[ops])
    assert document["system"] is False
    assert document["permission_grant_objects"][0]["resource_uid"] == "pack:core"
    assert "resource_uid" not in document["permission_grant_objects"][2]
    second = apply(sessions, definitions_dir)
    assert not second.changed
    with sessions() as session:
        assert {row.id for row in session.scalars(sa.select(PermissionGrantDB))} == before


def test_changes_and_removals_follow_the_files(
    sessions: sa.orm.sessionmaker[Session], definitions_dir: Path
) -> None:
    apply(sessions, definitions_dir)
    with unit_of_work(sessions) as session:
        # Not from a file: an assignment made through the API and a remote (group) one.
        for source, remote in (("API", False), ("mappings/sre.yaml", True)):
            session.add(
                UserRoleAssignmentDB(
                    id=new_id(), user="carol", role="ops", source=source, is_remote=remote
                )
            )
    write(
        definitions_dir / "roles" / "ops.yaml",
        "name: ops\ndescription: Operators\npermission_grants:\n"
        "  - permission_types: [rule_list]\n",
    )
    write(
        definitions_dir / "assignments" / "alice.yaml",
        "username: alice\ndescription: day shift\nroles: [ops]\n",
    )
    (definitions_dir / "mappings" / "sre.yaml").unlink()
    report = apply(sessions, definitions_dir)
    assert report.roles.updated == ["ops"]
    assert report.assignments.updated == ["alice: ops (assignments/alice.yaml)"]
    assert report.assignments.removed == ["alice: observer (assignments/alice.yaml)"]
    assert report.mappings.removed == ["sre"]
    with sessions() as session:
        [grant] = session.scalars(sa.select(PermissionGrantDB)).all()
        assert grant.permission_types == ["rule_list"]
        assert session.scalars(sa.select(GroupToRoleMappingDB)).all() == []
        _, carol = list_assignments(session=session, filters=AssignmentFilters(user="carol"))
        assert sorted(row.source for row in carol) == ["API", "mappings/sre.yaml"]
        assert role_names_for_user(session=session, user="alice") == ["ops"]
    (definitions_dir / "assignments" / "alice.yaml").unlink()
    (definitions_dir / "roles" / "ops.yaml").unlink()
    report = apply(sessions, definitions_dir)
    assert report.roles.removed == ["ops"]
    with sessions() as session:
        assert session.scalars(sa.select(PermissionGrantDB)).all() == []
        names = sorted(role.name for role in session.scalars(sa.select(RoleDB)))
        assert names == ["admin", "observer", "system_admin"]
        _, left = list_assignments(session=session, filters=AssignmentFilters())
        assert sorted(row.source for row in left) == ["API", "mappings/sre.yaml"]


def test_user_document_lists_roles_only_with_rbac_on(
    sessions: sa.orm.sessionmaker[Session], definitions_dir: Path
) -> None:
    apply(sessions, definitions_dir)
    with sessions() as session:
        assert user_rbac_document(session=session, user="alice", enabled=False) == {
            "enabled": False,
            "roles": [],
            "is_admin": True,
        }
        assert user_rbac_document(session=session, user="alice", enabled=True) == {
            "enabled": True,
            "roles": ["observer", "ops"],
            "is_admin": False,
        }


def test_names_match_without_case_as_mariadb_compares_them(
    sessions: sa.orm.sessionmaker[Session], definitions_dir: Path
) -> None:
    apply(sessions, definitions_dir)
    text = (definitions_dir / "roles" / "ops.yaml").read_text()
    (definitions_dir / "roles" / "ops.yaml").write_text(text.replace("name: ops", "name: Ops"))
    write(
        definitions_dir / "assignments" / "alice.yaml",
        "username: Alice\ndescription: on call\nroles: [Ops, observer]\n",
    )
    write(definitions_dir / "mappings" / "sre.yaml", "group: SRE\nroles: [Ops]\nenabled: false\n")
    report = apply(sessions, definitions_dir)
    assert report.roles.updated == ["Ops"]
    assert report.assignments.updated == [
        "Alice: Ops (assignments/alice.yaml)",
        "Alice: observer (assignments/alice.yaml)",
    ]
    assert report.assignments.created == []
    assert report.mappings.updated == ["SRE"]
    with sessions() as session:
        assert [role.name for role in list_roles(session=session, system=False)[1]] == ["Ops"]
    write(definitions_dir / "roles" / "ops2.yaml", "name: OPS\n")
    with pytest.raises(MetadataError, match=r'role "OPS" is already defined in ops\.yaml'):
        load_definitions(definitions_dir)
