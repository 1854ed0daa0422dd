"""``st2-setup-auth`` creates logins in the engine's database, idempotently."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.engine.auth.models import UserDB
from poundcake.engine.auth.users import authenticate
from tests.integration.support.commands import BIN, command_environment, run_command
from tests.integration.support.terminal import run_on_terminal


def _engine_database(directory: Path, database: str) -> tuple[Path, dict[str, str]]:
    """An st2.conf on ``database`` with the engine's tables made; the commands' environment."""
    conf = directory / "st2.conf"
    conf.write_text(
        f"[database]\nbackend = mysql\nhost = 127.0.0.1\nusername = root\ndb_name = {database}\n"
    )
    env = command_environment(directory)
    assert run_command("st2-setup-db", "--config-file", str(conf), env=env).returncode == 0
    return conf, env


def test_setup_auth_creates_then_changes_nothing_then_changes_password(
    tmp_path: Path, scratch_database: str
) -> None:
    conf, env = _engine_database(tmp_path, scratch_database)
    first = run_command(
        "st2-setup-auth",
        "--user",
        "st2admin",
        "--password",
        "Ch@ngeMe-1",
        "--config-file",
        str(conf),
        env=env,
    )
    assert first.returncode == 0, first.stderr
    assert "created" in first.stdout
    again = run_command(
        "st2-setup-auth", "-u", "st2admin", "-p", "Ch@ngeMe-1", "--config-file", str(conf), env=env
    )
    assert "nothing to do" in again.stdout
    changed = run_command(
        "st2-setup-auth",
        "-u",
        "st2admin",
        "-p",
        "other-password",
        "--config-file",
        str(conf),
        env=env,
    )
    assert "changed" in changed.stdout
    engine = make_st2_engine(load_st2_config(conf))
    with Session(engine) as session:
        stored = session.scalar(sa.select(UserDB.password_hash).where(UserDB.name == "st2admin"))
        assert stored is not None and "other-password" not in stored
        assert authenticate(session, name="st2admin", password="other-password")
        assert not authenticate(session, name="st2admin", password="Ch@ngeMe-1")
        assert not authenticate(session, name="nobody", password="other-password")
    engine.dispose()
    short = run_command(
        "st2-setup-auth", "-u", "x", "-p", "short", "--config-file", str(conf), env=env
    )
    assert short.returncode != 0
    assert short.stderr.strip().startswith("error: password must have at least 8 characters")


def test_on_a_terminal_it_asks_for_the_login_and_the_password_twice_without_echo(
    tmp_path: Path, scratch_database: str
) -> None:
    """``sudo st2-setup-auth`` as the install guide writes it: no flags, a person types."""
    conf, env = _engine_database(tmp_path, scratch_database)
    typed = run_on_terminal(
        [str(BIN / "st2-setup-auth"), "--config-file", str(conf)],
        [
            ("Login name [st2admin]:", ""),
            ("Password for st2admin:", "Typed-Secret-1"),
            ("Again:", "Typed-Secret-2"),
            ("Password for st2admin:", "Typed-Secret-1"),
            ("Again:", "Typed-Secret-1"),
        ],
        env=env,
    )
    assert typed.returncode == 0, typed.screen
    assert "The two passwords differ" in typed.screen
    assert "User 'st2admin' created." in typed.screen
    assert "Typed-Secret" not in typed.screen  # the terminal never showed the password
    named = run_on_terminal(
        [str(BIN / "st2-setup-auth"), "-u", "operator", "--config-file", str(conf)],
        [("Password for operator:", "Operator-Pass-1"), ("Again:", "Operator-Pass-1")],
        env=env,
    )
    assert named.returncode == 0, named.screen
    assert "Login name" not in named.screen
    engine = make_st2_engine(load_st2_config(conf))
    with Session(engine) as session:
        assert authenticate(session, name="st2admin", password="Typed-Secret-1")
        assert authenticate(session, name="operator", password="Operator-Pass-1")
    engine.dispose()
    # Without a terminal and without a password nothing is asked, and the flags are named.
    scripted = run_command("st2-setup-auth", "--config-file", str(conf), env=env)
    assert scripted.returncode != 0
    assert "--password" in scripted.stderr and "terminal" in scripted.stderr
