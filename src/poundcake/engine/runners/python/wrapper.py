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
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from poundcake.engine.runners.python.action_service import ActionService, ApiAccess
from poundcake.exceptions import ValidationError

ACTION_BASE_MODULE = "st2common.runners.base_action"
ACTION_LOGGER = "actions.python"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s [-] %(message)s"
# StackStorm's AUDIT level sits above CRITICAL.
LOG_LEVELS = {"AUDIT": logging.CRITICAL + 10}
# StackStorm's exit code for a status that is neither True nor False (and its message).
INVALID_STATUS_EXIT_CODE = 220
INVALID_STATUS_MESSAGE = (
    "Status returned from the action run() method must either be True or False, got: {status}\n"
    "If this is an existing action which returns a tuple with two items, it needs to be updated "
    "to either:\n\n1. Return a list instead of a tuple\n2. Return a tuple where a first items is "
    "a status flag - (True, ('item1', 'item2'))\n"
)


class InvalidStatusError(Exception):
    """``run()`` returned a pair whose first item is not a boolean (nor None)."""


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


def _implements_run(cls: type[Any]) -> bool:
    run = inspect.getattr_static(cls, "run", None)
    return inspect.isfunction(run) and not getattr(run, "__isabstractmethod__", False)


def load_action_class(path: Path) -> type[Any]:
    """Import ``path`` and return its action class.

    That is the most derived concrete ``Action`` subclass defined in the file. As StackStorm's
    loader does, a file whose classes do not subclass ``Action`` (the Exchange's ``jira`` pack
    defines its own ``Action``) gets the first of its classes, by name, that implements
    ``run``, and among several candidates the first by name is taken.
    """
    base: type[Any] = importlib.import_module(ACTION_BASE_MODULE).Action
    # Appended, as StackStorm's loader does: the pack's modules never hide installed ones.
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.append(directory)
    module = _import_module(path)
    defined = sorted(
        (
            value
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == module.__name__
        ),
        key=lambda cls: cls.__name__,
    )
    candidates = [
        cls
        for cls in defined
        if issubclass(cls, base) and cls is not base and not inspect.isabstract(cls)
    ]
    leaves = [
        candidate
        for candidate in candidates
        if not any(other is not candidate and issubclass(other, candidate) for other in candidates)
    ]
    if not leaves:
        leaves = [cls for cls in defined if _implements_run(cls)]
    if not leaves:
        raise ValidationError(
            f"{path} defines no action class: no subclass of {ACTION_BASE_MODULE}.Action "
            "and no class with a run method"
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
    """``run()`` may return ``(succeeded, result)``; otherwise the status is unknown (None).

    As in StackStorm, the first item of a pair must be True, False or None.
    """
    if not (isinstance(output, tuple) and len(output) == 2):
        return None, output
    status, result = output
    if status is not None and not isinstance(status, bool):
        raise InvalidStatusError(INVALID_STATUS_MESSAGE.format(status=status))
    if status is not None:
        # StackStorm keeps a result it cannot serialize as its text.
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            result = str(result)
    return status, result


def _encode(document: dict[str, Any]) -> str:
    try:
        return json.dumps(document)
    except (TypeError, ValueError):
        return json.dumps(document, default=repr)


def run_action(request: dict[str, Any]) -> dict[str, Any]:
    """Load and run the action described by ``request``; return the result document."""
    action_class = load_action_class(Path(request["entry_point"]))
    api = request.get("api")
    service = ActionService(
        pack=str(request.get("pack") or ""),
        class_name=action_class.__name__,
        user=str(request.get("user") or "stanley"),
        log_level=str(request.get("log_level") or ""),
        api=ApiAccess(url=str(api["url"]), token=str(api["token"])) if api else None,
    )
    try:
        action = _instantiate(action_class, request.get("config") or {}, service)
        status, result = _split_status(action.run(**(request.get("parameters") or {})))
    finally:
        service.close()
    return {"result": result, "status": status}


def _instantiate(action_class: type[Any], config: dict[str, Any], service: ActionService) -> Any:
    """Create the action; an old-style constructor without ``action_service`` gets it set
    afterwards, as StackStorm does."""
    try:
        return action_class(config=config, action_service=service)
    except TypeError as error:
        if "unexpected keyword argument 'action_service'" not in str(error):
            raise
    action = action_class(config=config)
    action.action_service = service
    return action


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m " + __name__)
    parser.add_argument("--input-fd", type=int, required=True)
    parser.add_argument("--result-fd", type=int, required=True)
    return parser.parse_args(argv)


def _quiet_known_warnings() -> None:
    # dnspython (which eventlet imports) loads cryptography's DSA on import, which warns on
    # every action's stderr about something the action never uses.
    warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"dns\.dnssecalgs")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one action; return the process exit code."""
    arguments = _arguments(argv)
    _quiet_known_warnings()
    # Programs the action starts must not inherit the result pipe and hold it open.
    os.set_inheritable(arguments.result_fd, False)
    with os.fdopen(arguments.input_fd, "rb") as source:
        request = json.loads(source.read())
    _configure_logging(str(request.get("log_level") or "DEBUG"))
    try:
        document = run_action(request)
    except InvalidStatusError as error:
        sys.stderr.write(str(error))
        sys.stderr.flush()
        return INVALID_STATUS_EXIT_CODE
    except Exception:  # noqa: BLE001 - process boundary: the traceback is the action's error report
        sys.stderr.write(traceback.format_exc())
        sys.stderr.flush()
        return 1
    with os.fdopen(arguments.result_fd, "w", encoding="utf-8") as sink:
        sink.write(_encode(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
