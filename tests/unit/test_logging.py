from __future__ import annotations

import io
import logging

from poundcake.logging import configure_logging, mask_secrets, request_id_var


def test_credentials_are_masked() -> None:
    assert "s3cret" not in mask_secrets("mysql+pymysql://user:s3cret@db:3306/x")
    assert "abc123" not in mask_secrets("St2-Api-Key: abc123")
    assert "tok" not in mask_secrets("Authorization: Bearer tok")
    assert "hunter2" not in mask_secrets('{"password": "hunter2"}')
    assert mask_secrets("nothing secret here") == "nothing secret here"


def test_records_carry_the_request_id_and_no_secret() -> None:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    token = request_id_var.set("req-42")
    try:
        logging.getLogger("poundcake.test").info("connecting with %s", "password=hunter2")
    finally:
        request_id_var.reset(token)
        configure_logging("WARNING")
    line = stream.getvalue()
    assert "request_id=req-42" in line
    assert "hunter2" not in line


def test_database_errors_do_not_carry_statement_parameters(tmp_path: object) -> None:
    import pytest
    import sqlalchemy as sa

    from poundcake.db.engine import make_engine

    engine = make_engine(sa.engine.make_url(f"sqlite:///{tmp_path}/x.sqlite3"))
    with pytest.raises(sa.exc.OperationalError) as raised, engine.connect() as connection:
        connection.execute(sa.text("SELECT * FROM missing WHERE secret = :s"), {"s": "hunter2"})
    assert "hunter2" not in str(raised.value)
    engine.dispose()
