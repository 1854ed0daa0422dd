"""A small client of Jenkins's REST API: crumbs, job triggers, queue items and builds."""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import httpx

QUEUE_ID = re.compile(r"/queue/item/(\d+)/?$")


class JenkinsError(RuntimeError):
    """Jenkins refused a request or answered something unexpected."""


def job_path(job: str) -> str:
    """Return the URL path of a job; ``folder/name`` is ``/job/folder/job/name``."""
    parts = [part for part in job.strip("/").split("/") if part]
    if not parts:
        raise ValueError("Name a Jenkins job.")
    return "".join(f"/job/{urllib.parse.quote(part, safe='')}" for part in parts)


class JenkinsClient:
    """Talk to one Jenkins with the pack config's credentials; one session keeps the crumb's
    cookie."""

    def __init__(self, config: dict[str, Any]) -> None:
        url = str(config.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise ValueError("Set url in the jenkins pack config to Jenkins's http(s) URL.")
        self.base = url.rstrip("/")
        username, token = config.get("username"), config.get("api_token")
        self.client = httpx.Client(
            auth=httpx.BasicAuth(str(username), str(token or "")) if username else None,
            timeout=float(config.get("timeout") or 30),
            verify=bool(config.get("verify_ssl", True)),
        )

    def __enter__(self) -> JenkinsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def _request(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            response = self.client.request(method, url, **options)
        except httpx.HTTPError as error:
            raise JenkinsError(f"Cannot reach Jenkins at {self.base}: {error}") from None
        if response.status_code in (401, 403):
            raise JenkinsError(
                f"Jenkins refused {method} {url}: HTTP {response.status_code} "
                "(check username and api_token in the jenkins pack config)."
            )
        if response.status_code == 404:
            raise JenkinsError(f"Jenkins has nothing at {url} (HTTP 404).")
        if response.status_code >= 400:
            raise JenkinsError(
                f"Jenkins answered {method} {url} with HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    def _json(self, url: str) -> dict[str, Any]:
        response = self._request("GET", url)
        try:
            document = response.json()
        except ValueError:
            raise JenkinsError(f"Jenkins answered {url} without JSON.") from None
        if not isinstance(document, dict):
            raise JenkinsError(f"Jenkins answered {url} with {type(document).__name__}.")
        return document

    def crumb_headers(self) -> dict[str, str]:
        """Return the CSRF crumb header, or nothing when Jenkins does not issue crumbs."""
        url = f"{self.base}/crumbIssuer/api/json"
        try:
            response = self.client.get(url)
        except httpx.HTTPError as error:
            raise JenkinsError(f"Cannot reach Jenkins at {self.base}: {error}") from None
        if response.status_code == 404:
            return {}
        if response.status_code != 200:
            raise JenkinsError(f"Jenkins refused a CSRF crumb: HTTP {response.status_code}.")
        crumb = response.json()
        return {str(crumb["crumbRequestField"]): str(crumb["crumb"])}

    def trigger(self, job: str, parameters: dict[str, Any]) -> str:
        """Queue a build of ``job``; return the queue item's URL (the Location header)."""
        endpoint = "buildWithParameters" if parameters else "build"
        response = self._request(
            "POST",
            f"{self.base}{job_path(job)}/{endpoint}",
            data={name: str(value) for name, value in parameters.items()} or None,
            headers=self.crumb_headers(),
        )
        location = response.headers.get("Location")
        if not location or not QUEUE_ID.search(location.rstrip("/") + "/"):
            raise JenkinsError(
                f"Jenkins queued no build of {job}: HTTP {response.status_code} without a "
                "queue item Location."
            )
        return location

    def queue_item(self, queue_id: int) -> dict[str, Any]:
        """Return a queue item: ``executable.number`` once its build started."""
        return self._json(f"{self.base}/queue/item/{queue_id}/api/json")

    def build(self, job: str, number: int) -> dict[str, Any]:
        """Return a build: ``building``, ``result`` (None while running), ``duration``, ``url``."""
        return self._json(f"{self.base}{job_path(job)}/{number}/api/json")


def queue_id_of(location: str) -> int:
    """Return the id in a queue item URL."""
    found = QUEUE_ID.search(location.rstrip("/") + "/")
    if found is None:
        raise JenkinsError(f"{location} is not a Jenkins queue item URL.")
    return int(found.group(1))
