"""Logging setup: every record carries the current ``request_id`` and ``execution_id``.

The IDs live in context variables that the edges (HTTP middleware, Celery tasks, the action
runner) set; a filter copies them onto each record. A second filter masks anything that looks
like a credential so secrets never reach a log line.
"""

from __future__ import annotations

import logging
import re
import sys
from contextvars import ContextVar
from typing import IO

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
execution_id_var: ContextVar[str | None] = ContextVar("execution_id", default=None)

LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s "
    "execution_id=%(execution_id)s] %(message)s"
)

_SECRET_PATTERNS = (
    (re.compile(r"(?i)(authorization:\s*(?:bearer|basic)\s+)\S+"), r"\1********"),
    (
        re.compile(
            r"(?i)((?:st2-api-key|x-auth-token|api_key|password|token|secret)[\"']?\s*[=:]\s*[\"']?)"
            r"[^\s\"'&,}]+"
        ),
        r"\1********",
    ),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+@"), r"\1********@"),
)


def mask_secrets(text: str) -> str:
    """Replace credential values in ``text`` with ``********``."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class ContextFilter(logging.Filter):
    """Stamp the current request and execution IDs on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        record.execution_id = execution_id_var.get() or "-"
        return True


class SecretMaskingFilter(logging.Filter):
    """Render the message once and mask credentials in it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def configure_logging(level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Install the PoundCake handler on the root logger; safe to call more than once."""
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "poundcake":
            root.removeHandler(existing)
    handler: logging.StreamHandler[IO[str]] = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("poundcake")
    handler.addFilter(ContextFilter())
    handler.addFilter(SecretMaskingFilter())
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())
