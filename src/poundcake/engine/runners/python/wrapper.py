"""The action subprocess of the ``python-script`` runner.

Run as ``python -m poundcake.engine.runners.python.wrapper --input-fd N --result-fd M``. It reads
the request (JSON) from descriptor N, loads the action module, instantiates its one
:class:`Action` subclass with the pack config and an action service, calls ``run(**parameters)``
and writes ``{"result": ..., "status": ...}`` to descriptor M. A failing action exits 1 with its
traceback on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine

from poundcake.config import load_st2_config
from poundcake.db.engine import make_st2_engine
from poundcake.db.session import make_session_factory
from poundcake.engine.keyvalue.crypto import key_path_from_config
from poundcake.engine.keyvalue.datastore import SessionDatastore
from poundcake.engine.messaging import Publisher
from poundcake.exceptions import ValidationError

ACTION_BASE_MODULE = "st2common.runners.base_action"
ACTION_LOGGER = "actions.python"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [-] %(message)s"
# StackStorm's AUDIT level sits above CRITICAL.
LOG_LEVELS = {"AUDIT": logging.CRITICAL + 10}


class ActionService:
    """``self.action_service``: datastore access namespaced to the action's pack and class."""

    def __init__(self, *, user: str, local_prefix: str) -> None:
        self._user = user
        self._local_prefix = local_prefix
        self._engine: Engine | None = None
        self._datastore: SessionDatastore | None = None
        self._publisher: Publisher | None = None

    def _store(self) -> SessionDatastore:
        # Connect on first use: an action that never touches the datastore needs no database.
        if self._datastore is None:
            config = load_st2_config()
            self._engine = make_st2_engine(config, pool_size=1)
            self._publisher = Publisher(config.messaging_url)
            self._datastore = SessionDatastore(
                make_session_factory(self._engine),
                key_path=key_path_from_config(config),
                user=self._user,
                local_prefix=self._local_prefix,
                publisher=self._publisher,
            )
        return self._datastore

    def get_value(
        self, name: str, local: bool = True, scope: str = "system", decrypt: bool = False
    ) -> str | None:
        """Return a datastore value, or None when it does not exist."""
        return self._store().get_value(name, local=local, scope=scope, decrypt=decrypt)

    def set_value(
        self,
        name: str,
        value: str,
        ttl: int | None = None,
        local: bool = True,
        scope: str = "system",
        encrypt: bool = False,
    ) -> bool:
        """Create or replace a datastore value."""
        return self._store().set_value(
            name, value, ttl=ttl, local=local, scope=scope, encrypt=encrypt
        )

    def delete_value(self, name: str, local: bool = True, scope: str = "system") -> bool:
        """Delete a datastore value; False when it did not exist."""
        return self._store().delete_value(name, local=local, scope=scope)

    def list_values(
        self,
        local: bool = True,
        prefix: str | None = None,
        limit: int | None = None,
        offset: int = 0,
        scope: str = "system",
        decrypt: bool = False,
    ) -> list[dict[str, Any]]:
        """List datastore values as KeyValuePair documents."""
        return self._store().list_values(
            local=local, prefix=prefix, scope=scope, decrypt=decrypt, limit=limit, offset=offset
        )

    def close(self) -> None:
        """Release the database and broker connections, if any were opened."""
        if self._publisher is not None:
            self._publisher.close()
        if self._engine is not None:
            self._engine.dispose()


def _import_module(path: Path) -> ModuleType:
    # Name the module after its file, as StackStorm does, unless that would shadow a loaded one.
    name = path.stem if path.stem not in sys.modules else f"_pack_action_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValidationError(f"{path} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_action_class(path: Path) -> type[Any]:
    """Import ``path`` and return the one concrete Action subclass defined in it."""
    base: type[Any] = importlib.import_module(ACTION_BASE_MODULE).Action
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    module = _import_module(path)
    candidates = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
        and value.__module__ == module.__name__
        and not inspect.isabstract(value)
    ]
    leaves = [
        candidate
        for candidate in candidates
        if not any(other is not candidate and issubclass(other, candidate) for other in candidates)
    ]
    if len(leaves) != 1:
        found = ", ".join(sorted(cls.__name__ for cls in leaves)) or "none"
        raise ValidationError(
            f"{path} must define exactly one subclass of {ACTION_BASE_MODULE}.Action "
            f"(found: {found})"
        )
    return leaves[0]


def _configure_logging(level_name: str) -> None:
    level = LOG_LEVELS.get(level_name.upper()) or logging.getLevelName(level_name.upper())
    if not isinstance(level, int):
        level = logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    action_logger = logging.getLogger(ACTION_LOGGER)
    action_logger.addHandler(handler)
    action_logger.setLevel(level)
    action_logger.propagate = False
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT, stream=sys.stderr)


def _split_status(output: Any) -> tuple[bool | None, Any]:
    """``run()`` may return ``(succeeded, result)``; otherwise the status is unknown (None)."""
    if isinstance(output, tuple) and len(output) == 2:
        return bool(output[0]), output[1]
    return None, output


def _encode(document: dict[str, Any]) -> str:
    try:
        return json.dumps(document)
    except (TypeError, ValueError):
        return json.dumps(document, default=repr)


def run_action(request: dict[str, Any]) -> dict[str, Any]:
    """Load and run the action described by ``request``; return the result document."""
    action_class = load_action_class(Path(request["entry_point"]))
    service = ActionService(
        user=str(request.get("user") or "stanley"),
        local_prefix=f"{request.get('pack', '')}.{action_class.__name__}",
    )
    try:
        action = action_class(config=request.get("config") or {}, action_service=service)
        status, result = _split_status(action.run(**(request.get("parameters") or {})))
    finally:
        service.close()
    return {"result": result, "status": status}


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m " + __name__)
    parser.add_argument("--input-fd", type=int, required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one action; return the process exit code."""
    arguments = _arguments(argv)
    # Programs the action starts must not inherit the result pipe and hold it open.
    os.set_inheritable(arguments.result_fd, False)
    with os.fdopen(arguments.input_fd, "rb") as source:
        request = json.loads(source.read())
    _configure_logging(str(request.get("log_level") or "DEBUG"))
    try:
        document = run_action(request)
    except Exception:  # noqa: BLE001 - process boundary: the traceback is the action's error report
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()
        return 1
    with os.fdopen(arguments.result_fd, "w", encoding="utf-8") as sink:
        sink.write(_encode(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
