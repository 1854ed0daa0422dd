"""StackStorm's shell result document, shared by the local and remote shell runners.

``{"failed", "succeeded", "return_code", "stdout", "stderr"}``: one trailing newline (``\\n``,
then ``\\r``) is stripped from each stream, and a stream that holds a JSON object or array is
returned parsed (large output comes as :class:`EncodedText` and is kept so). Exit code 0 is
success. A run that ran out of time has ``return_code`` -9 and an
``error`` naming the timeout.
"""

from __future__ import annotations

import json
import re
from typing import Any

from poundcake.engine.executions.results import EncodedText

TIMEOUT_RETURN_CODE = -9
CANCELED_ERROR = "Action canceled."

_SUDO_PASSWORD_REJECTED = re.compile(r"sudo: \d+ incorrect password attempts?")
_SUDO_PASSWORD_PROMPT = re.compile(r"\[sudo\] password for (.+?):")


def strip_shell_chars(text: str | EncodedText) -> str | EncodedText:
    """Remove one trailing ``\\n`` and then one trailing ``\\r``, as StackStorm does."""
    text = text.removesuffix("\n")
    return text.removesuffix("\r")


def _json_start(text: str | EncodedText) -> bool:
    if isinstance(text, EncodedText):
        return text.lstrip_startswith(("{", "["))
    return text.lstrip().startswith(("{", "["))


def parse_output(text: str | EncodedText) -> Any:
    """Return ``text`` as parsed JSON when it holds an object or array, else unchanged."""
    if not _json_start(text):
        return text
    try:
        parsed = json.loads(str(text))
    except ValueError:
        return text
    return parsed if isinstance(parsed, (dict, list)) else text


def shell_result(
    return_code: int,
    stdout: str | EncodedText,
    stderr: str | EncodedText,
    *,
    error: str | None = None,
    strip: bool = True,
) -> dict[str, Any]:
    """Return the result document for one finished (or stopped) command.

    ``strip=False`` keeps the streams' trailing newlines, as StackStorm's WinRM runners do.
    """
    succeeded = return_code == 0 and error is None
    if strip:
        stdout, stderr = strip_shell_chars(stdout), strip_shell_chars(stderr)
    result: dict[str, Any] = {
        "failed": not succeeded,
        "succeeded": succeeded,
        "return_code": return_code,
        "stdout": parse_output(stdout),
        "stderr": parse_output(stderr),
    }
    if error is not None:
        result["error"] = error
    return result


def timeout_error(seconds: float) -> str:
    """Return StackStorm's message for a run that exceeded ``seconds``."""
    shown = int(seconds) if float(seconds).is_integer() else seconds
    return f"Action failed to complete in {shown} seconds"


def sudo_password_error(stderr: str) -> str | None:
    """Return StackStorm's message when sudo rejected the password, else ``None``."""
    if not _SUDO_PASSWORD_REJECTED.search(stderr):
        return None
    prompt = _SUDO_PASSWORD_PROMPT.search(stderr)
    username = prompt.group(1) if prompt else "unknown"
    return f"Invalid sudo password provided or sudo is not configured for this user ({username})"
