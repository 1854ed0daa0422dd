"""The ``role_db``, ``permission_grant_db``, ``user_role_assignment_db`` and
``group_to_role_mapping_db`` tables, with StackStorm's field names.

As in StackStorm, a role lists the ids of its permission grants and an assignment names its
role; ``st2-apply-rbac-definitions`` keeps them consistent.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import ENGINE_TABLE_ARGS, Base
from poundcake.db.types import IdType, JSONType


class RoleDB(Base):
    """A role: a system role (``system_admin``, ``admin``, ``observer``) or one from a file."""

    __tablename__ = "role_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(255), unique=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    system: Mapped[bool] = mapped_column(sa.Boolean, default=False, index=True)
    permission_grants: Mapped[list[str]] = mapped_column(JSONType(), default=list)


class PermissionGrantDB(Base):
    """Permission types granted on one resource (``resource_uid``), or globally (no uid)."""

    __tablename__ = "permission_grant_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    resource_uid: Mapped[str | None] = mapped_column(sa.String(767), index=True)
    resource_type: Mapped[str | None] = mapped_column(sa.String(64))
    permission_types: Mapped[list[str]] = mapped_column(JSONType(), default=list)


class UserRoleAssignmentDB(Base):
    """One role given to one user; ``source`` is the file (``assignments/x.yaml``) or ``API``,
    ``is_remote`` marks assignments made from the user's remote groups at login."""

    __tablename__ = "user_role_assignment_db"
    __table_args__ = (sa.UniqueConstraint("user", "role", "source"), ENGINE_TABLE_ARGS)

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    user: Mapped[str] = mapped_column(sa.String(255), index=True)
    role: Mapped[str] = mapped_column(sa.String(255), index=True)
    source: Mapped[str] = mapped_column(sa.String(255), index=True)
    description: Mapped[str | None] = mapped_column(sa.Text)
    is_remote: Mapped[bool] = mapped_column(sa.Boolean, default=False)


class GroupToRoleMappingDB(Base):
    """The roles every member of a remote authentication group gets."""

    __tablename__ = "group_to_role_mapping_db"
    __table_args__ = ENGINE_TABLE_ARGS

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    group: Mapped[str] = mapped_column(sa.String(255), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    source: Mapped[str | None] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    enabled: Mapped[bool] = mapped_column(sa.Boolean, default=True)
