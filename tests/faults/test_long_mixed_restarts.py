"""Ten minutes (``POUNDCAKE_FAULT_MINUTES``) of mixed crashes and restarts under a steady alert
load: afterwards every alert's remediation is over, no step ran twice, no episode was dispatched
twice, and no execution is left non-terminal past its timeout.

Long: collected only with ``POUNDCAKE_LONG_FAULTS=1`` (``scripts/fault-tests.sh``).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable

from tests.e2e.stack import TOKEN, wait_for_health
from tests.faults.conftest import FaultProduct
from tests.faults.load import (
    TERMINAL_EXECUTIONS,
    Sender,
    dispatches,
    query,
    side_effects,
    wait_settled,
)
from tests.faults.processes import forget, kill, process, start
from tests.integration.support.st2cli import eventually

RATE = 1.0
STEP_TIMEOUT = 60


def restart_after_kill(faulty: FaultProduct, name: str) -> None:
    kill(faulty.product, name)
    time.sleep(1)
    start(faulty.product, name)


def restart_after_sigterm(faulty: FaultProduct, name: str) -> None:
    stopped = process(faulty.product, name)
    stopped.send_signal(signal.SIGTERM)
    stopped.wait(timeout=30)
    forget(faulty.product, name)
    start(faulty.product, name)
    if name == "poundcake-api":
        wait_for_health(f"{faulty.product.api_url}/health")


def restart_redis(faulty: FaultProduct) -> None:
    faulty.redis.kill()
    time.sleep(2)
    faulty.redis.start()
    faulty.redis.wait_ready()


FAULTS: dict[str, Callable[[FaultProduct], None]] = {
    "kill -9 poundcake-worker": lambda f: restart_after_kill(f, "poundcake-worker"),
    "kill -9 poundcake-beat": lambda f: restart_after_kill(f, "poundcake-beat"),
    "kill -9 poundcake-api": lambda f: restart_after_kill(f, "poundcake-api"),
    "SIGTERM poundcake-api": lambda f: restart_after_sigterm(f, "poundcake-api"),
    "SIGTERM poundcake-worker": lambda f: restart_after_sigterm(f, "poundcake-worker"),
    "kill -9 st2actionrunner": lambda f: restart_after_kill(f, "st2actionrunner"),
    "kill -9 st2scheduler": lambda f: restart_after_kill(f, "st2scheduler"),
    "kill -9 st2rulesengine": lambda f: restart_after_kill(f, "st2rulesengine"),
    "SIGTERM st2api": lambda f: restart_after_sigterm(f, "st2api"),
    "Redis crash, restarted empty": restart_redis,
}


def non_terminal(database: str) -> list[tuple[object, ...]]:
    marks = ", ".join(["%s"] * len(TERMINAL_EXECUTIONS))
    return query(
        database,
        "SELECT id, action, status, start_timestamp FROM execution_db "
        f"WHERE status NOT IN ({marks})",
        *sorted(TERMINAL_EXECUTIONS),
    )


def test_ten_minutes_of_mixed_restarts(faulty: FaultProduct) -> None:
    product = faulty.product
    seconds = float(os.environ.get("POUNDCAKE_FAULT_MINUTES", "10")) * 60
    seed = int(os.environ.get("POUNDCAKE_FAULT_SEED", str(int(time.time()))))
    rng = random.Random(seed)
    sender = Sender(f"{product.api_url}/api/v1/webhook", TOKEN)
    keys = sender.start(int(seconds * RATE), rate=RATE)

    injected: Counter[str] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(rng.uniform(5, 20))
        name = rng.choice(sorted(FAULTS))
        FAULTS[name](faulty)
        injected[name] += 1
    sender.wait(timeout=600)

    assert not sender.rejected, sender.rejected[:3]
    assert sorted(sender.accepted) == sorted(keys), f"seed {seed}"
    states = wait_settled(product.database, keys, timeout=600)
    eventually(
        lambda: not non_terminal(product.database),
        "every execution to end",
        timeout=STEP_TIMEOUT * 3,
    )
    counted = side_effects(faulty.effects)
    twice = {key: counted[key] for key in keys if counted[key] > 1}
    assert not twice, f"steps ran twice (seed {seed}, faults {dict(injected)}): {twice}"
    remediated = [key for key, state in states.items() if state == "remediated"]
    assert all(counted[key] == 1 for key in remediated), f"seed {seed}"
    assert set(dispatches(product.database, keys).values()) == {1}, f"seed {seed}"
    outcome = Counter(states.values())
    assert set(outcome) <= {"remediated", "failed"}, outcome
    # Nothing restarts a crashed service here: the product recovers from every fault by itself.
    assert not faulty.crashes.crashed, f"services crashed (seed {seed}): {faulty.crashes.crashed}"
    print(
        f"seed {seed}: faults {dict(injected)}; outcomes {dict(outcome)}; "
        f"crashed: {len(faulty.crashes.crashed)}"
    )
