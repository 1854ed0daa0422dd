"""Large results as they are recorded: text kept as UTF-8, encoded and sent in bounded pieces.

An action's output can be megabytes. As a Python ``str`` one emoji makes every character of it
take four bytes, and each step that encodes a result copies it whole again (the JSON text, the
driver's escaped statement, its bytes). So a runner keeps large output as :class:`EncodedText`,
its UTF-8 bytes; :func:`json_pieces` encodes a result holding such text in pieces, giving
exactly the text of ``json.dumps(result, default=str, ensure_ascii=False)``; and on MariaDB
:func:`stage_result` sends those pieces, at most :data:`PIECE_BYTES` at a time, into a session
variable that the statement recording the execution stores (:data:`STAGED_RESULT`). No copy of
the whole result is made after the runner's own.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

ENCODED_TEXT_BYTES = 64 * 1024
"""Output at least this long is kept as :class:`EncodedText` rather than ``str``."""

PIECE_BYTES = 256 * 1024
"""The most JSON text sent to the database in one statement while staging a result."""

_VARIABLE = "@poundcake_result"
_CONTROL = re.compile(rb"[\x00-\x1f]")
# What json.dumps writes for the characters it escapes; the backslash goes first, so the
# backslashes the other replacements add are not doubled.
_NAMED_ESCAPES = (
    (b"\\", b"\\\\"),
    (b'"', b'\\"'),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
    (b"\x08", b"\\b"),
    (b"\x0c", b"\\f"),
)
_SCAN_BYTES = 4096


class EncodedText:
    """Text held as its UTF-8 bytes (valid UTF-8); ``str()`` decodes it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.data = memoryview(data)

    def __str__(self) -> str:
        return str(self.data, "utf-8")

    def __repr__(self) -> str:
        return f"EncodedText({len(self.data)} bytes)"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EncodedText):
            return self.data == other.data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def removesuffix(self, suffix: str) -> EncodedText:
        """The text without ``suffix`` at its end (no copy is made)."""
        ending = suffix.encode()
        if ending and self.data[-len(ending) :] == ending:
            return EncodedText(self.data[: -len(ending)])
        return self

    def lstrip_startswith(self, prefixes: tuple[str, ...]) -> bool:
        """Whether the text, leading whitespace removed, starts with one of ``prefixes``."""
        decoder = codecs.getincrementaldecoder("utf-8")()
        for start in range(0, len(self.data), _SCAN_BYTES):
            text = decoder.decode(self.data[start : start + _SCAN_BYTES]).lstrip()
            if text:
                return text.startswith(prefixes)
        return False

    def json_pieces(self) -> Iterator[bytes]:
        """The text as a JSON string, in pieces of UTF-8."""
        yield b'"'
        for start in range(0, len(self.data), PIECE_BYTES):
            yield _escape(bytes(self.data[start : start + PIECE_BYTES]))
        yield b'"'


def _escape(chunk: bytes) -> bytes:
    """Escape UTF-8 as json.dumps does with ensure_ascii=False: only ASCII bytes change, so a
    chunk may end inside a character."""
    for raw, escaped in _NAMED_ESCAPES:
        if raw in chunk:
            chunk = chunk.replace(raw, escaped)
    if _CONTROL.search(chunk):
        chunk = _CONTROL.sub(lambda found: b"\\u%04x" % found.group()[0], chunk)
    return chunk


def holds_encoded_text(result: Any) -> bool:
    """Whether ``result`` is, or directly holds, :class:`EncodedText`."""
    if isinstance(result, EncodedText):
        return True
    return isinstance(result, dict) and any(isinstance(v, EncodedText) for v in result.values())


def plain(result: Any) -> Any:
    """``result`` with its :class:`EncodedText` decoded into ``str``."""
    if isinstance(result, EncodedText):
        return str(result)
    if isinstance(result, dict) and holds_encoded_text(result):
        return {key: plain(value) for key, value in result.items()}
    return result


def _json_default(value: Any) -> str:
    return str(value)


def _json_key(key: Any) -> bytes:
    """A dict key as json.dumps writes it (``'{"k": null}'`` without ``{`` and ``: null}``)."""
    return json.dumps({key: None}, ensure_ascii=False)[1:-7].encode()


def json_pieces(result: Any) -> Iterator[bytes]:
    """``result`` as the UTF-8 of ``json.dumps(result, default=str, ensure_ascii=False)``, in
    pieces; :class:`EncodedText` (alone or as a value of a dict) is escaped piece by piece."""
    if isinstance(result, EncodedText):
        yield from result.json_pieces()
    elif isinstance(result, dict) and holds_encoded_text(result):
        yield b"{"
        for index, (key, value) in enumerate(result.items()):
            yield (b", " if index else b"") + _json_key(key) + b": "
            yield from json_pieces(value)
        yield b"}"
    else:
        yield json.dumps(result, default=_json_default, ensure_ascii=False).encode()


def bounded_pieces(pieces: Iterator[bytes], size: int = PIECE_BYTES) -> Iterator[bytes]:
    """The bytes of ``pieces``, regrouped in pieces of ``size`` (the last one shorter)."""
    pending = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        start = 0
        if pending:
            start = min(len(view), size - len(pending))
            pending += view[:start]
            if len(pending) < size:
                continue
            yield bytes(pending)
            pending.clear()
        while len(view) - start >= size:
            yield bytes(view[start : start + size])
            start += size
        pending += view[start:]
    if pending:
        yield bytes(pending)


def can_stage(session: Session) -> bool:
    """Whether results can be staged on this session's database (MariaDB, not SQLite)."""
    return session.get_bind().dialect.name in ("mysql", "mariadb")


def stage_result(session: Session, result: Any, max_bytes: int) -> int | None:
    """Send ``result``'s JSON text into a session variable, a bounded piece per statement, for
    the next write of :data:`STAGED_RESULT`; return its size in bytes, or ``None`` (nothing
    staged) when it is larger than ``max_bytes``.

    The pieces are sent as binary strings and joined on the server, so a piece may end inside
    a character; the whole is read as UTF-8 once it is stored.
    """
    size = 0
    for index, piece in enumerate(bounded_pieces(json_pieces(result))):
        size += len(piece)
        if size > max_bytes:
            clear_staged(session)
            return None
        statement = f"SET {_VARIABLE} = :piece" if index == 0 else _APPEND
        session.execute(sa.text(statement), {"piece": piece})
    return size


_APPEND = f"SET {_VARIABLE} = CONCAT({_VARIABLE}, :piece)"

STAGED_RESULT: ColumnElement[Any] = sa.literal_column(f"CONVERT({_VARIABLE} USING utf8mb4)")
"""The staged result, as the value of a result column in an UPDATE."""


def clear_staged(session: Session) -> None:
    """Free the server's copy of the staged result."""
    session.execute(sa.text(f"SET {_VARIABLE} = NULL"))
