"""The sections of ``st2.conf`` PoundCake reads, with their defaults and limits.

:mod:`poundcake.config` reads the file and validates each section with these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class DatabaseSection(Section):
    """``[database]``: where the engine keeps its tables."""

    backend: Literal["mysql", "sqlite"] = "mysql"
    host: str = "localhost"
    port: int = Field(default=3306, ge=1, le=65535)
    db_name: str = "stackstorm"
    username: str = "stackstorm"
    password: SecretStr = SecretStr("")
    table_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9_]*$")
    socket: str | None = None


class CoordinationSection(Section):
    """``[coordination]``: the backend of locks and the service registry (``mysql://...``)."""

    url: str | None = None
    # StackStorm: the lock TTL where the backend has one. MySQL's locks live as long as their
    # connection, so here it is how long a member that stopped heartbeating stays registered.
    lock_timeout: int = Field(default=60, ge=1)
    service_registry: bool = False


class ListenerSection(Section):
    """``[api]``, ``[auth]`` and ``[stream]``: where each HTTP service listens."""

    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)


class AuthSection(ListenerSection):
    """``[auth]``: token service settings."""

    port: int = Field(default=9100, ge=1, le=65535)
    # Authentication is always on here; ``enable = False`` is refused when st2.conf is read.
    enable: bool = True
    token_ttl: int = Field(default=86400, ge=1)
    # StackStorm's: the API's public base URL (without the version) given to actions, and the
    # lifetime of the tokens issued to them.
    api_url: str | None = None
    service_token_ttl: int = Field(default=86400, ge=1)


class ApiSection(ListenerSection):
    """``[api]``: the REST API."""

    port: int = Field(default=9101, ge=1, le=65535)
    max_page_size: int = Field(default=100, ge=1)
    mask_secrets: bool = True


class StreamSection(ListenerSection):
    """``[stream]``: the server-sent event stream."""

    port: int = Field(default=9102, ge=1, le=65535)
    heartbeat: int = Field(default=25, ge=1)


class MessagingSection(Section):
    """``[messaging]``: the engine's broker (RabbitMQ, or a local transport when embedded)."""

    url: str = "amqp://guest:guest@127.0.0.1:5672//"


class ContentSection(Section):
    """``[content]``: where packs live on disk."""

    packs_base_paths: str = ""
    system_packs_base_path: str | None = None
    # Pack indexes, comma-separated; unset means StackStorm's exchange index.
    index_url: str | None = None


class SystemSection(Section):
    """``[system]``: the data directory and the system user rule-fired executions run as."""

    data_dir: str | None = None
    base_path: str | None = None
    # Sensors' dispatched payloads are checked against their trigger type's payload_schema;
    # False dispatches an invalid one anyway, with a warning (StackStorm's switch).
    validate_trigger_payload: bool = True
    run_dir: str | None = None
    log_dir: str | None = None


class SystemUserSection(Section):
    """``[system_user]``: the user recorded for executions started by rules."""

    user: str = "stanley"


class ActionRunnerSection(Section):
    """``[actionrunner]``: how each action runner process works."""

    concurrency: int = Field(default=8, ge=1, le=512)
    workflow_concurrency: int = Field(default=32, ge=1, le=1024)
    workers: int = Field(default=1, ge=1, le=64)
    lease_seconds: float = Field(default=30.0, gt=0)
    graceful_shutdown_seconds: float = Field(default=10.0, ge=0)
    max_result_bytes: int = Field(default=12 * 1024 * 1024, ge=1024)
    # Where each pack's virtualenv lives (``<virtualenvs_path>/<pack>``); default
    # ``<data_dir>/virtualenvs`` (StackStorm: ``/opt/stackstorm/virtualenvs``).
    virtualenvs_path: str = ""


class SchedulerSection(Section):
    """``[scheduler]``: batching and the sweep that finds lost, delayed and abandoned work."""

    batch_size: int = Field(default=200, ge=1)
    sweep_interval: float = Field(default=2.0, gt=0)
    lost_after: float = Field(default=5.0, gt=0)
    unclaimed_after: float = Field(default=15.0, gt=0)


class WorkflowEngineSection(Section):
    """``[workflow_engine]``: the Orquesta workflow engines."""

    workers: int = Field(default=1, ge=1, le=64)
    batch_size: int = Field(default=200, ge=1, le=5000)
    sweep_interval: float = Field(default=2.0, gt=0)
    # False registers a workflow that fails Orquesta's inspection, with a warning, and fails
    # each run of it, as StackStorm does; True (the default) refuses it at registration.
    refuse_at_registration: bool = True


class KeyValueSection(Section):
    """``[keyvalue]``: the key that encrypts secret datastore values."""

    encryption_key_path: str | None = None


class HttpRunnerSection(Section):
    """``[http_runner]``: private networks the http-request runner may reach (CIDRs)."""

    allowed_networks: str = ""


class WinRmRunnerSection(Section):
    """``[winrm_runner]``: private networks the WinRM runners may reach (CIDRs)."""

    allowed_networks: str = ""


class LogSection(Section):
    """``[log]``: log level."""

    level: str = Field(default="INFO", pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")


class RulesEngineSection(Section):
    """``[rulesengine]``: how the rules engine takes pending trigger instances."""

    batch_size: int = Field(default=100, ge=1, le=1000)
    poll_interval: float = Field(default=1.0, gt=0)


class NotifierSection(Section):
    """``[notifier]``: how the notifier takes finished executions (our settings; StackStorm's
    ``logging`` is named in the unread-settings warning)."""

    batch_size: int = Field(default=100, ge=1, le=1000)
    # The fallback: an execution update wakes the notifier at once.
    poll_interval: float = Field(default=0.5, gt=0)


class TimersEngineSection(Section):
    """``[timersengine]``: interval, date and cron timers."""

    enable: bool = True
    local_timezone: str = "UTC"
    poll_interval: float = Field(default=0.5, gt=0)


class GarbageCollectorSection(Section):
    """``[garbagecollector]``: retention, in days (unset keeps forever), purged in small batches."""

    collection_interval: float = Field(default=600.0, gt=0)
    sleep_delay: float = Field(default=2.0, ge=0)
    batch_size: int = Field(default=500, ge=1, le=10000)
    action_executions_ttl: float | None = Field(default=None, gt=0)
    action_executions_output_ttl: float | None = Field(default=7.0, gt=0)
    trigger_instances_ttl: float | None = Field(default=None, gt=0)
    # StackStorm's switch for ending inquiries past their ttl in timeout (off, as there).
    purge_inquiries: bool = False


_FINISHED_STATUSES = ("succeeded", "failed", "timeout", "canceled", "abandoned")


class ActionSensorSection(Section):
    """``[action_sensor]``: whether finished executions emit ``core.st2.generic.actiontrigger``,
    and for which statuses (``emit_when``, comma-separated, StackStorm's default: all)."""

    enable: bool = True
    emit_when: str = ",".join(_FINISHED_STATUSES)

    @field_validator("emit_when")
    @classmethod
    def _finished_statuses(cls, value: str) -> str:
        statuses = [status.strip() for status in value.split(",") if status.strip()]
        unknown = [status for status in statuses if status not in _FINISHED_STATUSES]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} is not a finished status "
                f"(one of {', '.join(_FINISHED_STATUSES)})"
            )
        return ",".join(statuses)

    @property
    def emit_statuses(self) -> frozenset[str]:
        """The statuses whose executions emit the action trigger (none when disabled)."""
        return frozenset(self.emit_when.split(",")) - {""} if self.enable else frozenset()


class SensorContainerSection(Section):
    """``[sensorcontainer]``: StackStorm's partitioning settings, and our leases and back-off.

    ``partition_provider`` is StackStorm's dictionary option, ``name:<provider>[,key:value]``.
    """

    sensor_node_name: str = "sensornode1"
    partition_provider: str = "name:default"
    single_sensor_mode: bool = False
    # StackStorm's logging.conf path: read so it can be named in a warning (logs go to log_dir).
    logging: str | None = None
    lease_seconds: float = Field(default=15.0, gt=0)
    poll_interval: float = Field(default=1.0, gt=0)
    respawn_delay: float = Field(default=2.5, gt=0)
    max_respawn_delay: float = Field(default=300.0, gt=0)
    stop_timeout: float = Field(default=5.0, ge=0)


class PacksSection(Section):
    """``[packs]``: pack content shared by a pack's actions and sensors."""

    # StackStorm's switch that puts a pack's lib/ first on its actions' and sensors' import path.
    enable_common_libs: bool = False


class RbacSection(Section):
    """``[rbac]``: StackStorm's role-based access control switches.

    ``enable`` with ``backend = default`` enforces permissions; engine services refuse to start
    with ``enable`` on the ``noop`` backend, or with ``permission_isolation`` or
    ``sync_remote_groups`` on, which are not built (``poundcake.engine.rbac.settings``).
    """

    enable: bool = False
    # StackStorm's names: ``noop`` (no checks) and ``default`` (st2-rbac-backend's).
    backend: Literal["noop", "default"] = "noop"
    permission_isolation: bool = False
    sync_remote_groups: bool = False


SECTIONS: dict[str, type[Section]] = {
    "database": DatabaseSection,
    "coordination": CoordinationSection,
    "api": ApiSection,
    "auth": AuthSection,
    "stream": StreamSection,
    "messaging": MessagingSection,
    "content": ContentSection,
    "system": SystemSection,
    "system_user": SystemUserSection,
    "log": LogSection,
    "actionrunner": ActionRunnerSection,
    "scheduler": SchedulerSection,
    "workflow_engine": WorkflowEngineSection,
    "keyvalue": KeyValueSection,
    "http_runner": HttpRunnerSection,
    "winrm_runner": WinRmRunnerSection,
    "rulesengine": RulesEngineSection,
    "notifier": NotifierSection,
    "timersengine": TimersEngineSection,
    "garbagecollector": GarbageCollectorSection,
    "action_sensor": ActionSensorSection,
    "sensorcontainer": SensorContainerSection,
    "packs": PacksSection,
    "rbac": RbacSection,
}
