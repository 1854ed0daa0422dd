from __future__ import annotations

from pathlib import Path

import pytest

from poundcake import config as config_module
from poundcake.config import load_poundcake_config, load_settings, load_st2_config
from poundcake.exceptions import ConfigurationError

SEED_SEPARATE = """\
[database]
# Use MariaDB instead of MongoDB
db_name = stackstorm
host = localhost
port = 3306
username = stackstorm
password = stackstorm_password
# Use MySQL backend
backend = mysql

[coordination]
# Optional: Use MariaDB for coordination
url = mysql://stackstorm:stackstorm_password@localhost:3306/stackstorm
"""

SEED_SHARED = """\
[database]
db_name = poundcake
host = localhost
port = 3306
username = poundcake
password = poundcake
backend = mysql
# Use table prefix to separate ST2 tables
table_prefix = st2_
"""

SEED_ENV = """\
# StackStorm connection
ST2_API_URL=http://localhost:9101/v1
ST2_AUTH_URL=http://localhost:9100/tokens
ST2_API_KEY=abcdef1234567890abcdef1234567890
ST2_STREAM_URL=ws://localhost:9102/v1/stream

# Database (shared or separate)
DATABASE_URL=mysql+pymysql://poundcake:poundcake@localhost:3306/poundcake

# ST2 Database (if separate)
ST2_DATABASE_URL=mysql+pymysql://stackstorm:stackstorm_password@localhost:3306/stackstorm
"""

ENV_NAMES = (
    "ST2_CONFIG_PATH",
    "DATABASE_URL",
    "ST2_DATABASE_URL",
    "ST2_TABLE_PREFIX",
    "ST2_API_KEY",
    "POUNDCAKE_MYSQL_SOCKET",
    "POUNDCAKE_PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POUNDCAKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(config_module, "DEFAULT_ST2_CONFIG_PATH", tmp_path / "etc-st2.conf")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_nothing_configured_is_the_embedded_sqlite_default(tmp_path: Path) -> None:
    st2 = load_st2_config()
    assert st2.is_embedded
    assert st2.database.backend == "sqlite"
    assert st2.database.database == str(tmp_path / "data" / "poundcake.sqlite3")
    config = load_poundcake_config()
    assert config.database.url == st2.database.url
    assert config.engine_database.table_prefix == ""
    assert config.engine_schema is None


def test_seed_st2_conf_for_separate_databases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POUNDCAKE_MYSQL_SOCKET", "/run/mysqld/mysqld.sock")
    st2 = load_st2_config(write(tmp_path / "st2.conf", SEED_SEPARATE))
    url = st2.database.url
    assert (url.drivername, url.username, url.password, url.database) == (
        "mysql+pymysql",
        "stackstorm",
        "stackstorm_password",
        "stackstorm",
    )
    assert url.query["charset"] == "utf8mb4"
    assert url.query["unix_socket"] == "/run/mysqld/mysqld.sock"
    assert (
        st2.coordination.url == "mysql://stackstorm:stackstorm_password@localhost:3306/stackstorm"
    )
    assert st2.api.port == 9101
    assert st2.auth.port == 9100
    assert st2.stream.port == 9102


def test_config_file_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    etc = write(tmp_path / "etc-st2.conf", SEED_SEPARATE)
    assert load_st2_config().source == str(etc)
    from_env = write(tmp_path / "env.conf", SEED_SHARED)
    monkeypatch.setenv("ST2_CONFIG_PATH", str(from_env))
    assert load_st2_config().database.table_prefix == "st2_"
    explicit = write(tmp_path / "explicit.conf", SEED_SEPARATE)
    assert load_st2_config(explicit).source == str(explicit)


def test_seed_env_file(tmp_path: Path) -> None:
    write(tmp_path / ".env", SEED_ENV)
    settings = load_settings()
    assert settings.st2_api_url == "http://localhost:9101/v1"
    assert settings.st2_api_key is not None
    assert settings.st2_api_key.get_secret_value() == "abcdef1234567890abcdef1234567890"
    assert "abcdef" not in repr(settings)
    config = load_poundcake_config(settings)
    assert config.database.database == "poundcake"
    assert config.engine_database.database == "stackstorm"
    assert config.engine_schema == "stackstorm"


def test_shared_database_takes_the_prefix_from_st2_conf(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ST2_CONFIG_PATH", str(write(tmp_path / "st2.conf", SEED_SHARED)))
    monkeypatch.setenv(
        "DATABASE_URL", "mysql+pymysql://poundcake:poundcake@localhost:3306/poundcake"
    )
    config = load_poundcake_config()
    assert config.engine_database.table_prefix == "st2_"
    assert config.engine_schema is None
    monkeypatch.setenv("ST2_TABLE_PREFIX", "")
    assert load_poundcake_config().engine_database.table_prefix == ""


@pytest.mark.parametrize(
    ("ini", "setting"),
    [
        ("[database]\nbackend = mongodb\n", "[database] backend"),
        ("[database]\nport = three\n", "[database] port"),
        ("[database]\ntable_prefix = st2-;drop\n", "[database] table_prefix"),
        ("[api]\nport = 99999\n", "[api] port"),
        ("[database\nbackend = mysql\n", "not a valid INI file"),
    ],
)
def test_bad_st2_conf_names_the_setting(tmp_path: Path, ini: str, setting: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        load_st2_config(write(tmp_path / "st2.conf", ini))
    assert setting in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("DATABASE_URL", "mysql+pymysql://u:p@host:port/db", "DATABASE_URL: malformed"),
        ("DATABASE_URL", "postgresql://u@h/db", "DATABASE_URL: unsupported database URL scheme"),
        ("DATABASE_URL", "mysql+pymysql://u@h:3306", "DATABASE_URL: the URL"),
        ("ST2_DATABASE_URL", "mysql+pymysql://u@other:3306/st2", "ST2_DATABASE_URL: must be on"),
        ("ST2_TABLE_PREFIX", "st2 ", "ST2_TABLE_PREFIX"),
        ("POUNDCAKE_PORT", "eighty", "POUNDCAKE_PORT"),
        ("POUNDCAKE_ALERTMANAGER_URL", "alertmanager:9093", "POUNDCAKE_ALERTMANAGER_URL"),
        ("POUNDCAKE_ALERTMANAGER_URL", "ftp://host/", "POUNDCAKE_ALERTMANAGER_URL"),
        ("POUNDCAKE_ALERTMANAGER_URL", "http://h:9093/?x=1", "POUNDCAKE_ALERTMANAGER_URL"),
        ("POUNDCAKE_SILENCE_MAX_SECONDS", "5", "POUNDCAKE_SILENCE_MAX_SECONDS"),
    ],
)
def test_bad_environment_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://u@db:3306/poundcake")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_poundcake_config()
    assert str(raised.value).startswith(expected)


def test_missing_config_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ST2_CONFIG_PATH", str(tmp_path / "nope.conf"))
    with pytest.raises(ConfigurationError, match="ST2_CONFIG_PATH: no such file"):
        load_st2_config()


def test_stream_url_from_the_guide_is_read_as_http(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ST2_STREAM_URL", "ws://localhost:9102/v1/stream")
    assert load_settings().st2_stream_url == "http://localhost:9102/v1/stream"


def test_production_refuses_the_guides_example_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ST2_API_KEY", "abcdef1234567890abcdef1234567890")
    assert load_settings().environment == "development"
    monkeypatch.setenv("POUNDCAKE_ENV", "production")
    with pytest.raises(ConfigurationError, match="ST2_API_KEY is a placeholder") as raised:
        load_settings()
    assert "abcdef" not in str(raised.value)


def test_action_sensor_emit_when(tmp_path: Path) -> None:
    path = write(tmp_path / "st2.conf", "[action_sensor]\nemit_when = failed, timeout\n")
    assert load_st2_config(path).action_sensor.emit_statuses == {"failed", "timeout"}
    path = write(tmp_path / "st2.conf", "[action_sensor]\nenable = false\n")
    assert load_st2_config(path).action_sensor.emit_statuses == frozenset()
    assert len(load_st2_config(write(tmp_path / "e.conf", "")).action_sensor.emit_statuses) == 5
    path = write(tmp_path / "st2.conf", "[action_sensor]\nemit_when = failed,done\n")
    with pytest.raises(ConfigurationError, match=r"emit_when.*done is not a finished status"):
        load_st2_config(path)


def test_the_alertmanager_url_is_kept_without_its_trailing_slash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("POUNDCAKE_ALERTMANAGER_URL", " http://127.0.0.1:9093/ ")
    assert load_settings().alertmanager_url == "http://127.0.0.1:9093"
    monkeypatch.setenv("POUNDCAKE_ALERTMANAGER_URL", "")
    assert load_settings().alertmanager_url is None


def test_the_installed_st2_conf_logs_to_var_log_st2_as_stackstorm_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With /etc/st2/st2.conf (here a stand-in for it) logs and pid files go where StackStorm
    keeps them, so the guide's ``tail -f /var/log/st2/*.log`` shows them; ``[system] log_dir``
    and ``run_dir`` still win, and any other st2.conf keeps them under its data directory."""
    installed = tmp_path / "etc-st2" / "st2.conf"
    installed.parent.mkdir()
    installed.write_text(f"[system]\ndata_dir = {tmp_path / 'data'}\n")
    elsewhere = tmp_path / "st2.conf"
    elsewhere.write_text(installed.read_text())
    monkeypatch.setattr(config_module, "DEFAULT_ST2_CONFIG_PATH", installed)
    system = load_st2_config(installed)
    assert (system.log_dir, system.run_dir) == (Path("/var/log/st2"), Path("/var/run/st2"))
    other = load_st2_config(elsewhere)
    assert (other.log_dir, other.run_dir) == (tmp_path / "data" / "logs", tmp_path / "data" / "run")
    installed.write_text(
        f"[system]\ndata_dir = {tmp_path / 'data'}\nlog_dir = {tmp_path / 'logs'}\n"
        f"run_dir = {tmp_path / 'run'}\n"
    )
    chosen = load_st2_config(installed)
    assert (chosen.log_dir, chosen.run_dir) == (tmp_path / "logs", tmp_path / "run")


def test_without_a_dot_env_the_installed_settings_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cd /opt/poundcake && python src/app/scripts/init_unified_database.py`` on a host laid
    out by ``poundcake install`` reads /etc/poundcake/poundcake.env; a ./.env still wins."""
    installed = tmp_path / "etc" / "poundcake.env"
    installed.parent.mkdir()
    installed.write_text("DATABASE_URL=mysql+pymysql://installed@db.example:3306/poundcake\n")
    monkeypatch.setattr(config_module, "SYSTEM_ENV_FILE", installed)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    monkeypatch.chdir(checkout)
    assert load_settings().database_url == "mysql+pymysql://installed@db.example:3306/poundcake"
    (checkout / ".env").write_text("DATABASE_URL=mysql+pymysql://local@db.example:3306/pc\n")
    assert load_settings().database_url == "mysql+pymysql://local@db.example:3306/pc"
