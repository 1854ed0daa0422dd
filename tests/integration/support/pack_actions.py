"""Running a bundled pack's actions through the real ``st2`` CLI, for the pack tests."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.integration.support.st2cli import CliResult, RunningEngine, St2


def output(result: CliResult) -> str:
    return result.stdout + result.stderr


def write_pack(pack: Path, files: dict[str, Any], version: str = "0.1.0", **fields: Any) -> Path:
    """Write a pack into the directory ``pack`` (its name is the ref): ``pack.yaml`` with
    ``fields`` plus ``files`` (YAML documents or text)."""
    manifest = {
        "ref": pack.name,
        "name": pack.name,
        "description": f"The {pack.name} test pack.",
        "keywords": ["tests"],
        "version": version,
        "author": "Tests",
        **fields,
    }
    for relative, content in {"pack.yaml": manifest, **files}.items():
        path = pack / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        path.write_text(text)
    return pack


def shell_action(name: str, command: str) -> dict[str, Any]:
    """An action that runs ``command`` with ``local-shell-cmd``."""
    return {
        "name": name,
        "runner_type": "local-shell-cmd",
        "description": f"Run {command!r}.",
        "enabled": True,
        "parameters": {"cmd": {"type": "string", "default": command, "immutable": True}},
    }


@contextmanager
def engine_api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    """An HTTP client for the engine API with the CLI's login token."""
    headers = {"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]}
    with httpx.Client(base_url=engine.api_url, headers=headers, timeout=30) as client:
        yield client


def run(st2: St2, ref: str, *parameters: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """Run an action with ``st2 run`` and return the finished execution; none of ``secrets``
    may show in what the CLI printed or in the execution the API returns."""
    result = st2("run", ref, *parameters, "-j", timeout=120)
    execution: dict[str, Any] = result.json()
    assert execution["status"] in ("succeeded", "failed"), execution
    assert result.returncode == (0 if execution["status"] == "succeeded" else 1), output(result)
    secrets = list(secrets)
    if secrets:
        shown = httpx.get(
            f"{st2.engine.api_url}/executions/{execution['id']}",
            headers={"X-Auth-Token": st2.env["ST2_AUTH_TOKEN"]},
            timeout=30,
        )
        assert shown.status_code == 200, shown.text
        for secret in secrets:
            assert secret not in output(result) + shown.text, f"{secret} leaked"
    return execution


def succeeded(st2: St2, ref: str, *parameters: str, secrets: Iterable[str] = ()) -> Any:
    """The result of an execution that must succeed."""
    execution = run(st2, ref, *parameters, secrets=secrets)
    assert execution["status"] == "succeeded", execution["result"]
    return execution["result"]


def failed(st2: St2, ref: str, *parameters: str, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The result of an execution that must fail."""
    execution = run(st2, ref, *parameters, secrets=secrets)
    assert execution["status"] == "failed", execution["result"]
    result: dict[str, Any] = execution["result"]
    return result


def run_async(st2: St2, *args: str) -> str:
    """Start an action with ``st2 run ... -a`` and return the execution's id."""
    result = st2("run", *args, "-a")
    assert result.returncode == 0, output(result)
    found = re.search(r"st2 execution get ([0-9a-f]{24})", result.stdout)
    assert found, result.stdout
    return found.group(1)


def wait_for(
    api: httpx.Client, execution_id: str, statuses: set[str], timeout: float = 60
) -> dict[str, Any]:
    """Poll the API until the execution is in one of ``statuses``; return it."""
    deadline = time.monotonic() + timeout
    while True:
        document: dict[str, Any] = api.get(f"/executions/{execution_id}").json()
        if document["status"] in statuses:
            return document
        assert time.monotonic() < deadline, f"{execution_id} still {document['status']}"
        time.sleep(0.2)
