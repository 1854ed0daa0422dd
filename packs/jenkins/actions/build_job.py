"""``jenkins.build_job``: queue a build of a job, with parameters, and optionally wait for it."""

from __future__ import annotations

import time
from typing import Any

from lib.client import JenkinsClient, queue_id_of
from st2common.runners.base_action import Action
from status import build_status

FINISHED_OK = "SUCCESS"


class BuildJob(Action):
    """Trigger ``job``; with ``wait``, fail unless the build ends in SUCCESS."""

    def run(
        self,
        job: str,
        parameters: dict[str, Any] | None = None,
        wait: bool = False,
        poll_interval: float = 5.0,
    ) -> tuple[bool, dict[str, Any]]:
        with JenkinsClient(self.config) as jenkins:
            location = jenkins.trigger(job, parameters or {})
            queue_id = queue_id_of(location)
            result: dict[str, Any] = {"job": job, "queue_url": location, "queue_id": queue_id}
            self.logger.info("Queued %s as queue item %s", job, queue_id)
            if not wait:
                return True, result
            while True:
                status = build_status(jenkins, job, queue_id=queue_id)
                if status["state"] in ("finished", "cancelled"):
                    break
                time.sleep(poll_interval)
        result.update(status)
        if status["result"] != FINISHED_OK:
            result["error"] = f"Build of {job} ended {status['result'] or status['state']}."
            return False, result
        return True, result
