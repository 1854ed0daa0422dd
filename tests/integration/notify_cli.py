"""The engine with ``st2rulesengine``, ``st2notifier`` and ``st2workflowengine`` and the
``notify_tests`` pack (``tests/fixtures/packs/notifications``), for the notify and policy tests.

The pack's rule on ``core.st2.generic.notifytrigger`` runs ``core.local`` with
``echo <route> <message> <execution id> <status>``: :func:`recorded` reads what it recorded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.integration.st2cli import SERVICES, RunningEngine, eventually, running_engine

REPOSITORY = Path(__file__).resolve().parents[2]
PACKS = REPOSITORY / "tests" / "fixtures" / "packs" / "notifications"
NOTIFY_SERVICES = (*SERVICES, "st2rulesengine", "st2notifier", "st2workflowengine")
RECORDING_RULE = "notify_tests.record_notifications"
CONF = (
    f"[content]\npacks_base_paths = {PACKS}\n\n"
    "[rulesengine]\npoll_interval = 0.3\n\n[workflow_engine]\nsweep_interval = 0.5\n\n"
)


@contextmanager
def notify_engine(directory: Path, extra_conf: str = "") -> Iterator[RunningEngine]:
    """The engine with the notifier, the rules and workflow engines and ``notify_tests``."""
    with running_engine(directory, services=NOTIFY_SERVICES, extra_conf=CONF + extra_conf) as run:
        yield run


def executions(api: httpx.Client, action: str, attributes: str = "") -> list[dict[str, Any]]:
    """Every execution of ``action``, oldest first."""
    params = {"action": action, "limit": "-1", "sort_asc": "true"}
    if attributes:
        params["include_attributes"] = attributes
    response = api.get("/executions", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def recorded(api: httpx.Client, execution_id: str) -> list[str]:
    """What the recording rule printed for each notification about ``execution_id``."""
    lines = []
    for execution in executions(api, "core.local", "id,status,result,rule,trigger_instance"):
        if (execution.get("rule") or {}).get("ref") != RECORDING_RULE:
            continue
        payload = (execution.get("trigger_instance") or {}).get("payload") or {}
        if payload.get("execution_id") != execution_id:
            continue
        if execution["status"] == "succeeded":
            lines.append(str(execution["result"]["stdout"]).strip())
    return sorted(lines)


def wait_recorded(
    api: httpx.Client, execution_id: str, count: int, timeout: float = 60
) -> list[str]:
    """Wait until the rule recorded ``count`` notifications about ``execution_id``."""
    return list(
        eventually(
            lambda: (lines := recorded(api, execution_id)) and len(lines) >= count and lines,
            f"{count} notifications recorded for {execution_id}",
            timeout=timeout,
        )
    )


def notify_payloads(api: httpx.Client, execution_id: str) -> list[dict[str, Any]]:
    """The payloads of the notify trigger instances about ``execution_id``."""
    response = api.get(
        "/triggerinstances",
        params={"trigger": "core.st2.generic.notifytrigger", "limit": "-1"},
    )
    assert response.status_code == 200, response.text
    return [
        instance["payload"]
        for instance in response.json()
        if instance["payload"].get("execution_id") == execution_id
    ]
