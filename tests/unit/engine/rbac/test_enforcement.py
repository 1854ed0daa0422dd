"""Reading a user's permissions on SQLite through the engine's migrations: the roles of the
user's assignments (roles that do not exist give nothing) and their grants, in two queries."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.migrate import setup_engine_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.rbac.definitions import load_definitions
from poundcake.engine.rbac.enforcement import load_user_permissions
from poundcake.engine.rbac.models import UserRoleAssignmentDB
from poundcake.engine.rbac.resolvers import Grant
from poundcake.engine.rbac.sync import sync_definitions
from poundcake.ids import new_id
from tests.unit.engine.rbac.conftest import write


@pytest.fixture
def db_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    conf = tmp_path / "st2.conf"
    conf.write_text(f"[database]\nbackend = sqlite\n[system]\ndata_dir = {tmp_path}\n")
    config = load_st2_config(conf)
    setup_engine_schema(config)
    engine = make_st2_engine(config, pool_size=1)
    yield engine
    engine.dispose()


def test_roles_and_grants_in_two_queries(db_engine: sa.Engine, tmp_path: Path) -> None:
    root = tmp_path / "rbac"
    write(
        root / "roles" / "ops.yaml",
        "name: ops\npermission_grants:\n"
        "  - resource_uid: pack:core\n    permission_types: [action_execute]\n"
        "  - permission_types: [execution_list]\n",
    )
    write(root / "assignments" / "alice.yaml", "username: alice\nroles: [ops, observer]\n")
    (root / "mappings").mkdir()
    sessions = make_session_factory(db_engine)
    with unit_of_work(sessions) as session:
        sync_definitions(session=session, definitions=load_definitions(root))
        session.add(
            UserRoleAssignmentDB(
                id=new_id(), user="alice", role="gone", source="API", is_remote=False
            )
        )
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    sa.event.listen(db_engine, "before_cursor_execute", count)
    with sessions() as session:
        alice = load_user_permissions(session, "alice")
        nobody = load_user_permissions(session, "nobody")
    sa.event.remove(db_engine, "before_cursor_execute", count)
    assert alice.roles == {"ops", "observer"}
    assert set(alice.grants) == {
        Grant("pack:core", "pack", frozenset({"action_execute"})),
        Grant(None, None, frozenset({"execution_list"})),
    }
    assert not alice.is_admin and alice.has_system_role
    assert (nobody.roles, nobody.grants) == (frozenset(), ())
    # Two for alice (roles, grants); one for a user with no role.
    assert len(statements) == 3, statements
