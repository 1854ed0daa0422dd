"""The entry point of a sensor's process: eventlet's monkey-patching first, then the wrapper.

StackStorm's sensor wrapper monkey-patches the standard library with eventlet (``os``,
``select``, ``socket``, ``thread``, ``time``) before it imports anything else, and pack sensors
rely on it: a passive sensor's ``run()`` may block in a plain socket call or ``time.sleep`` while
green threads it started with ``eventlet.spawn`` keep dispatching. So the sensor container runs
``python -m poundcake.engine.sensors.green``, which patches the same modules before the wrapper
and what it uses (SQLAlchemy and PyMySQL, kombu, our trigger watcher and dispatcher threads) are
imported: their sockets, locks, queues and threads are then green, as StackStorm's are.

Like StackStorm's ``use_select_poll_workaround``, the blocking ``select.poll``, which eventlet
removes, is put back for libraries a sensor calls that use it (a sensor runs in a process of its
own, so blocking there stalls nothing else).

Nothing is patched on import: only when run as ``__main__``.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any


def monkey_patch() -> None:
    """Patch the standard library as StackStorm's ``st2common.util.monkey_patch`` does."""
    # eventlet's import warns that it is deprecated, and dnspython (which it loads) about DSA
    # keys; neither says anything about the sensor.
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
    warnings.filterwarnings("ignore", message="DSA is deprecated", module="dns")
    import eventlet  # type: ignore[import-untyped]

    eventlet.monkey_patch(os=True, select=True, socket=True, thread=True, time=True)
    _restore_blocking_poll(eventlet.patcher.original("select").poll)


def _restore_blocking_poll(poll: Any) -> None:
    import select
    import selectors
    import subprocess

    select.poll = poll  # type: ignore[misc]
    sys.modules["select"] = select
    subprocess.select = select  # type: ignore[attr-defined]
    sys.modules["selectors"] = selectors
    selectors.select = select  # type: ignore[attr-defined]


def main() -> int:
    """Patch, then run the sensor wrapper; return its exit code."""
    monkey_patch()
    from poundcake.engine.sensors.wrapper import main as run_wrapper

    return run_wrapper()


if __name__ == "__main__":
    sys.exit(main())
