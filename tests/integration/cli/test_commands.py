"""The commands as a user runs them: the embedded default, and one clear line for bad settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.integration.support.commands import command_environment, run_command
from tests.paths import REPOSITORY


def test_embedded_default_needs_no_configuration(tmp_path: Path) -> None:
    env = command_environment(tmp_path)
    first = run_command("st2-setup-db", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Using embedded default" in first.stdout
    init = run_command("poundcake", "db", "init", env=env, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    database = tmp_path / "data" / "poundcake.sqlite3"
    with sqlite3.connect(database) as connection:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        connection.execute("PRAGMA foreign_keys=ON")
        keys = connection.execute(
            "SELECT \"table\" FROM pragma_foreign_key_list('poundcake_st2_execution_extensions')"
        ).fetchall()
    assert {
        "action_db",
        "execution_db",
        "poundcake_alerts",
        "poundcake_st2_rule_extensions",
    } <= tables
    assert ("execution_db",) in keys
    again = run_command("poundcake", "db", "init", env=env, cwd=tmp_path)
    assert "nothing to do" in again.stdout


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"DATABASE_URL": "mysql+pymysql://root:wrong-password@127.0.0.1:3306/poundcake"},
            "DATABASE_URL: access denied for user 'root'",
        ),
        (
            {"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:1/poundcake"},
            "DATABASE_URL: cannot reach the database server at 127.0.0.1:1",
        ),
        ({"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:x/db"}, "DATABASE_URL: malformed"),
        ({"DATABASE_URL": "mongodb://localhost/st2"}, "DATABASE_URL: unsupported database URL"),
        ({"POUNDCAKE_PORT": "http"}, "POUNDCAKE_PORT:"),
    ],
)
def test_bad_poundcake_settings_fail_in_one_line(
    tmp_path: Path, variables: dict[str, str], expected: str
) -> None:
    result = run_command("poundcake", "db", "init", env=command_environment(tmp_path, **variables))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {expected}"), lines[0]
    assert "wrong-password" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("ini", "expected"),
    [
        ("[database]\nbackend = mongodb\n", "[database] backend"),
        (
            "[database]\nhost = 127.0.0.1\nport = 1\nusername = root\n",
            "cannot reach the database server",
        ),
        (
            "[database]\nhost = 127.0.0.1\nusername = root\npassword = nope\n",
            "access denied for user 'root'",
        ),
    ],
)
def test_bad_st2_conf_fails_in_one_line(tmp_path: Path, ini: str, expected: str) -> None:
    conf = tmp_path / "st2.conf"
    conf.write_text(ini)
    result = run_command(
        "st2-setup-db", "--config-file", str(conf), env=command_environment(tmp_path)
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "[database]" in lines[0]
    assert "Traceback" not in result.stderr


def test_install_guide_step_9_script_runs_as_written(tmp_path: Path) -> None:
    import subprocess
    import sys

    repository = REPOSITORY
    env = command_environment(tmp_path)
    assert run_command("st2-setup-db", env=env, cwd=tmp_path).returncode == 0
    completed = subprocess.run(
        [sys.executable, "src/app/scripts/init_unified_database.py"],
        cwd=repository,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "PoundCake schema created at revision" in completed.stdout
