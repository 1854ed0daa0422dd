"""The files of a registered pack, as StackStorm's ``/packs/views/...`` show them.

Only files listed in the pack's ``files`` (what registration found) are read, and only inside the
pack's directory: a path that leaves it (``..``, a symbolic link out) is not found. Files larger
than StackStorm's limit of 500,000 bytes are left out of the listing and refused one by one;
binary files (a NUL byte or a UTF-8 byte order mark in the first KiB) are left out of the listing.
"""

from __future__ import annotations

import codecs
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poundcake.engine.packs.models import PackDB
from poundcake.exceptions import NotFoundError, ValidationError

MAX_FILE_SIZE = 500 * 1000
_SNIFFED_BYTES = 1024


@dataclass(frozen=True)
class PackFile:
    """One file of a pack: its bytes, type and modification time (for ETag and Last-Modified)."""

    content: bytes
    content_type: str
    modified: float


def _inside(pack: PackDB, file_path: str) -> Path | None:
    if not pack.path or file_path not in (pack.files or []):
        return None
    root = Path(pack.path).resolve()
    candidate = (root / file_path).resolve()
    if root not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def _is_text(content: bytes) -> bool:
    head = content[:_SNIFFED_BYTES]
    return codecs.BOM_UTF8 not in head and b"\0" not in head


def pack_files(pack: PackDB) -> list[dict[str, Any]]:
    """Return ``{"file_path", "content"}`` for every text file of the pack within the limit."""
    found = []
    for file_path in pack.files or []:
        path = _inside(pack, file_path)
        if path is None or path.stat().st_size > MAX_FILE_SIZE:
            continue
        content = path.read_bytes()
        if _is_text(content):
            found.append({"file_path": file_path, "content": content.decode("utf-8", "replace")})
    return found


def pack_file(pack: PackDB, file_path: str) -> PackFile:
    """Return one file of the pack; NotFoundError if it is not one, refused if too large."""
    path = _inside(pack, file_path)
    if path is None:
        raise NotFoundError(f'File "{file_path}" not found')
    stat = path.stat()
    if stat.st_size > MAX_FILE_SIZE:
        raise ValidationError(
            f"File {file_path} exceeds maximum allowed file size ({MAX_FILE_SIZE} bytes)"
        )
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return PackFile(path.read_bytes(), content_type, stat.st_mtime)
