"""The datastore service on real databases: MariaDB (scratch database) and SQLite."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import St2Config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.db.types import utcnow
from poundcake.engine.keyvalue import service
from poundcake.engine.keyvalue.crypto import DatastoreCipher, key_path_from_config
from poundcake.engine.keyvalue.datastore import SessionDatastore
from poundcake.engine.keyvalue.models import KeyValuePairDB
from poundcake.engine.triggers.models import TriggerInstanceDB
from poundcake.exceptions import ConfigurationError, NotFoundError, ValidationError
from tests.integration.support.datastore_helpers import engine_config


@pytest.fixture(params=["mariadb", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def config(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> St2Config:
    database = request.getfixturevalue("scratch_database") if backend == "mariadb" else None
    return engine_config(tmp_path, database=database)


@pytest.fixture
def factory(config: St2Config) -> Iterator[sessionmaker[Session]]:
    engine = make_st2_engine(config, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with unit_of_work(factory) as session:
        yield session


@pytest.fixture
def cipher(config: St2Config) -> DatastoreCipher:
    return DatastoreCipher.from_key_file(key_path_from_config(config))


def stored_rows(factory: sessionmaker[Session]) -> dict[tuple[str, str], KeyValuePairDB]:
    with factory() as fresh:
        return {(row.scope, row.name): row for row in fresh.scalars(sa.select(KeyValuePairDB))}


def test_set_get_and_replace_a_system_value(
    session: Session, factory: sessionmaker[Session]
) -> None:
    created = service.set_value(session, name="api_host", value="10.0.0.5")
    assert created.uid == "key_value_pair:st2kv.system:api_host"
    assert len(created.id) == 24
    replaced = service.set_value(session, name="api_host", value="10.0.0.6", scope="system")
    assert replaced.id == created.id
    found = service.get_value(session, name="api_host", scope="st2kv.system")
    assert (found.value, found.scope, found.secret, found.encrypted) == (
        "10.0.0.6",
        "st2kv.system",
        False,
        False,
    )
    assert found.to_document() == {
        "id": created.id,
        "uid": "key_value_pair:st2kv.system:api_host",
        "name": "api_host",
        "scope": "st2kv.system",
        "value": "10.0.0.6",
        "secret": False,
        "encrypted": False,
    }
    session.commit()
    assert stored_rows(factory)[("st2kv.system", "api_host")].value == "10.0.0.6"


def test_service_flushes_but_never_commits(factory: sessionmaker[Session]) -> None:
    with factory() as session:
        service.set_value(session, name="draft", value="1")
        assert service.get_value(session, name="draft").value == "1"
        session.rollback()
    assert stored_rows(factory) == {}


def test_user_scope_is_stored_as_user_colon_name(
    session: Session, factory: sessionmaker[Session]
) -> None:
    service.set_value(session, name="token", value="a", scope="user", user="alice")
    service.set_value(session, name="token", value="b", scope="st2kv.user", user="bob")
    service.set_value(session, name="token", value="s")
    session.commit()
    rows = stored_rows(factory)
    assert set(rows) == {
        ("st2kv.user", "alice:token"),
        ("st2kv.user", "bob:token"),
        ("st2kv.system", "token"),
    }
    assert rows[("st2kv.user", "alice:token")].user == "alice"
    assert rows[("st2kv.user", "alice:token")].uid == "key_value_pair:st2kv.user:alice:token"
    alice = service.get_value(session, name="token", scope="user", user="alice")
    assert (alice.value, alice.name, alice.user) == ("a", "token", "alice")
    assert alice.to_document()["user"] == "alice"
    assert service.get_value(session, name="token", scope="user", user="bob").value == "b"
    assert service.get_value(session, name="token").value == "s"
    with pytest.raises(NotFoundError, match="carol:token"):
        service.get_value(session, name="token", scope="user", user="carol")
    with pytest.raises(ValidationError, match="user is required"):
        service.get_value(session, name="token", scope="user")


def test_ttl_expires_values(session: Session, factory: sessionmaker[Session]) -> None:
    now = utcnow()
    item = service.set_value(session, name="lease", value="x", ttl=60, now=now)
    assert item.expire_timestamp is not None
    assert abs(item.expire_timestamp - (now + timedelta(seconds=60))) < timedelta(seconds=1)
    assert "expire_timestamp" in item.to_document()
    later = now + timedelta(seconds=61)
    assert service.get_value(session, name="lease", now=now).value == "x"
    with pytest.raises(NotFoundError):
        service.get_value(session, name="lease", now=later)
    assert service.list_values(session, now=later) == []
    with pytest.raises(NotFoundError):
        service.delete_value(session, name="lease", now=later)
    # Setting again without a ttl makes the value permanent.
    service.set_value(session, name="lease", value="y", now=later)
    assert service.get_value(session, name="lease", now=later + timedelta(days=9)).value == "y"
    service.set_value(session, name="short", value="z", ttl=1, now=now)
    assert service.purge_expired(session, now=now + timedelta(seconds=5)) == 1
    session.commit()
    assert set(stored_rows(factory)) == {("st2kv.system", "lease")}


@pytest.mark.parametrize("ttl", [0, -5, True, "60"])
def test_ttl_must_be_positive_seconds(session: Session, ttl: object) -> None:
    with pytest.raises(ValidationError, match="ttl"):
        service.set_value(session, name="k", value="v", ttl=ttl)  # type: ignore[arg-type]


def test_invalid_input_is_refused(session: Session) -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        service.set_value(session, name="k", value=5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="name is required"):
        service.set_value(session, name=" ", value="v")
    with pytest.raises(ValidationError, match="longer than 512"):
        service.set_value(session, name="n" * 513, value="v")
    with pytest.raises(ValidationError, match="Invalid scope"):
        service.set_value(session, name="k", value="v", scope="all")
    with pytest.raises(ValidationError, match="Invalid scope"):
        service.get_value(session, name="k", scope="global")


def test_list_by_prefix_and_scope(session: Session) -> None:
    for name in ("app.db.host", "app.db.port", "app_x", "apple", "other"):
        service.set_value(session, name=name, value=name)
    service.set_value(session, name="app.db.user", value="u1", scope="user", user="alice")
    service.set_value(session, name="app.db.user", value="u2", scope="user", user="bob")

    def names(**kwargs: object) -> list[tuple[str, str, str | None]]:
        items = service.list_values(session, **kwargs)  # type: ignore[arg-type]
        return [(item.scope, item.name, item.user) for item in items]

    assert names(prefix="app.db.") == [
        ("st2kv.system", "app.db.host", None),
        ("st2kv.system", "app.db.port", None),
    ]
    # "_" is a LIKE wildcard: it must be matched literally.
    assert names(prefix="app_") == [("st2kv.system", "app_x", None)]
    assert len(names()) == 5
    assert names(scope="user", user="alice") == [("st2kv.user", "app.db.user", "alice")]
    assert names(scope="user") == [
        ("st2kv.user", "app.db.user", "alice"),
        ("st2kv.user", "app.db.user", "bob"),
    ]
    assert names(scope="all", user="bob", prefix="app.db") == [
        ("st2kv.system", "app.db.host", None),
        ("st2kv.system", "app.db.port", None),
        ("st2kv.user", "app.db.user", "bob"),
    ]
    assert names(limit=2, offset=1) == [
        ("st2kv.system", "app.db.port", None),
        ("st2kv.system", "app_x", None),
    ]


def test_names_match_exactly_whatever_the_collation(backend: str, session: Session) -> None:
    service.set_value(session, name="Region", value="eu")
    with pytest.raises(NotFoundError):
        service.get_value(session, name="region")
    with pytest.raises(NotFoundError):
        service.get_value(session, name="Region ")
    assert [item.name for item in service.list_values(session, prefix="reg")] == []
    assert [item.name for item in service.list_values(session, prefix="Reg")] == ["Region"]
    # Names are case-sensitive on every backend (a binary collation on MariaDB): two keys.
    service.set_value(session, name="region", value="us")
    assert service.get_value(session, name="region").value == "us"
    assert service.get_value(session, name="Region").value == "eu"


def test_secrets_are_encrypted_at_rest(
    session: Session, factory: sessionmaker[Session], cipher: DatastoreCipher
) -> None:
    stored = service.set_value(
        session, name="db_password", value="hunter2", secret=True, cipher=cipher
    )
    assert stored.encrypted and stored.secret and stored.value != "hunter2"
    session.commit()
    row = stored_rows(factory)[("st2kv.system", "db_password")]
    assert "hunter2" not in row.value
    assert row.secret and row.encrypted
    masked = service.get_value(session, name="db_password")
    assert (masked.value, masked.encrypted, masked.secret) == (row.value, True, True)
    plain = service.get_value(session, name="db_password", decrypt=True, cipher=cipher)
    assert (plain.value, plain.encrypted, plain.secret) == ("hunter2", False, True)
    listed = service.list_values(session, decrypt=True, cipher=cipher)
    assert [(item.value, item.encrypted) for item in listed] == [("hunter2", False)]
    with pytest.raises(ConfigurationError, match="encryption_key_path"):
        service.get_value(session, name="db_password", decrypt=True)
    with pytest.raises(ConfigurationError, match="encryption_key_path"):
        service.set_value(session, name="other", value="x", secret=True)


def test_exported_ciphertext_loads_back(
    session: Session, cipher: DatastoreCipher, tmp_path: Path
) -> None:
    sealed = cipher.encrypt("token-123")
    item = service.set_value(session, name="imported", value=sealed, encrypted=True, cipher=cipher)
    assert (item.value, item.secret, item.encrypted) == (sealed, True, True)
    assert service.get_value(session, name="imported", decrypt=True, cipher=cipher).value == (
        "token-123"
    )
    foreign = DatastoreCipher.from_key_file(tmp_path / "foreign.key").encrypt("x")
    with pytest.raises(ValidationError, match="cannot be decrypted"):
        service.set_value(session, name="bad", value=foreign, encrypted=True, cipher=cipher)


def test_a_secret_under_another_key_is_a_configuration_error(
    session: Session, cipher: DatastoreCipher, tmp_path: Path
) -> None:
    service.set_value(session, name="s", value="v", secret=True, cipher=cipher)
    other = DatastoreCipher.from_key_file(tmp_path / "other.key")
    with pytest.raises(ConfigurationError, match='cannot decrypt the value of "s"'):
        service.get_value(session, name="s", decrypt=True, cipher=other)


def test_delete(session: Session, factory: sessionmaker[Session]) -> None:
    service.set_value(session, name="gone", value="1")
    service.set_value(session, name="gone", value="2", scope="user", user="alice")
    service.delete_value(session, name="gone")
    with pytest.raises(NotFoundError):
        service.get_value(session, name="gone")
    with pytest.raises(NotFoundError, match="KeyValuePair with name: gone and scope"):
        service.delete_value(session, name="gone")
    session.commit()
    assert set(stored_rows(factory)) == {("st2kv.user", "alice:gone")}


def test_session_datastore_is_the_runners_datastore(
    factory: sessionmaker[Session], config: St2Config
) -> None:
    key_path = key_path_from_config(config)
    assert not key_path.exists()
    store = SessionDatastore(
        factory, key_path=key_path, user="alice", local_prefix="mypack.MyAction"
    )
    assert store.get_value("missing") is None
    assert store.set_value("count", "1")
    assert store.set_value("count", "2", ttl=3600)
    assert store.set_value("global", "g", local=False)
    assert store.set_value("mine", "m", scope="user")
    assert store.set_value("pw", "hunter2", encrypt=True)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    rows = stored_rows(factory)
    assert set(rows) == {
        ("st2kv.system", "mypack.MyAction:count"),
        ("st2kv.system", "global"),
        ("st2kv.user", "alice:mypack.MyAction:mine"),
        ("st2kv.system", "mypack.MyAction:pw"),
    }
    assert rows[("st2kv.system", "mypack.MyAction:count")].expire_timestamp is not None
    assert "hunter2" not in rows[("st2kv.system", "mypack.MyAction:pw")].value

    assert store.get_value("count") == "2"
    assert store.get_value("global", local=False) == "g"
    assert store.get_value("global") is None
    assert store.get_value("mine", scope="user") == "m"
    assert store.get_value("pw", decrypt=True) == "hunter2"
    assert store.get_value("pw") == rows[("st2kv.system", "mypack.MyAction:pw")].value
    listed = store.list_values(prefix="c")
    assert [(doc["name"], doc["value"]) for doc in listed] == [("mypack.MyAction:count", "2")]
    assert [doc["name"] for doc in store.list_values(local=False)] == [
        "global",
        "mypack.MyAction:count",
        "mypack.MyAction:pw",
    ]
    assert store.delete_value("count") is True
    assert store.delete_value("count") is False
    assert store.get_value("count") is None


def fired_instances(factory: sessionmaker[Session]) -> list[tuple[str, dict[str, Any]]]:
    """Every stored key-value trigger instance, oldest first: (trigger, payload)."""
    with factory() as fresh:
        rows = fresh.scalars(
            sa.select(TriggerInstanceDB)
            .where(TriggerInstanceDB.trigger.startswith("core.st2.key_value_pair."))
            .order_by(TriggerInstanceDB.id)
        )
        return [(row.trigger, row.payload) for row in rows]


def operations(instances: list[tuple[str, dict[str, Any]]]) -> str:
    """The operations the instances record, as one line: ``create update ...``."""
    return " ".join(trigger.rsplit(".", 1)[1] for trigger, _ in instances)


def test_every_write_stores_its_trigger_instances_in_the_same_transaction(
    session: Session, factory: sessionmaker[Session]
) -> None:
    fired: list[TriggerInstanceDB] = []
    created = service.set_value(session, name="color", value="red", fired=fired)
    assert [instance.trigger for instance in fired] == ["core.st2.key_value_pair.create"]
    assert fired_instances(factory) == []  # nothing is visible before the write commits
    session.commit()
    service.set_value(session, name="color", value="red")
    service.set_value(session, name="color", value="blue", ttl=60)
    service.delete_value(session, name="color")
    session.rollback()
    # A rolled-back write leaves no trigger instance behind.
    assert operations(fired_instances(factory)) == "create"

    service.set_value(session, name="color", value="red")
    updated = service.set_value(session, name="color", value="blue", ttl=60)
    service.delete_value(session, name="color")
    session.commit()
    instances = fired_instances(factory)
    assert operations(instances) == "create update update value_change delete"
    assert instances[0][1] == {"object": created.to_document()}
    assert instances[0][1]["object"] == {
        "id": created.id,
        "uid": "key_value_pair:st2kv.system:color",
        "name": "color",
        "scope": "st2kv.system",
        "value": "red",
        "secret": False,
        "encrypted": False,
    }
    old, new = instances[3][1]["old_object"], instances[3][1]["new_object"]
    assert (old["value"], new["value"]) == ("red", "blue")
    assert new == updated.to_document() and "expire_timestamp" in new
    assert instances[4][1] == {"object": updated.to_document()}


def test_secret_values_never_appear_in_a_payload(
    session: Session, factory: sessionmaker[Session], cipher: DatastoreCipher
) -> None:
    service.set_value(session, name="pw", value="hunter2", secret=True, cipher=cipher)
    service.set_value(session, name="pw", value="hunter3", secret=True, cipher=cipher)
    service.set_value(session, name="tok", value="t0", scope="user", user="alice")
    service.delete_value(session, name="pw")
    session.commit()
    instances = fired_instances(factory)
    assert "hunter" not in repr(instances)
    changed = next(payload for trigger, payload in instances if trigger.endswith("value_change"))
    assert changed["new_object"]["encrypted"] is True
    assert cipher.decrypt(changed["new_object"]["value"]) == "hunter3"
    user_key = instances[3][1]["object"]
    assert (user_key["name"], user_key["user"], user_key["scope"]) == ("tok", "alice", "st2kv.user")


def test_expiry_fires_nothing_and_a_key_set_again_after_it_is_created(
    session: Session, factory: sessionmaker[Session]
) -> None:
    service.set_value(session, name="lease", value="1", ttl=1)
    session.commit()
    later = utcnow() + timedelta(seconds=5)
    assert service.purge_expired(session, now=later) == 1
    service.set_value(session, name="lease", value="1", ttl=1)
    session.commit()
    assert service.set_value(session, name="lease", value="2", now=utcnow() + timedelta(seconds=5))
    session.commit()
    assert operations(fired_instances(factory)) == "create create create"


def test_session_datastore_writes_fire_triggers(factory: sessionmaker[Session]) -> None:
    store = SessionDatastore(factory, user="alice", local_prefix="mypack.MySensor")
    store.set_value("seen", "1")
    store.set_value("seen", "2")
    store.delete_value("seen")
    instances = fired_instances(factory)
    assert operations(instances) == "create update value_change delete"
    assert instances[0][1]["object"]["name"] == "mypack.MySensor:seen"
