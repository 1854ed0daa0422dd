"""The ``poundcake_alerts`` table: one row per alert episode (fingerprint + startsAt)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from poundcake.db.base import MYSQL_TABLE_OPTIONS, Base
from poundcake.db.types import IdType, JSONType, UTCDateTime


class Alert(Base):
    """An alert episode with its labels, what Alertmanager last said of it (``firing`` or
    ``resolved``: ``alertmanager_status``) and where its remediation is (``state``)."""

    __tablename__ = "poundcake_alerts"
    __table_args__ = (
        sa.UniqueConstraint("fingerprint", "starts_at"),
        sa.Index(None, "state", "updated_at"),
        # The guards' global storm count: new episodes in a window.
        sa.Index(None, "created_at"),
        MYSQL_TABLE_OPTIONS,
    )

    id: Mapped[str] = mapped_column(IdType(), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    alert_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    severity: Mapped[str | None] = mapped_column(sa.String(64))
    # The column keeps the name ``status`` that operators' queries use; in code it is
    # ``alertmanager_status``, so it is never mistaken for the episode's ``state``.
    alertmanager_status: Mapped[str] = mapped_column(
        "status", sa.String(16), key="alertmanager_status"
    )
    state: Mapped[str] = mapped_column(sa.String(32))
    labels: Mapped[dict[str, str]] = mapped_column(JSONType(), default=dict)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType(), default=dict)
    generator_url: Mapped[str | None] = mapped_column(sa.String(2048))
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    last_request_id: Mapped[str] = mapped_column(sa.String(64))
    request_ids: Mapped[list[str]] = mapped_column(JSONType(), default=list)
    delivery_count: Mapped[int] = mapped_column(sa.Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Remediation: which CAB (if any) took the episode, and its engine objects.
    cab_name: Mapped[str | None] = mapped_column(sa.String(255))
    dispatch_key: Mapped[str | None] = mapped_column(sa.String(64))
    trigger_instance_id: Mapped[str | None] = mapped_column(IdType())
    workflow_execution_id: Mapped[str | None] = mapped_column(IdType())
    state_reason: Mapped[str | None] = mapped_column(sa.Text)
    # Run safety (issue 21). Verification after a successful run: pending until the alert
    # resolves (verified) or ``verify_by`` passes while it fires (unverified).
    verification: Mapped[str | None] = mapped_column(sa.String(16), index=True)
    verify_by: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verification_reason: Mapped[str | None] = mapped_column(sa.Text)
    # The on_unverified CAB's run: asked for at (a claim, so only one worker asks), and its id.
    follow_up_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    follow_up_execution_id: Mapped[str | None] = mapped_column(IdType())
    # Crash-safe retries: how many abandoned runs were resumed, and the abandoned workflow whose
    # resumed run is being requested (set before the request, cleared once it is recorded).
    abandoned_retries: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    retry_of: Mapped[str | None] = mapped_column(IdType())
    retry_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AlertDelivery(Base):
    """One delivery of an alert episode by one request; also the outbox of work to do.

    Intake writes it in the transaction that stores the alert; a worker processes it once
    (``processed_at``), and the relay re-sends to Celery deliveries that stay unprocessed.
    """

    __tablename__ = "poundcake_alert_deliveries"
    __table_args__ = (sa.Index(None, "processed_at", "id"), MYSQL_TABLE_OPTIONS)

    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    alert_id: Mapped[str] = mapped_column(
        IdType(), sa.ForeignKey("poundcake_alerts.id", ondelete="CASCADE"), index=True
    )
    request_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    alertmanager_status: Mapped[str] = mapped_column(
        "status", sa.String(16), key="alertmanager_status"
    )
    notification_reason: Mapped[str | None] = mapped_column(sa.String(64))
    receiver: Mapped[str | None] = mapped_column(sa.String(255))
    group_key: Mapped[str | None] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    relayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str | None] = mapped_column(sa.Text)
