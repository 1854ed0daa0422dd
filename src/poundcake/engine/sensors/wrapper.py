"""The process one sensor runs in: StackStorm's sensor wrapper, written for PoundCake.

Run by the sensor container as ``python -P -m poundcake.engine.sensors.green --pack P
--file-path F --class-name C [--trigger-type-refs a,b] [--poll-interval N] --status-fd S``
(:mod:`~poundcake.engine.sensors.green` monkey-patches with eventlet, then calls :func:`main`), with
the pack's interpreter and ``PYTHONPATH`` (:mod:`poundcake.engine.sensors.environment`). It
imports the sensor class, gives it a :class:`SensorService` and the pack's config, calls
``setup()``, watches the triggers of the sensor's types (``add_trigger``, ``update_trigger``,
``remove_trigger``), then calls ``run()``. On SIGTERM it calls ``cleanup()``, stores what was
dispatched and exits 0.

It reports each stage on descriptor S as one JSON line (``{"stage": "running"}``, or
``{"stage": "import"|"setup"|"run", "error": ...}``) so the container can show why a sensor
failed in ``st2 sensor get``.
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import importlib.util
import json
import logging
import os
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, ModuleType
from typing import IO, Any

from poundcake.config import St2Config, load_st2_config
from poundcake.db.retry import in_transaction
from poundcake.engine.keyvalue.datastore import SessionDatastore
from poundcake.engine.runtime import EngineRuntime, make_runtime
from poundcake.engine.sensors.dispatch import TriggerDispatcher
from poundcake.engine.sensors.service import pack_config
from poundcake.engine.sensors.triggerwatch import TriggerWatcher
from poundcake.exceptions import ConfigurationError, ValidationError

SENSOR_BASE_MODULE = "st2reactor.sensor.base"
SENSOR_USER = "sensor_service"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [-] %(message)s"
PR_SET_PDEATHSIG = 1
FLUSH_TIMEOUT = 10.0

logger = logging.getLogger(__name__)


class KeyValuePair:
    """A datastore item as ``list_values`` returns it (st2client's model: attributes)."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.__dict__.update(document)

    def __repr__(self) -> str:
        return f"<KeyValuePair name={self.__dict__.get('name')!r}>"


class SensorService:
    """``self.sensor_service``: dispatch, loggers and the datastore, as StackStorm's."""

    def __init__(
        self,
        *,
        dispatcher: TriggerDispatcher,
        datastore: SessionDatastore,
        logger_name: str,
        page_size: int,
    ) -> None:
        self._dispatcher = dispatcher
        self._datastore = datastore
        self._logger_name = logger_name
        self._page_size = page_size
        self._trace_warned = False

    @property
    def datastore_service(self) -> SessionDatastore:
        """The datastore the value methods use."""
        return self._datastore

    def get_logger(self, name: str) -> logging.Logger:
        """A logger named after the sensor and ``name``."""
        named = logging.getLogger(f"{self._logger_name}.{name}")
        named.propagate = True
        return named

    def get_user_info(self) -> dict[str, Any]:
        """Who the datastore calls act for: the sensors' service user (StackStorm asks its API
        as that user; the answer has the same shape)."""
        return {
            "username": SENSOR_USER,
            "authentication": {"method": "sensor service", "location": "sensor container"},
            "rbac": {"enabled": False, "roles": [], "is_admin": True},
        }

    def dispatch(self, trigger: Any, payload: Any = None, trace_tag: Any = None) -> None:
        """Dispatch one occurrence of ``trigger`` (a reference or a trigger dictionary)."""
        self._note_trace(trace_tag)
        self._dispatcher.dispatch(trigger, payload)

    def dispatch_with_context(
        self, trigger: Any, payload: Any = None, trace_context: Any = None
    ) -> None:
        """Dispatch one occurrence of ``trigger``; the trace context is not kept (no traces)."""
        self._note_trace(trace_context)
        self._dispatcher.dispatch(trigger, payload)

    def _note_trace(self, trace: Any) -> None:
        if trace is not None and not self._trace_warned:
            self._trace_warned = True
            logging.getLogger(self._logger_name).warning(
                "trace_tag / trace_context is not supported (no traces are stored); "
                "the trigger instances are dispatched without it"
            )

    def list_values(
        self,
        local: bool = True,
        prefix: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[KeyValuePair]:
        """Datastore items (local to this sensor unless ``local=False``), by name prefix."""
        documents = self._datastore.list_values(
            local=local, prefix=prefix, limit=limit or self._page_size, offset=offset or 0
        )
        return [KeyValuePair(document) for document in documents]

    def get_value(
        self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        """The item's value, or None when it does not exist."""
        return self._datastore.get_value(name, local=local, scope=scope, decrypt=decrypt)

    def set_value(
        self,
        name: str,
        value: Any,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        """Create or replace an item (its value as a string, as StackStorm stores it)."""
        return self._datastore.set_value(
            name, str(value), ttl=ttl, local=local, scope=scope, encrypt=encrypt
        )

    def delete_value(self, name: str, local: bool = True, scope: str = "system") -> bool:
        """Delete an item; False when it did not exist."""
        return self._datastore.delete_value(name, local=local, scope=scope)


class StatusReporter:
    """Writes the wrapper's stages to the container, one JSON line each."""

    def __init__(self, sink: IO[str] | None) -> None:
        self._sink = sink

    def report(self, stage: str, error: str | None = None) -> None:
        """Tell the container the sensor reached ``stage`` (or failed there with ``error``)."""
        if self._sink is None:
            return
        document: dict[str, Any] = {"stage": stage}
        if error is not None:
            document["error"] = error
        try:
            self._sink.write(json.dumps(document) + "\n")
            self._sink.flush()
        except OSError:
            self._sink = None


def _import_module(path: Path) -> ModuleType:
    name = path.stem if path.stem not in sys.modules else f"_pack_sensor_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_sensor_class(path: Path, class_name: str) -> type[Any]:
    """Import ``path`` and return its sensor class ``class_name``."""
    base: type[Any] = importlib.import_module(SENSOR_BASE_MODULE).BaseSensor
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    module = _import_module(path)
    found = getattr(module, class_name, None)
    if not isinstance(found, type):
        raise ValidationError(f'Sensor module {path} is missing a class with name "{class_name}"')
    if not issubclass(found, base):
        raise ValidationError(
            f"{class_name} in {path} is not a subclass of {SENSOR_BASE_MODULE}.Sensor "
            "or PollingSensor"
        )
    return found


def _die_with_parent(parent_pid: int | None) -> None:
    """Ask Linux for SIGTERM when the container dies, so no sensor outlives it."""
    if parent_pid is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        logger.warning("Cannot ask to be stopped with the sensor container (prctl unavailable)")
    if os.getppid() != parent_pid:
        # The container died before the request took effect.
        os.kill(os.getpid(), signal.SIGTERM)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def _request_stop(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


class SensorWrapper:
    """Runs one sensor class in this process."""

    def __init__(self, arguments: argparse.Namespace, reporter: StatusReporter) -> None:
        self.arguments = arguments
        self.reporter = reporter
        self.pack: str = arguments.pack
        self.class_name: str = arguments.class_name
        self.logger = logging.getLogger(f"SensorWrapper.{self.pack}.{self.class_name}")
        self.trigger_types = [ref for ref in (arguments.trigger_type_refs or "").split(",") if ref]
        self.runtime: EngineRuntime | None = None
        self.dispatcher: TriggerDispatcher | None = None
        self.watcher: TriggerWatcher | None = None
        self.sensor: Any = None

    def _service(self, config: St2Config, runtime: EngineRuntime) -> SensorService:
        self.dispatcher = TriggerDispatcher(
            runtime, validate_payload=config.validate_trigger_payload
        )
        datastore = SessionDatastore(
            runtime.sessions,
            key_path=config.datastore_key_path,
            user=SENSOR_USER,
            local_prefix=f"{self.pack}.{self.class_name}",
        )
        return SensorService(
            dispatcher=self.dispatcher,
            datastore=datastore,
            logger_name=self.logger.name,
            page_size=config.api.max_page_size,
        )

    def _instantiate(self, config: St2Config) -> Any:
        sensor_class = load_sensor_class(Path(self.arguments.file_path), self.class_name)
        self.runtime = make_runtime(config, pool_size=3)
        runtime = self.runtime
        service = self._service(config, runtime)
        values = in_transaction(
            runtime.sessions, lambda session: pack_config(session=session, pack=self.pack)
        )
        kwargs: dict[str, Any] = {"sensor_service": service, "config": values}
        polling = importlib.import_module(SENSOR_BASE_MODULE).PollingSensor
        if self.arguments.poll_interval and issubclass(sensor_class, polling):
            kwargs["poll_interval"] = self.arguments.poll_interval
        self.logger.info(
            'Found config for sensor "%s"' if values else 'No config found for sensor "%s"',
            self.class_name,
        )
        return sensor_class(**kwargs)

    def _stage(self, stage: str, work: Any) -> Any:
        try:
            return work()
        except Exception as error:
            detail = f"{type(error).__name__}: {error}\n\n{traceback.format_exc()}"
            self.reporter.report(stage, detail)
            self.logger.exception("Sensor %s failed at %s", self.class_name, stage)
            raise

    def run(self, config: St2Config) -> None:
        """Import, set up and run the sensor until it returns or the process is told to stop."""
        self.sensor = self._stage("import", lambda: self._instantiate(config))
        self.logger.info("Running sensor initialization code")
        self._stage("setup", self.sensor.setup)
        assert self.runtime is not None
        self.watcher = TriggerWatcher(self.runtime, self.trigger_types, self.sensor)
        self.watcher.start()
        self.logger.info(
            "Running sensor in active mode (poll interval=%ss)"
            if self.arguments.poll_interval
            else "Running sensor in passive mode%s",
            self.arguments.poll_interval or "",
        )
        self.reporter.report("running")
        self._stage("run", self.sensor.run)

    def stop(self) -> None:
        """Stop watching triggers, call ``cleanup()``, store what was dispatched."""
        if self.watcher is not None:
            self.watcher.stop()
        if self.sensor is not None:
            try:
                self.logger.info("Invoking cleanup on sensor")
                self.sensor.cleanup()
            except Exception:
                self.logger.exception("Sensor %s cleanup failed", self.class_name)
        if self.dispatcher is not None:
            self.dispatcher.close(FLUSH_TIMEOUT)
        if self.runtime is not None:
            self.runtime.close()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m " + __name__)
    parser.add_argument("--pack", required=True)
    parser.add_argument("--file-path", required=True)
    parser.add_argument("--class-name", required=True)
    parser.add_argument("--trigger-type-refs", default="")
    parser.add_argument("--poll-interval", type=int, default=None)
    parser.add_argument("--status-fd", type=int, default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sensor; return the process exit code."""
    arguments = _arguments(argv)
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    _die_with_parent(arguments.parent_pid)
    sink = None
    if arguments.status_fd is not None:
        os.set_inheritable(arguments.status_fd, False)
        sink = os.fdopen(arguments.status_fd, "w", encoding="utf-8")
    reporter = StatusReporter(sink)
    try:
        config = load_st2_config()
    except ConfigurationError as error:
        reporter.report("import", f"Cannot read the engine's configuration: {error}")
        sys.stderr.write(f"error: {error}\n")
        return 1
    _configure_logging(config.log_level)
    wrapper = SensorWrapper(arguments, reporter)
    try:
        wrapper.run(config)
    except SystemExit as stop:
        return int(stop.code or 0)
    except Exception:  # noqa: BLE001 - process boundary: reported on the status pipe and logged
        return 1
    finally:
        wrapper.stop()
    wrapper.logger.info("Sensor %s returned from run()", wrapper.class_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
