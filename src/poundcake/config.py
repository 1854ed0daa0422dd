"""All configuration, read in this one module.

Two sources, as the install guide describes them:

* the engine's ``st2.conf`` (INI), found by ``--config-file``, then ``ST2_CONFIG_PATH``, then
  ``/etc/st2/st2.conf`` if it exists, else the embedded default below;
* PoundCake's environment and ``.env`` file (``DATABASE_URL``, ``ST2_API_URL``, ...,
  ``POUNDCAKE_*``).

With nothing configured both sides use the embedded default: SQLite files and local brokers under
one data directory (``POUNDCAKE_DATA_DIR``, default ``~/.local/share/poundcake``). Every problem is
raised as a :class:`ConfigurationError` naming the setting the way the operator wrote it.
"""

from __future__ import annotations

import configparser
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from poundcake.config_sections import (
    SECTIONS,
    ActionRunnerSection,
    ActionSensorSection,
    ApiSection,
    AuthSection,
    ContentSection,
    CoordinationSection,
    DatabaseSection,
    GarbageCollectorSection,
    KeyValueSection,
    LogSection,
    MessagingSection,
    NotifierSection,
    PacksSection,
    RbacSection,
    RulesEngineSection,
    SchedulerSection,
    SensorContainerSection,
    StreamSection,
    SystemSection,
    SystemUserSection,
    TimersEngineSection,
    WorkflowEngineSection,
)
from poundcake.config_unread import unread_env_settings, unread_st2_settings
from poundcake.exceptions import ConfigurationError

logger = logging.getLogger(__name__)

DEFAULT_ST2_CONFIG_PATH = Path("/etc/st2/st2.conf")
# Where a host installed as StackStorm lays itself out (/etc/st2/st2.conf) keeps its services'
# logs and pid files, unless [system] log_dir / run_dir say otherwise.
SYSTEM_LOG_DIR = Path("/var/log/st2")
SYSTEM_RUN_DIR = Path("/var/run/st2")
# StackStorm's ``[system] base_path`` default, where it keeps ``rbac/`` (and ``configs/``).
STACKSTORM_BASE_PATH = Path("/opt/stackstorm")
# PoundCake's settings on such a host, read when there is no ./.env (poundcake install).
SYSTEM_ENV_FILE = Path("/etc/poundcake/poundcake.env")
SQLITE_FILE_NAME = "poundcake.sqlite3"
MYSQL_SOCKET_CANDIDATES = (
    Path("/run/mysqld/mysqld.sock"),
    Path("/var/run/mysqld/mysqld.sock"),
    Path("/tmp/mysql.sock"),  # noqa: S108 - the MySQL client's own default location
)
PLACEHOLDER_SECRETS = {"abcdef1234567890abcdef1234567890", "changeme", "change-me", "secret"}
_MYSQL_DRIVERS = {"mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"}

EMBEDDED_ST2_CONF = """\
# The embedded default: everything on this machine, nothing to install.
[database]
backend = sqlite
db_name = {sqlite_file}
table_prefix =

[messaging]
url = sqla+sqlite:///{data_dir}/engine-broker.sqlite3
"""


def default_data_dir() -> Path:
    """Return the data directory: ``POUNDCAKE_DATA_DIR`` or ``~/.local/share/poundcake``."""
    configured = os.environ.get("POUNDCAKE_DATA_DIR")
    if configured:
        return Path(configured).expanduser().resolve()
    return Path.home() / ".local" / "share" / "poundcake"


@dataclass(frozen=True)
class DatabaseTarget:
    """Where a set of tables lives, and the setting that said so (for error messages)."""

    url: URL
    setting: str
    table_prefix: str = ""

    @property
    def backend(self) -> Literal["mysql", "sqlite"]:
        """Return ``mysql`` for MariaDB/MySQL URLs, ``sqlite`` otherwise."""
        return "sqlite" if self.url.get_backend_name() == "sqlite" else "mysql"

    @property
    def database(self) -> str:
        """Return the database name (MariaDB) or file path (SQLite)."""
        return self.url.database or ""

    def same_server(self, other: DatabaseTarget) -> bool:
        """Tell whether both targets live on one server (or in one SQLite file)."""
        if self.backend != other.backend:
            return False
        if self.backend == "sqlite":
            return self.database == other.database
        return (
            self.url.host,
            self.url.port or 3306,
            self.url.query.get("unix_socket"),
        ) == (other.url.host, other.url.port or 3306, other.url.query.get("unix_socket"))

    def describe(self) -> str:
        """Return the URL with the password hidden."""
        return self.url.render_as_string(hide_password=True)


def mysql_socket() -> str | None:
    """The local MariaDB server's Unix socket, which ``localhost`` means to MySQL clients."""
    configured = os.environ.get("POUNDCAKE_MYSQL_SOCKET")
    if configured:
        return configured
    for candidate in MYSQL_SOCKET_CANDIDATES:
        if candidate.exists():
            return str(candidate)
    return None


def normalise_database_url(raw: str, setting: str, data_dir: Path) -> URL:
    """Parse a seed-style database URL and make it usable by our drivers.

    ``mysql://`` and ``mariadb://`` use PyMySQL; ``utf8mb4`` is the connection charset; the host
    ``localhost`` means the server's Unix socket, as the ``mysql`` client understands it (an account
    created ``@'localhost'`` does not match TCP connections when the server skips name resolution).
    Relative SQLite paths are taken under the data directory.
    """
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as error:
        raise ConfigurationError(setting, f"malformed database URL {raw!r} ({error})") from None
    if url.drivername in _MYSQL_DRIVERS:
        if not url.database:
            raise ConfigurationError(setting, f"the URL {raw!r} names no database")
        url = url.set(drivername="mysql+pymysql")
        query = dict(url.query)
        query.setdefault("charset", "utf8mb4")
        if url.host in (None, "localhost") and "unix_socket" not in query:
            socket = mysql_socket()
            if socket:
                query["unix_socket"] = socket
        return url.set(query=query)
    if url.drivername in ("sqlite", "sqlite+pysqlite"):
        database = url.database
        if not database or database == ":memory:":
            raise ConfigurationError(setting, "an SQLite URL must name a file")
        path = Path(database).expanduser()
        if not path.is_absolute():
            path = data_dir / path
        return url.set(drivername="sqlite", database=str(path))
    raise ConfigurationError(
        setting,
        f"unsupported database URL scheme {url.drivername!r} (expected mysql+pymysql:// or sqlite://)",
    )


# --- st2.conf -------------------------------------------------------------------------------


@dataclass(frozen=True)
class St2Config:
    """The engine's configuration, as read from one ``st2.conf``."""

    source: str
    data_dir: Path
    database: DatabaseTarget
    coordination: CoordinationSection
    api: ApiSection
    auth: AuthSection
    stream: StreamSection
    messaging_url: str
    packs_base_paths: tuple[Path, ...]
    system_user: str
    log_level: str
    actionrunner: ActionRunnerSection
    scheduler: SchedulerSection
    workflow_engine: WorkflowEngineSection
    rulesengine: RulesEngineSection
    notifier: NotifierSection
    timersengine: TimersEngineSection
    garbagecollector: GarbageCollectorSection
    action_sensor: ActionSensorSection
    sensorcontainer: SensorContainerSection
    validate_trigger_payload: bool
    packs: PacksSection
    run_dir: Path
    log_dir: Path
    datastore_key_path: Path
    http_allowed_networks: str
    winrm_allowed_networks: str
    rbac: RbacSection = field(default_factory=RbacSection)
    rbac_definitions_dir: Path = STACKSTORM_BASE_PATH / "rbac"
    sections: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def is_embedded(self) -> bool:
        """Tell whether this is the embedded default (no st2.conf found)."""
        return self.source == "embedded default"

    @property
    def public_api_url(self) -> str:
        """The API's address with its version, as actions and workflows are given it:
        ``[auth] api_url`` when set, else where the API listens (StackStorm's fallback)."""
        if self.auth.api_url:
            return f"{self.auth.api_url.rstrip('/')}/v1"
        host = self.api.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - naming the wildcard, not binding to it
            host = "127.0.0.1"
        return f"http://{host}:{self.api.port}/v1"


def find_st2_config(explicit: str | Path | None = None) -> Path | None:
    """Locate st2.conf: explicit path, ``ST2_CONFIG_PATH``, ``/etc/st2/st2.conf``, else None."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError("--config-file", f"no such file: {path}")
        return path
    from_env = os.environ.get("ST2_CONFIG_PATH")
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigurationError("ST2_CONFIG_PATH", f"no such file: {path}")
        return path
    if DEFAULT_ST2_CONFIG_PATH.is_file():
        return DEFAULT_ST2_CONFIG_PATH
    return None


def _read_ini(text: str, source: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    try:
        parser.read_string(text, source=source)
    except configparser.Error as error:
        first_line = str(error).splitlines()[0]
        raise ConfigurationError(source, f"not a valid INI file ({first_line})") from None
    return {name: dict(parser.items(name)) for name in parser.sections()}


def _section(raw: dict[str, dict[str, str]], name: str, source: str) -> Any:
    model = SECTIONS[name]
    values = {key: value for key, value in raw.get(name, {}).items() if value != ""}
    try:
        return model.model_validate(values)
    except PydanticValidationError as error:
        problem = error.errors()[0]
        key = ".".join(str(part) for part in problem["loc"]) or "?"
        value = values.get(key, "")
        raise ConfigurationError(
            f"[{name}] {key} in {source}", f"{problem['msg']} (got {value!r})"
        ) from None


def _engine_database(section: DatabaseSection, data_dir: Path, source: str) -> DatabaseTarget:
    setting = f"[database] in {source}"
    if section.backend == "sqlite":
        path = Path(section.db_name).expanduser()
        url = URL.create("sqlite", database=str(path if path.is_absolute() else data_dir / path))
        return DatabaseTarget(url=url, setting=setting, table_prefix=section.table_prefix)
    query: dict[str, str] = {"charset": "utf8mb4"}
    socket = section.socket or (mysql_socket() if section.host == "localhost" else None)
    if socket:
        query["unix_socket"] = socket
    url = URL.create(
        "mysql+pymysql",
        username=section.username,
        password=section.password.get_secret_value() or None,
        host=section.host,
        port=section.port,
        database=section.db_name,
        query=query,
    )
    return DatabaseTarget(url=url, setting=setting, table_prefix=section.table_prefix)


# ``[coordination] url`` schemes that work here: MariaDB through tooz's MySQL driver.
COORDINATION_SCHEMES = ("mysql", "mysql+pymysql")


def _coordination(raw: dict[str, dict[str, str]], source: str) -> CoordinationSection:
    section: CoordinationSection = _section(raw, "coordination", source)
    if section.url:
        scheme = section.url.partition("://")[0].lower() if "://" in section.url else ""
        if scheme not in COORDINATION_SCHEMES:
            # The url itself is not repeated: it may hold a password.
            raise ConfigurationError(
                f"[coordination] url in {source}",
                f"the scheme {scheme!r} cannot work here; use mysql://user:password@host:port/"
                "database (MariaDB, through tooz's MySQL driver), or leave url unset for "
                "local-only locks",
            )
    return section


def _rbac_definitions_dir(system: SystemSection, data_dir: Path, installed: bool) -> Path:
    """``<[system] base_path>/rbac``; without base_path, StackStorm's ``/opt/stackstorm/rbac``
    on an installed host (``/etc/st2/st2.conf``), else ``<data_dir>/rbac``."""
    if system.base_path:
        return Path(system.base_path).expanduser() / "rbac"
    return STACKSTORM_BASE_PATH / "rbac" if installed else data_dir / "rbac"


def load_st2_config(config_file: str | Path | None = None) -> St2Config:
    """Read st2.conf from the usual places, or build the embedded default."""
    path = find_st2_config(config_file)
    data_dir = default_data_dir()
    if path is None:
        source = "embedded default"
        text = EMBEDDED_ST2_CONF.format(sqlite_file=SQLITE_FILE_NAME, data_dir=data_dir)
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigurationError(source, f"cannot read: {error.strerror}") from None
    raw = _read_ini(text, source)
    system: SystemSection = _section(raw, "system", source)
    if system.data_dir:
        data_dir = Path(system.data_dir).expanduser()
    content: ContentSection = _section(raw, "content", source)
    packs = [Path(p).expanduser() for p in content.packs_base_paths.split(":") if p.strip()]
    database: DatabaseSection = _section(raw, "database", source)
    coordination = _coordination(raw, source)
    messaging: MessagingSection = _section(raw, "messaging", source)
    system_user: SystemUserSection = _section(raw, "system_user", source)
    log: LogSection = _section(raw, "log", source)
    keyvalue: KeyValueSection = _section(raw, "keyvalue", source)
    auth: AuthSection = _section(raw, "auth", source)
    if not auth.enable:
        raise ConfigurationError(
            f"[auth] enable in {source}",
            "false is not supported: the engine's API always requires a token or an API key",
        )
    installed = path is not None and path.resolve() == DEFAULT_ST2_CONFIG_PATH.resolve()
    host_dirs = (
        (SYSTEM_RUN_DIR, SYSTEM_LOG_DIR) if installed else (data_dir / "run", data_dir / "logs")
    )
    return St2Config(
        source=source,
        data_dir=data_dir,
        database=_engine_database(database, data_dir, source),
        coordination=coordination,
        api=_section(raw, "api", source),
        auth=auth,
        stream=_section(raw, "stream", source),
        messaging_url=messaging.url,
        packs_base_paths=tuple(packs),
        system_user=system_user.user,
        log_level=log.level.upper(),
        actionrunner=_section(raw, "actionrunner", source),
        scheduler=_section(raw, "scheduler", source),
        workflow_engine=_section(raw, "workflow_engine", source),
        rulesengine=_section(raw, "rulesengine", source),
        notifier=_section(raw, "notifier", source),
        timersengine=_section(raw, "timersengine", source),
        garbagecollector=_section(raw, "garbagecollector", source),
        action_sensor=_section(raw, "action_sensor", source),
        sensorcontainer=_section(raw, "sensorcontainer", source),
        validate_trigger_payload=system.validate_trigger_payload,
        packs=_section(raw, "packs", source),
        run_dir=Path(system.run_dir).expanduser() if system.run_dir else host_dirs[0],
        log_dir=Path(system.log_dir).expanduser() if system.log_dir else host_dirs[1],
        datastore_key_path=Path(keyvalue.encryption_key_path).expanduser()
        if keyvalue.encryption_key_path
        else data_dir / "keys" / "datastore.key",
        http_allowed_networks=_section(raw, "http_runner", source).allowed_networks,
        winrm_allowed_networks=_section(raw, "winrm_runner", source).allowed_networks,
        rbac=_section(raw, "rbac", source),
        rbac_definitions_dir=_rbac_definitions_dir(system, data_dir, installed),
        sections=raw,
    )


def log_unread_st2_settings(config: St2Config) -> None:
    """Log one warning naming the st2.conf settings this process will not act on."""
    unread = unread_st2_settings(config.sections)
    if unread:
        logger.warning(
            "%s: settings PoundCake does not read (StackStorm's are not supported here; "
            "unknown ones are ignored, as StackStorm ignores them): %s",
            config.source,
            ", ".join(unread),
        )


# --- PoundCake's environment ----------------------------------------------------------------


class Settings(BaseSettings):
    """PoundCake's settings from the environment and ``.env`` (seed step 8)."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str | None = Field(default=None, alias="DATABASE_URL")
    st2_database_url: str | None = Field(default=None, alias="ST2_DATABASE_URL")
    st2_table_prefix: str | None = Field(
        default=None, alias="ST2_TABLE_PREFIX", pattern=r"^[A-Za-z0-9_]*$"
    )
    st2_config_path: str | None = Field(default=None, alias="ST2_CONFIG_PATH")
    st2_api_url: str = Field(default="http://127.0.0.1:9101/v1", alias="ST2_API_URL")
    st2_stream_url: str = Field(default="http://127.0.0.1:9102/v1/stream", alias="ST2_STREAM_URL")
    st2_api_key: SecretStr | None = Field(default=None, alias="ST2_API_KEY")
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    celery_broker_url: str | None = Field(default=None, alias="CELERY_BROKER_URL")

    environment: Literal["development", "production"] = Field(
        default="development", alias="POUNDCAKE_ENV"
    )
    data_dir: Path = Field(default_factory=default_data_dir, alias="POUNDCAKE_DATA_DIR")
    log_level: str = Field(
        default="INFO",
        alias="POUNDCAKE_LOG_LEVEL",
        pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$",
    )
    host: str = Field(default="127.0.0.1", alias="POUNDCAKE_HOST")
    port: int = Field(default=8080, ge=1, le=65535, alias="POUNDCAKE_PORT")
    # Alertmanager intake: bearer tokens it may send (comma-separated), or a file with one per
    # line; with neither, a token is generated into <data_dir>/secrets/webhook-token.
    webhook_tokens: SecretStr | None = Field(default=None, alias="POUNDCAKE_WEBHOOK_TOKENS")
    webhook_token_file: Path | None = Field(default=None, alias="POUNDCAKE_WEBHOOK_TOKEN_FILE")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, alias="POUNDCAKE_MAX_BODY_BYTES")
    max_alerts_per_request: int = Field(default=1000, ge=1, alias="POUNDCAKE_MAX_ALERTS")
    # CABs: the directory of CAB YAML files, and the engine pack the CABs are written into.
    cabs_dir: Path | None = Field(default=None, alias="POUNDCAKE_CABS_DIR")
    cabs_pack_dir: Path | None = Field(default=None, alias="POUNDCAKE_CABS_PACK_DIR")
    # ST2_API_KEY, or a file holding it (embedded default: <data_dir>/secrets/st2-api-key).
    st2_api_key_file: Path | None = Field(default=None, alias="ST2_API_KEY_FILE")
    # How long a delivery may stay unprocessed before the relay hands it to Celery again.
    relay_after_seconds: float = Field(default=10.0, gt=0, alias="POUNDCAKE_RELAY_AFTER_SECONDS")
    # How long poundcake-api and -worker wait on MariaDB to answer (read, write, a free pooled
    # connection) before the request fails as database unavailable (503); commands wait forever.
    database_timeout_seconds: float = Field(
        default=10.0, gt=0, le=3600, alias="POUNDCAKE_DATABASE_TIMEOUT_SECONDS"
    )
    # How long a web UI login lasts (its server-side session), in seconds.
    ui_session_seconds: int = Field(default=28800, ge=60, alias="POUNDCAKE_UI_SESSION_SECONDS")
    # Run safety (issue 21): Alertmanager's base URL (its v2 API: silences while a CAB runs,
    # asking whether an alert still fires), and the longest a silence lasts if nobody expires it.
    alertmanager_url: str | None = Field(default=None, alias="POUNDCAKE_ALERTMANAGER_URL")
    silence_max_seconds: int = Field(
        default=3600, ge=60, le=7 * 24 * 3600, alias="POUNDCAKE_SILENCE_MAX_SECONDS"
    )
    # The admission guards (remediation/guards): the global storm breaker holds alerts past
    # POUNDCAKE_STORM_MAX_ALERTS new episodes in the window (0 = off); a breaker closes after a
    # quiet period without trips; target locks are leases renewed while their run lives, and an
    # alert waiting for a locked target is tried again every retry interval.
    storm_max_alerts: int = Field(default=1000, ge=0, alias="POUNDCAKE_STORM_MAX_ALERTS")
    storm_window_seconds: float = Field(default=60.0, gt=0, alias="POUNDCAKE_STORM_WINDOW_SECONDS")
    breaker_quiet_seconds: float = Field(
        default=300.0, gt=0, alias="POUNDCAKE_BREAKER_QUIET_SECONDS"
    )
    target_lock_lease_seconds: float = Field(
        default=120.0, ge=5, alias="POUNDCAKE_TARGET_LOCK_LEASE_SECONDS"
    )
    target_lock_retry_seconds: float = Field(
        default=2.0, gt=0, alias="POUNDCAKE_TARGET_LOCK_RETRY_SECONDS"
    )

    @field_validator("st2_stream_url")
    @classmethod
    def _stream_is_http(cls, value: str) -> str:
        """The stream is server-sent events over HTTP; the guide's ``ws://`` URL means the same."""
        for websocket, http in (("ws://", "http://"), ("wss://", "https://")):
            if value.startswith(websocket):
                return http + value[len(websocket) :]
        return value

    @field_validator("alertmanager_url")
    @classmethod
    def _alertmanager_is_http(cls, value: str | None) -> str | None:
        """An http(s) base URL with a host, such as ``http://127.0.0.1:9093``."""
        if value is None or not value.strip():
            return None
        parsed = urlsplit(value.strip())
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError("must be an http(s) URL with a host, like http://127.0.0.1:9093")
        if parsed.query or parsed.fragment:
            raise ValueError("must be a base URL without a query or fragment")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _no_placeholders_in_production(self) -> Settings:
        key = self.st2_api_key.get_secret_value() if self.st2_api_key else ""
        if self.environment == "production" and key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "ST2_API_KEY is a placeholder; create a key with `st2 apikey create -k` "
                "(POUNDCAKE_ENV=production)"
            )
        return self


@dataclass(frozen=True)
class PoundCakeConfig:
    """PoundCake's resolved configuration: settings plus where both sets of tables live."""

    settings: Settings
    database: DatabaseTarget
    engine_database: DatabaseTarget

    @property
    def engine_schema(self) -> str | None:
        """Return the engine's database name when it differs from PoundCake's, else None."""
        if self.engine_database.backend == "sqlite":
            return None
        if self.engine_database.database == self.database.database:
            return None
        return self.engine_database.database


def _setting_name(error: PydanticValidationError) -> tuple[str, str]:
    problem = error.errors()[0]
    if not problem["loc"]:
        return "POUNDCAKE_ENV", str(problem["msg"]).removeprefix("Value error, ")
    field_name = str(problem["loc"][0])
    alias = Settings.model_fields[field_name].alias if field_name in Settings.model_fields else None
    return alias or field_name, str(problem["msg"])


def load_settings(env_file: str | Path | None = None) -> Settings:
    """Read PoundCake's settings from the environment and the ``.env`` file: ``env_file``, else
    ``./.env``, else (a host laid out by ``poundcake install``) ``/etc/poundcake/poundcake.env``
    if this user may read it."""
    if env_file is None:
        env_file = _installed_env_file()
    try:
        if env_file is None:
            return Settings()
        return Settings(_env_file=env_file)
    except PydanticValidationError as error:
        name, problem = _setting_name(error)
        raise ConfigurationError(name, problem) from None


def _installed_env_file() -> Path | None:
    """``/etc/poundcake/poundcake.env`` when there is no ``./.env`` and this user may read it."""
    if not Path(".env").exists() and os.access(SYSTEM_ENV_FILE, os.R_OK):
        return SYSTEM_ENV_FILE
    return None


def log_unread_env_settings(env_file: str | Path | None = None) -> None:
    """Log one warning naming the ``.env`` settings (and guide settings) PoundCake ignores."""
    read = [field.alias or name for name, field in Settings.model_fields.items()]
    chosen = Path(env_file) if env_file is not None else _installed_env_file() or Path(".env")
    unread = unread_env_settings(chosen, read, os.environ)
    if unread:
        logger.warning("Settings PoundCake does not read: %s", ", ".join(unread))


def load_poundcake_config(
    settings: Settings | None = None, st2_config: St2Config | None = None
) -> PoundCakeConfig:
    """Resolve where PoundCake's tables and the engine's tables live."""
    settings = settings or load_settings()
    data_dir = settings.data_dir
    if settings.database_url:
        database = DatabaseTarget(
            url=normalise_database_url(settings.database_url, "DATABASE_URL", data_dir),
            setting="DATABASE_URL",
        )
    else:
        embedded = URL.create("sqlite", database=str(data_dir / SQLITE_FILE_NAME))
        database = DatabaseTarget(url=embedded, setting="DATABASE_URL (embedded default)")
    if settings.st2_table_prefix is not None:
        prefix = settings.st2_table_prefix
    else:
        if st2_config is None and find_st2_config(settings.st2_config_path) is not None:
            st2_config = load_st2_config(settings.st2_config_path)
        prefix = st2_config.database.table_prefix if st2_config else ""
    if settings.st2_database_url:
        engine_url = normalise_database_url(settings.st2_database_url, "ST2_DATABASE_URL", data_dir)
        engine_database = DatabaseTarget(
            url=engine_url, setting="ST2_DATABASE_URL", table_prefix=prefix
        )
        if not engine_database.same_server(database):
            raise ConfigurationError(
                "ST2_DATABASE_URL",
                f"must be on the same server as DATABASE_URL ({database.describe()}) so that "
                "the extension tables' foreign keys can reach the engine tables",
            )
    else:
        engine_database = DatabaseTarget(
            url=database.url, setting=database.setting, table_prefix=prefix
        )
    return PoundCakeConfig(settings=settings, database=database, engine_database=engine_database)
