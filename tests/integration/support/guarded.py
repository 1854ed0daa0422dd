"""The guard step's database without the engine's processes: PoundCake's and the engine's
schemas on one database, a CAB applied as ``poundcake cabs apply`` leaves it, firing episodes
with their deliveries (for tests of the dispatch stage's decision)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import DatabaseTarget, PoundCakeConfig, Settings, load_st2_config
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.migrate import setup_engine_schema, setup_poundcake_schema
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.public import RuleDB
from poundcake.ids import new_id
from poundcake.remediation.alerts.models import AlertDelivery
from poundcake.remediation.cabs.definition import Cab
from poundcake.remediation.cabs.models import RuleExtension
from poundcake.remediation.cabs.pack import rule_criteria
from tests import factories


@contextmanager
def schema_sessions(tmp_path: Path, st2_conf: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on the database ``st2_conf`` names, both schemas set up there."""
    st2 = load_st2_config(st2_conf)
    setup_engine_schema(st2)
    settings = Settings(_env_file=None, POUNDCAKE_DATA_DIR=str(tmp_path / "data"))  # type: ignore[call-arg]
    config = PoundCakeConfig(
        settings=settings,
        database=DatabaseTarget(url=st2.database.url, setting="test"),
        engine_database=st2.database,
    )
    setup_poundcake_schema(config)
    db_engine = make_poundcake_engine(config)
    try:
        yield make_session_factory(db_engine)
    finally:
        db_engine.dispose()


def apply_cab(sessions: sessionmaker[Session], cab: Cab) -> None:
    """The CAB's rule and rule extension, as ``poundcake cabs apply`` leaves them."""
    now = datetime.now(UTC)
    rule_id = new_id()
    with unit_of_work(sessions) as session:
        session.add(
            RuleDB(
                id=rule_id,
                uid=f"rule:poundcake_cabs:{cab.name}",
                ref=f"poundcake_cabs.{cab.name}",
                name=cab.name,
                pack="poundcake_cabs",
                enabled=True,
                trigger="poundcake.alert",
                criteria=rule_criteria(cab),
                action={"ref": f"poundcake_cabs.{cab.name}"},
                action_ref=f"poundcake_cabs.{cab.name}",
            )
        )
        session.flush()
        session.add(
            RuleExtension(
                id=new_id(),
                st2_rule_id=rule_id,
                cab_name=cab.name,
                alert_name_pattern=cab.alert_name_pattern,
                severity_filter=[],
                stop_on_first_failure=True,
                steps=[step.document() for step in cab.steps],
                guards=cab.guards.document(),
                is_active=True,
                created_at=now,
                updated_at=now,
            )
        )


def firing_episode(
    sessions: sessionmaker[Session], alert_name: str, instance: str, severity: str | None = None
) -> tuple[str, int]:
    """A new firing episode with one unprocessed delivery: (alert id, delivery id)."""
    identifier = uuid.uuid4().hex[:24]
    labels = {"alertname": alert_name, "instance": instance}
    if severity is not None:
        labels["severity"] = severity
    with unit_of_work(sessions) as session:
        session.add(
            factories.alert(
                id=identifier,
                fingerprint=uuid.uuid4().hex[:16],
                alert_name=alert_name,
                severity=severity,
                labels=labels,
            )
        )
        delivery = AlertDelivery(
            alert_id=identifier,
            request_id=f"req-{identifier[:8]}",
            alertmanager_status="firing",
            received_at=datetime.now(UTC),
            attempts=0,
        )
        session.add(delivery)
        session.flush()
        return identifier, delivery.id
