"""``jenkins.build_status``: where a build is - queued, building or finished with its result."""

from __future__ import annotations

from typing import Any

from lib.client import JenkinsClient
from st2common.runners.base_action import Action


def build_status(
    jenkins: JenkinsClient, job: str, *, queue_id: int | None = None, number: int | None = None
) -> dict[str, Any]:
    """Follow a queue item to its build number and read the build."""
    status: dict[str, Any] = {"job": job, "queue_id": queue_id, "build_number": number}
    if number is None:
        if queue_id is None:
            raise ValueError("Give a queue_id or a build_number.")
        item = jenkins.queue_item(queue_id)
        if item.get("cancelled"):
            return {**status, "state": "cancelled", "result": "CANCELLED", "building": False}
        executable = item.get("executable") or {}
        if not executable.get("number"):
            return {**status, "state": "queued", "result": None, "why": item.get("why")}
        number = int(executable["number"])
    build = jenkins.build(job, number)
    building = bool(build.get("building"))
    return {
        **status,
        "build_number": number,
        "state": "building" if building else "finished",
        "building": building,
        "result": build.get("result"),
        "duration_ms": build.get("duration"),
        "url": build.get("url"),
    }


class BuildStatus(Action):
    """Report the status of a build given its queue item or number."""

    def run(
        self, job: str, queue_id: int | None = None, build_number: int | None = None
    ) -> dict[str, Any]:
        if queue_id is None and build_number is None:
            raise ValueError("Give a queue_id or a build_number.")
        with JenkinsClient(self.config) as jenkins:
            return build_status(jenkins, job, queue_id=queue_id, number=build_number)
