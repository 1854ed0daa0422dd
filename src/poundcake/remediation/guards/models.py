"""The guards' tables: the decision log, the per-CAB guard rows, target leases, breakers, members.

* ``poundcake_decisions``: one row per decision for an alert and a CAB (matched or not, held by
  what, run, shadow); budgets, cooldowns and blast radius are counted from it.
* ``poundcake_guard_rows``: one row per CAB (and one for the global storm), locked with
  ``SELECT ... FOR UPDATE`` while a decision for it is made, so two workers never decide for one
  CAB at once and a budget is never overrun.
* ``poundcake_target_locks``: a lease per target; it expires unless renewed while its run lives.
* ``poundcake_breakers``: one row per breaker scope (``global``, ``cab:<name>``,
  ``blast:<cab>:<group>``): when it last tripped, when it was reset.
* ``poundcake_guard_members``: the targets seen in each blast radius group (the group's size).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class Decision(Base):
    """One guard decision for one alert episode and one CAB."""

    __tablename__ = "poundcake_decisions"
    __table_args__ = (
        sa.Index(None, "cab_name", "decision", "group_key", "created_at"),
        sa.Index(None, "created_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    alert_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey("poundcake_alerts.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    cab_name: Mapped[str] = mapped_column(sa.String(255))
    # run | shadow | held | waiting | not_matched; after a run, verified | unverified.
    decision: Mapped[str] = mapped_column(sa.String(16))
    # What decided: admitted, match, flap, budget, cooldown, breaker, blast_radius, lock, shadow.
    reason: Mapped[str] = mapped_column(sa.String(32))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    group_key: Mapped[str] = mapped_column(sa.String(255), default="")
    target: Mapped[str | None] = mapped_column(sa.String(255))
    blast_group: Mapped[str | None] = mapped_column(sa.String(255))
    # Shadow mode: the steps with their rendered parameters (secrets masked).
    rendered: Mapped[Any] = mapped_column(JSONType(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GuardRow(Base):
    """The row a decision for one scope (a CAB, or the global storm) locks first."""

    __tablename__ = "poundcake_guard_rows"
    __table_args__ = MYSQL_TABLE_OPTIONS

    scope: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TargetLock(Base):
    """A lease on a target: one alert's run of one CAB remediates it until ``expires_at``."""

    __tablename__ = "poundcake_target_locks"
    __table_args__ = MYSQL_TABLE_OPTIONS

    target: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    alert_id: Mapped[str] = mapped_column(IdType(), index=True)
    cab_name: Mapped[str] = mapped_column(sa.String(255))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Breaker(Base):
    """A storm breaker or blast radius scope: open while it tripped within its quiet period."""

    __tablename__ = "poundcake_breakers"
    __table_args__ = MYSQL_TABLE_OPTIONS

    scope: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tripped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reset_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    trips: Mapped[int] = mapped_column(sa.Integer, default=0)
    reason: Mapped[str | None] = mapped_column(sa.Text)


class GuardMember(Base):
    """A target seen in a blast radius group; the group's size is its members seen lately."""

    __tablename__ = "poundcake_guard_members"
    __table_args__ = (sa.Index(None, "scope", "seen_at"), MYSQL_TABLE_OPTIONS)

    scope: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    member: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
