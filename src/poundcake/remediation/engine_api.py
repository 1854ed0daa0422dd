"""The engine's StackStorm API as PoundCake uses it: the one client of the engine's HTTP API.

The workers dispatch alerts and follow their work; applying CABs reads actions, runner types and
rules, registers the CAB pack and deletes what it no longer holds; the web UI re-runs, cancels,
pauses and resumes executions and changes rules.

Every call carries the ``St2-Api-Key`` header (``ST2_API_KEY``, else the file ``ST2_API_KEY_FILE``,
else ``<data_dir>/secrets/st2-api-key`` when it exists); the key is never logged. A key file is
read again when it was replaced (its inode, size or modification time changed), after
:func:`request_key_reload` (what SIGHUP does) and when the engine answers 401: that is what lets
the key be rotated without a restart. Connection
failures are retried by the transport; anything else is raised at once as one of::

    EngineError                     the engine answered with a refusal (HTTP 4xx)
    ├── EngineNotFoundError             the object does not exist (HTTP 404)
    └── EngineUnavailableError          the engine cannot be used now: unreachable, too slow,
                                        HTTP 5xx, or it refused our credentials (401/403/429)

so that callers retry :class:`EngineUnavailableError` later and treat the others as final.
Tests swap the transport (``httpx.MockTransport`` or a real local server) instead of patching.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from poundcake.config import Settings
from poundcake.engine.public import RESUME_FROM, isoformat
from poundcake.exceptions import PoundCakeError
from poundcake.remediation.alerts.trigger import ALERT_TRIGGER

logger = logging.getLogger(__name__)

API_KEY_HEADER = "St2-Api-Key"
TRIGGER_INSTANCE_HEADER = "X-Trigger-Instance-Id"
DEFAULT_KEY_FILE = Path("secrets") / "st2-api-key"
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
CONNECT_RETRIES = 2
PAGE_SIZE = 100
# How far before a dispatch find_dispatched looks (clock skew between PoundCake and the engine).
LOOKUP_SLACK = timedelta(minutes=5)
# How many pages find_dispatched reads at most (newest first) before giving up.
MAX_LOOKUP_PAGES = 50

# Trigger instance statuses after which the rules engine has nothing more to add.
EVALUATED_INSTANCE_STATUSES = frozenset({"processed", "processing_failed"})
_UNAVAILABLE_STATUSES = frozenset({401, 403, 408, 429})
RESUMED_CONTEXT_KEYS = ("request_id", "alert_id")
ON_UNVERIFIED_FOR = "on_unverified_for"
CAB_PACK = "poundcake_cabs"


def path_segment(value: str) -> str:
    """``value`` as one path segment of an engine URL: percent-encoded, never a dot segment, so
    an identifier from a request cannot reach another engine endpoint."""
    if value in {".", ".."}:
        return value.replace(".", "%2E")
    return quote(value, safe="")


class EngineError(PoundCakeError):
    """The engine refused a request; ``status_code`` and ``faultstring`` say why."""

    def __init__(self, message: str, status_code: int | None = None, faultstring: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.faultstring = faultstring


class EngineNotFoundError(EngineError):
    """The trigger instance or execution asked for does not exist (any more)."""


class EngineUnavailableError(EngineError):
    """The engine cannot be used right now; the same request may succeed later."""


class EngineApi(Protocol):
    """What the workers need from the engine."""

    def dispatch_alert(self, payload: Mapping[str, Any]) -> list[str]: ...

    def find_dispatched(self, dispatch_key: str, since: datetime) -> list[str]: ...

    def get_trigger_instance(self, instance_id: str) -> dict[str, Any]: ...

    def rule_enforcements(self, trigger_instance_id: str) -> list[dict[str, Any]]: ...

    def get_execution(self, execution_id: str) -> dict[str, Any]: ...

    def children(self, execution_id: str) -> list[dict[str, Any]]: ...

    def cancel_execution(self, execution_id: str) -> dict[str, Any]: ...

    def resume_run(self, execution_id: str) -> str: ...

    def find_execution(self, action_ref: str, context_key: str, value: str) -> str | None: ...

    def run_cab(
        self, cab_name: str, alert: dict[str, object], request_id: str, alert_id: str
    ) -> str: ...

    def ask(self, parameters: Mapping[str, Any], context: Mapping[str, Any]) -> str: ...

    def pending_inquiries(self) -> set[str]: ...

    def respond_inquiry(self, inquiry_id: str, response: Mapping[str, Any]) -> None: ...

    def close(self) -> None: ...


def dispatch_key_of(instance: Mapping[str, Any]) -> str | None:
    """The dispatch key PoundCake put into a trigger instance's ``payload.__context``."""
    payload = instance.get("payload")
    context = payload.get("__context") if isinstance(payload, Mapping) else None
    key = context.get("dispatch_key") if isinstance(context, Mapping) else None
    return key if isinstance(key, str) else None


def cancel_workflow(engine_api: EngineApi, execution_id: str) -> None:
    """Ask the engine to cancel a workflow; a failure is left to the next pass."""
    try:
        answer = engine_api.cancel_execution(execution_id)
    except EngineError as error:
        logger.warning("Could not cancel workflow execution %s: %s", execution_id, error)
        return
    if answer.get("faultstring"):
        logger.info("Workflow execution %s: %s", execution_id, answer["faultstring"])
    else:
        logger.info("Canceled workflow execution %s: its alert resolved", execution_id)


def _faultstring(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, Mapping) and isinstance(body.get("faultstring"), str):
        return str(body["faultstring"])
    return ""


class _KeyReloads:
    """How many reloads this process was asked for; clients compare it with what they read."""

    def __init__(self) -> None:
        self.generation = 0
        self.lock = threading.Lock()


_reloads = _KeyReloads()


def request_key_reload() -> int:
    """Make every client of this process read its key file again before its next request."""
    with _reloads.lock:
        _reloads.generation += 1
        return _reloads.generation


def _file_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_mtime_ns, found.st_size


def api_key_file(settings: Settings) -> Path:
    """Where PoundCake's engine API key is kept when ``ST2_API_KEY`` is not set."""
    return settings.st2_api_key_file or settings.data_dir / DEFAULT_KEY_FILE


def api_key(settings: Settings) -> str | None:
    """PoundCake's engine API key: ``ST2_API_KEY``, else the key file's content."""
    if settings.st2_api_key is not None:
        return settings.st2_api_key.get_secret_value()
    try:
        return api_key_file(settings).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class EngineClient:
    """A small synchronous client of the engine's API (``ST2_API_URL``)."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: SecretStr | None = None,
        api_key_file: Path | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._api_key_file = api_key_file
        self._file_key: str | None = None
        self._key_generation = _reloads.generation
        self._key_signature: tuple[int, int, int] | None = None
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport or httpx.HTTPTransport(retries=CONNECT_RETRIES),
            headers={"Accept": "application/json"},
        )

    @classmethod
    def from_settings(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> EngineClient:
        """A client for ``ST2_API_URL`` with the key the settings name."""
        key_file = api_key_file(settings) if settings.st2_api_key is None else None
        return cls(
            settings.st2_api_url,
            api_key=settings.st2_api_key,
            api_key_file=key_file,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # --- transport --------------------------------------------------------------------------

    def _key(self, *, reload: bool = False) -> str | None:
        if self._api_key is not None:
            return self._api_key.get_secret_value()
        if self._api_key_file is None:
            return None
        generation = _reloads.generation
        signature = _file_signature(self._api_key_file)
        if (
            self._file_key is None
            or reload
            or generation != self._key_generation
            or signature != self._key_signature
        ):
            self._key_generation = generation
            self._key_signature = signature
            try:
                self._file_key = self._api_key_file.read_text(encoding="utf-8").strip() or None
            except OSError:
                self._file_key = None
        return self._file_key

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        reload_key: bool = False,
    ) -> httpx.Response:
        key = self._key(reload=reload_key)
        headers = {API_KEY_HEADER: key} if key else {}
        try:
            return self._client.request(method, path, params=params, json=body, headers=headers)
        except httpx.TimeoutException:
            raise EngineUnavailableError(
                f"{method} {path}: the engine at {self.base_url} did not answer in time"
            ) from None
        except httpx.TransportError as error:
            raise EngineUnavailableError(
                f"{method} {path}: cannot reach the engine at {self.base_url} "
                f"({type(error).__name__})"
            ) from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
    ) -> httpx.Response:
        response = self._send(method, path, params=params, body=body)
        if response.status_code == 401 and self._api_key is None:
            # The key file may have been written or rotated since it was read.
            response = self._send(method, path, params=params, body=body, reload_key=True)
        status = response.status_code
        if status < 400:
            return response
        fault = _faultstring(response)
        message = f"{method} {path}: the engine answered {status}" + (
            f" ({fault})" if fault else ""
        )
        if status == 401 and self._key() is None:
            message += "; set ST2_API_KEY or ST2_API_KEY_FILE"
        if status >= 500 or status in _UNAVAILABLE_STATUSES:
            raise EngineUnavailableError(message, status, fault)
        if status == 404:
            raise EngineNotFoundError(message, status, fault)
        raise EngineError(message, status, fault)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise EngineUnavailableError(
                f"{response.request.method} {response.request.url.path}: "
                "the engine's answer is not JSON"
            ) from None

    def _pages(self, path: str, params: Mapping[str, str | int]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(MAX_LOOKUP_PAGES):
            query = {**params, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE}
            batch = self._json(self._request("GET", path, params=query))
            if not isinstance(batch, list):
                raise EngineUnavailableError(f"GET {path}: expected a list from the engine")
            found.extend(item for item in batch if isinstance(item, dict))
            if len(batch) < PAGE_SIZE:
                break
        return found

    # --- alerts -----------------------------------------------------------------------------

    def dispatch_alert(self, payload: Mapping[str, Any]) -> list[str]:
        """Store ``payload`` as a ``poundcake.alert`` trigger instance; return the instance ids.

        An engine that does not name the new instances (StackStorm itself) is asked for them by
        the payload's dispatch key.
        """
        response = self._request(
            "POST", "/webhooks/st2", body={"trigger": ALERT_TRIGGER, "payload": dict(payload)}
        )
        header = response.headers.get(TRIGGER_INSTANCE_HEADER, "")
        ids = [part.strip() for part in header.split(",") if part.strip()]
        if ids:
            return ids
        key = dispatch_key_of({"payload": payload})
        if key is None:
            return []
        return self.find_dispatched(key, datetime.now(UTC) - LOOKUP_SLACK)

    def find_dispatched(self, dispatch_key: str, since: datetime) -> list[str]:
        """The ``poundcake.alert`` instances stored after ``since`` that carry ``dispatch_key``."""
        instances = self._pages(
            "/triggerinstances",
            {
                "trigger": ALERT_TRIGGER,
                "timestamp_gt": isoformat(since) or "",
                "include_attributes": "id,payload",
            },
        )
        matches = [str(item["id"]) for item in instances if dispatch_key_of(item) == dispatch_key]
        return list(reversed(matches))

    def get_trigger_instance(self, instance_id: str) -> dict[str, Any]:
        """One trigger instance (``status``: pending, processing, processed...)."""
        document: dict[str, Any] = self._json(
            self._request("GET", f"/triggerinstances/{path_segment(instance_id)}")
        )
        return document

    def rule_enforcements(self, trigger_instance_id: str) -> list[dict[str, Any]]:
        """The rule enforcements of a trigger instance, oldest first."""
        found = self._pages("/ruleenforcements", {"trigger_instance": trigger_instance_id})
        return sorted(found, key=lambda item: str(item.get("enforced_at") or ""))

    # --- executions -------------------------------------------------------------------------

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        """One execution with its result."""
        document: dict[str, Any] = self._json(
            self._request("GET", f"/executions/{path_segment(execution_id)}")
        )
        return document

    def children(self, execution_id: str) -> list[dict[str, Any]]:
        """The direct children of an execution (without their results), oldest first."""
        found = self._pages(
            "/executions",
            {
                "parent": execution_id,
                "include_attributes": "id,status,action,context,parent,start_timestamp,"
                "end_timestamp",
            },
        )
        return sorted(found, key=lambda item: str(item.get("start_timestamp") or item["id"]))

    def cancel_execution(self, execution_id: str) -> dict[str, Any]:
        """Ask the engine to cancel an execution; a finished one answers with a faultstring."""
        document: dict[str, Any] = self._json(
            self._request("DELETE", f"/executions/{path_segment(execution_id)}")
        )
        return document

    # --- run safety (issue 21) --------------------------------------------------------------

    def _create_execution(
        self, action_ref: str, parameters: Mapping[str, Any], context: Mapping[str, Any]
    ) -> str:
        # The parameters carry an alert's text: final values, never rendered as templates.
        body = {
            "action": action_ref,
            "parameters": dict(parameters),
            "context": dict(context),
            "render_parameters": False,
        }
        document = self._json(self._request("POST", "/executions", body=body))
        if not isinstance(document, dict) or not isinstance(document.get("id"), str):
            raise EngineUnavailableError("POST /executions: the engine did not name the execution")
        return str(document["id"])

    def resume_run(self, execution_id: str) -> str:
        """Run an abandoned steps workflow again as a new execution that resumes it: its
        context's ``resume_from`` tells the steps runner to take over every step the old run
        did not lose (see the steps runner). The new execution's id."""
        old = self.get_execution(execution_id)
        action = old.get("action")
        action_ref = action.get("ref") if isinstance(action, Mapping) else None
        if not isinstance(action_ref, str):
            raise EngineNotFoundError(f"execution {execution_id} names no action")
        context = old.get("context")
        context = context if isinstance(context, Mapping) else {}
        kept = {key: context[key] for key in RESUMED_CONTEXT_KEYS if key in context}
        parameters = old.get("parameters")
        parameters = parameters if isinstance(parameters, Mapping) else {}
        return self._create_execution(action_ref, parameters, {**kept, RESUME_FROM: execution_id})

    def find_execution(self, action_ref: str, context_key: str, value: str) -> str | None:
        """The newest of the last executions of ``action_ref`` whose context has ``context_key``
        equal to ``value`` (a run PoundCake asked for, looked for after a crash)."""
        found = self._json(
            self._request(
                "GET",
                "/executions",
                params={
                    "action": action_ref,
                    "limit": PAGE_SIZE,
                    "include_attributes": "id,context",
                },
            )
        )
        for item in found if isinstance(found, list) else []:
            context = item.get("context") if isinstance(item, dict) else None
            if isinstance(context, dict) and context.get(context_key) == value:
                return str(item["id"])
        return None

    def run_cab(
        self, cab_name: str, alert: dict[str, object], request_id: str, alert_id: str
    ) -> str:
        """Run a CAB's workflow on an alert directly (an ``on_unverified`` CAB); its id. Its
        context's ``on_unverified_for`` names the alert (how it is found after a crash)."""
        return self._create_execution(
            f"{CAB_PACK}.{cab_name}",
            {"alert": alert, "request_id": request_id},
            {"request_id": request_id, "alert_id": alert_id, ON_UNVERIFIED_FOR: alert_id},
        )

    # --- approvals: the engine's inquiries -------------------------------------------------

    def ask(self, parameters: Mapping[str, Any], context: Mapping[str, Any]) -> str:
        """Ask a person through an inquiry (a ``core.ask`` execution); its id."""
        return self._create_execution("core.ask", parameters, context)

    def pending_inquiries(self) -> set[str]:
        """The ids of every inquiry waiting for a response."""
        # Paged: with RBAC on only administrators may list with limit=-1.
        items = self._pages("/inquiries", {})
        return {str(item["id"]) for item in items if "id" in item}

    def respond_inquiry(self, inquiry_id: str, response: Mapping[str, Any]) -> None:
        """Answer an inquiry; the engine refuses (400) one answered or timed out already."""
        path = f"/inquiries/{path_segment(inquiry_id)}"
        self._request("PUT", path, body={"id": inquiry_id, "response": dict(response)})

    # --- CABs -------------------------------------------------------------------------------

    def _get_or_none(self, path: str) -> dict[str, Any] | None:
        try:
            found = self._json(self._request("GET", path))
        except EngineNotFoundError:
            return None
        return found if isinstance(found, dict) else None

    def _first(self, path: str, params: Mapping[str, str | int]) -> dict[str, Any] | None:
        found = self._json(self._request("GET", path, params=params))
        first = found[0] if isinstance(found, list) and found else None
        return first if isinstance(first, dict) else None

    def get_action(self, ref: str) -> dict[str, Any] | None:
        """The action ``ref``, or None when the engine has none.

        Read from the list (``action_list``), not ``/actions/{ref}`` (``action_view`` on that
        action): validating a CAB reads actions of any pack, and PoundCake's engine role holds
        no view grant outside its own pack.
        """
        pack, dot, name = ref.partition(".")
        if not dot or not pack or not name:
            return None
        return self._first("/actions", {"pack": pack, "name": name, "limit": 1})

    def get_runner_type(self, name: str) -> dict[str, Any] | None:
        """The runner type ``name``, or None (from the list, ``runner_type_list``)."""
        return self._first("/runnertypes", {"name": name})

    def get_rule(self, ref: str) -> dict[str, Any] | None:
        """The rule ``ref``, or None."""
        return self._get_or_none(f"/rules/{path_segment(ref)}")

    def register_pack(self, pack: str) -> dict[str, Any]:
        """Register (or re-register) one pack from disk; the engine's counts per kind."""
        found = self._json(self._request("POST", "/packs/register", body={"packs": [pack]}))
        return found if isinstance(found, dict) else {}

    def _delete(self, path: str) -> None:
        try:
            self._request("DELETE", path)
        except EngineNotFoundError:
            return

    def delete_rule(self, ref: str) -> None:
        """Delete the rule ``ref`` (nothing when it is gone already)."""
        self._delete(f"/rules/{path_segment(ref)}")

    def delete_action(self, ref: str) -> None:
        """Delete the action ``ref`` (nothing when it is gone already)."""
        self._delete(f"/actions/{path_segment(ref)}")

    # --- the web UI's writes ----------------------------------------------------------------

    def rerun(self, execution_id: str) -> dict[str, Any]:
        """Run an execution's action again with the same parameters; the new execution."""
        path = f"/executions/{path_segment(execution_id)}/re_run"
        document: dict[str, Any] = self._json(self._request("POST", path, body={}))
        return document

    def change_status(self, execution_id: str, status: str) -> dict[str, Any]:
        """Ask for a new status (``pausing``, ``resuming``); the execution as it is now."""
        path = f"/executions/{path_segment(execution_id)}"
        document: dict[str, Any] = self._json(self._request("PUT", path, body={"status": status}))
        return document

    def put_rule(self, ref: str, document: dict[str, Any]) -> dict[str, Any]:
        """Replace the rule ``ref``; the engine's new document."""
        path = f"/rules/{path_segment(ref)}"
        found: dict[str, Any] = self._json(self._request("PUT", path, body=document))
        return found
