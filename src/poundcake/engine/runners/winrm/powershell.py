"""The PowerShell text the WinRM runners send, built by StackStorm's rules.

Action parameters become PowerShell literals (:func:`literal`): ``$null``, ``$true``/``$false``,
numbers as written, strings in double quotes with PowerShell's backtick escapes, lists as
``@(a, b)`` and objects as ``@{"k" = v; ...}``, nested as deep as they go. A script's arguments
(:func:`script_arguments`) are the named ones first, ``{kwarg_op}{name} {literal}`` each, then
the positional ones, which StackStorm first turns into strings as it does for shell scripts
(so ``5`` at a position arrives as ``"5"``). A script with arguments runs as the script block
``& {<script>} <arguments>``.

PowerShell goes to the host as ``powershell -encodedcommand <base64 of the UTF-16LE text>``.
Windows refuses command lines longer than 8191 characters; a longer script is uploaded into a
fresh directory under the remote user's temporary directory in chunks that each fit, run from
there with the same arguments, and the directory removed (:class:`ScriptUpload`). The file is
UTF-8 with a byte order mark, so Windows PowerShell 5 reads non-ASCII text right.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

MAX_COMMAND_LENGTH = 8191
"""The longest command line ``cmd.exe`` accepts (Windows XP and later)."""

UPLOAD_CHUNK_BYTES = 1536
"""Script bytes per upload command: its encoded command line stays well within the limit."""

_UTF8_BOM = b"\xef\xbb\xbf"

_ESCAPES = str.maketrans(
    {
        "`": "``",
        '"': '`"',
        "'": "`'",
        "$": "`$",
        "\0": "`0",
        "\a": "`a",
        "\b": "`b",
        "\t": "`t",
        "\n": "`n",
        "\v": "`v",
        "\f": "`f",
        "\r": "`r",
    }
)


def quoted(text: str) -> str:
    """Return ``text`` as a double-quoted PowerShell string that expands nothing."""
    return f'"{text.translate(_ESCAPES)}"'


def literal(value: Any) -> str:
    """Return ``value`` written as a PowerShell literal."""
    if value is None:
        return "$null"
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, list | tuple):
        return "@(" + ", ".join(literal(item) for item in value) + ")"
    if isinstance(value, Mapping):
        pairs = (f"{literal(key)} = {literal(item)}" for key, item in value.items())
        return "@{" + "; ".join(pairs) + "}"
    return str(value)


def script_arguments(positional: Sequence[str], named: Mapping[str, Any], *, kwarg_op: str) -> str:
    """Return the argument text for a script: named arguments, then positional ones."""
    text = ""
    if named:
        text += " ".join(f"{kwarg_op}{name} {literal(value)}" for name, value in named.items())
        text += " "
    if positional:
        text += " ".join(literal(value) for value in positional)
    return text


def script_block(script: str, arguments: str) -> str:
    """Return the PowerShell that runs ``script`` with ``arguments`` (none: the script itself)."""
    return f"& {{{script}}} {arguments}" if arguments else script


def encoded_command(script: str) -> str:
    """Return the command line that has ``powershell`` run ``script``."""
    encoded = base64.b64encode(script.encode("utf-16-le")).decode("ascii")
    return f"powershell -encodedcommand {encoded}"


def decoded_script(command: str) -> str:
    """Return the PowerShell text of a command line made by :func:`encoded_command`."""
    program, _, encoded = command.partition(" -encodedcommand ")
    if program != "powershell" or not encoded:
        raise ValueError("not an encoded PowerShell command")
    return base64.b64decode(encoded).decode("utf-16-le")


def fits_on_command_line(command: str) -> bool:
    """Tell whether Windows accepts ``command`` as one command line."""
    return len(command) <= MAX_COMMAND_LENGTH


MAKE_DIRECTORY = (
    "$directory = Join-Path ([System.IO.Path]::GetTempPath()) "
    "([System.IO.Path]::GetRandomFileName())\n"
    "New-Item -ItemType Directory -Path $directory | Out-Null\n"
    "Write-Output $directory"
)
"""PowerShell that makes a fresh directory under the temporary directory and prints its path."""


class ScriptUpload:
    """The PowerShell that uploads a script into a directory on the host, runs it, removes it."""

    def __init__(self, script: str, directory: str) -> None:
        self.directory = directory
        self.path = directory.rstrip("\\") + "\\script.ps1"
        # Windows PowerShell reads a script without a byte order mark in the ANSI code page.
        self._data = _UTF8_BOM + script.encode("utf-8")

    def chunks(self) -> Iterator[str]:
        """Yield the commands that append the script to its file, one chunk each."""
        for start in range(0, len(self._data), UPLOAD_CHUNK_BYTES):
            chunk = base64.b64encode(self._data[start : start + UPLOAD_CHUNK_BYTES]).decode()
            yield (
                f"$bytes = [System.Convert]::FromBase64String({quoted(chunk)})\n"
                f"$file = [System.IO.File]::Open({quoted(self.path)}, "
                "[System.IO.FileMode]::Append)\n"
                "try { $file.Write($bytes, 0, $bytes.Length) } finally { $file.Dispose() }"
            )

    def invocation(self, arguments: str) -> str:
        """Return the PowerShell that runs the uploaded script with ``arguments``."""
        return f"& {quoted(self.path)} {arguments}".rstrip()

    def removal(self) -> str:
        """Return the PowerShell that removes the directory and the script in it."""
        return f"Remove-Item -Force -Recurse -LiteralPath {quoted(self.directory)}"
