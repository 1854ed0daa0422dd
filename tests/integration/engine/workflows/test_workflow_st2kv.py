"""``st2kv()`` in workflow expressions reads the engine's datastore on MariaDB, secrets included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from poundcake.config import St2Config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory, unit_of_work
from poundcake.engine.keyvalue import service
from poundcake.engine.keyvalue.crypto import DatastoreCipher, key_path_from_config
from poundcake.engine.keyvalue.lookup import ExpressionDatastore
from poundcake.engine.keyvalue.scopes import SYSTEM_SCOPE, USER_SCOPE
from poundcake.engine.workflows.expressions import ExpressionError, Scope, evaluate
from tests.integration.support.datastore_helpers import engine_config

ST2 = {"user": "stanley", "action_execution_id": "5f1c0a9e8d3b4a0001a1b2c3"}


@pytest.fixture
def config(scratch_database: str, tmp_path: Path) -> St2Config:
    return engine_config(tmp_path, database=scratch_database)


@pytest.fixture
def cipher(config: St2Config) -> DatastoreCipher:
    return DatastoreCipher.from_key_file(key_path_from_config(config))


@pytest.fixture
def session(config: St2Config, cipher: DatastoreCipher) -> Iterator[Session]:
    engine = make_st2_engine(config, pool_size=2)
    factory = make_session_factory(engine)
    with unit_of_work(factory) as writer:
        service.set_value(writer, name="kami", value="eggplant", secret=True, cipher=cipher)
        service.set_value(writer, name="lakshmi", value="kanahansnasnasdlsajks")
        service.set_value(
            writer, name="winson", value="SoDiamondEng", scope=USER_SCOPE, user="stanley"
        )
        service.set_value(
            writer, name="winson", value="not stanley's", scope=USER_SCOPE, user="someone"
        )
    with factory() as reader:
        yield reader
    engine.dispose()


def scope_over(session: Session, cipher: DatastoreCipher, **variables: object) -> Scope:
    datastore = ExpressionDatastore(session, cipher=cipher)
    return Scope(variables={"st2": ST2, **variables}, datastore=datastore)


def test_st2kv_reads_system_and_user_keys_and_decrypts_secrets(
    session: Session, cipher: DatastoreCipher
) -> None:
    scope = scope_over(session, cipher, key_name="system.kami", decrypt=True)
    assert evaluate("<% st2kv('system.kami', decrypt => true) %>", scope) == "eggplant"
    assert evaluate("{{ st2kv('system.kami', decrypt=true) }}", scope) == "eggplant"
    assert evaluate("<% st2kv(ctx().key_name, decrypt => ctx().decrypt) %>", scope) == "eggplant"
    ciphertext = evaluate("<% st2kv('system.kami') %>", scope)
    assert ciphertext != "eggplant"
    assert cipher.decrypt(ciphertext) == "eggplant"
    assert evaluate("<% st2kv('system.lakshmi') %>", scope) == "kanahansnasnasdlsajks"
    assert evaluate("{{ st2kv('winson') }}", scope) == "SoDiamondEng"
    stored = service.get_value(session, name="kami", scope=SYSTEM_SCOPE)
    assert stored.encrypted and stored.value == ciphertext


def test_st2kv_missing_keys_and_defaults(session: Session, cipher: DatastoreCipher) -> None:
    scope = scope_over(session, cipher)
    assert evaluate("<% st2kv('system.matt', decrypt => true, default => 'stone') %>", scope) == (
        "stone"
    )
    assert evaluate("{{ st2kv('system.matt', default=None) }}", scope) is None
    with pytest.raises(ExpressionError) as caught:
        evaluate("<% st2kv('system.matt', decrypt => true) %>", scope)
    assert f"{caught.value.kind}: {caught.value}" == (
        "YaqlEvaluationException: Unable to evaluate expression "
        "'<% st2kv('system.matt', decrypt => true) %>'. ExpressionEvaluationException: "
        'The key "matt" does not exist in the StackStorm datastore.'
    )
    with pytest.raises(ExpressionError, match='The key "stanley:kami" does not exist'):
        evaluate("{{ st2kv('kami') }}", scope)
