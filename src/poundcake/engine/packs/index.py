"""The pack index (``[content] index_url``): fetching it, finding a pack by name, searching it.

An index is StackStorm's ``index.json``: ``{"packs": {name: {name, version, repo_url, ...}}}``.
Several URLs may be configured (comma-separated); they are read in order and, as in StackStorm,
a pack named in more than one index is taken from the first. ``http://``, ``https://`` and
``file://`` URLs are read. An index that cannot be read is reported in the status, and only an
empty result from every index is an error.
"""

from __future__ import annotations

import itertools
import json
import logging
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

DEFAULT_INDEX_URL = "https://index.stackstorm.org/v1/index.json"
INDEX_SETTING = "[content] index_url"
# Fields a query never matches (StackStorm's EXCLUDE_FIELDS), and those whose matches come first.
EXCLUDED_FIELDS = ("repo_url", "email")
SEARCH_PRIORITY = ("name", "keywords")
TIMEOUT_SECONDS = 30.0


@dataclass
class PackIndex:
    """The packs of every readable index, and how each index fared."""

    packs: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: list[dict[str, Any]] = field(default_factory=list)


def index_urls(setting: str | None) -> list[str]:
    """Return the configured index URLs, in priority order."""
    text = DEFAULT_INDEX_URL if setting is None else setting
    return [url.strip() for url in text.split(",") if url.strip()]


def _read(url: str) -> Any:
    if url.startswith("file://"):
        path = Path(urllib.parse.unquote(urllib.parse.urlparse(url).path))
        return json.loads(path.read_text(encoding="utf-8"))
    response = httpx.get(url, timeout=TIMEOUT_SECONDS, follow_redirects=True)
    response.raise_for_status()
    return response.json()


def _index_status(url: str, document: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"url": url, "packs": 0, "message": None, "error": None}
    if document == {}:
        status.update(error="empty", message="The index URL returned an empty object.")
    elif not isinstance(document, dict):
        status.update(error="malformed", message="Expected an index object.")
    elif not isinstance(document.get("packs"), dict):
        status.update(error="malformed", message='Index object is missing "packs" attribute.')
    return status


def fetch_index(urls: Sequence[str]) -> PackIndex:
    """Read every index; the first index naming a pack wins."""
    index = PackIndex()
    for url in reversed(urls):
        try:
            document = _read(url)
        except (OSError, ValueError, httpx.HTTPError) as error:
            kind = "malformed" if isinstance(error, ValueError) else "unresponsive"
            status = {"url": url, "packs": 0, "message": repr(error), "error": kind}
        else:
            status = _index_status(url, document)
            if status["error"] is None:
                packs = document["packs"]
                status.update(packs=len(packs), message="Success.")
                index.packs.update(packs)
        if status["error"]:
            logger.error("Pack index %s cannot be used: %s", url, status["message"])
        index.status.insert(0, status)
    return index


def load_index(urls: Sequence[str]) -> PackIndex:
    """Read the indexes; refuse when none of them gave a pack."""
    index = fetch_index(urls)
    if not index.packs:
        problems = "; ".join(
            f"{status['url']}: {status['error']} ({status['message']})" for status in index.status
        )
        raise ValidationError(
            f"No results from the pack index ({INDEX_SETTING}): tried "
            f"{', '.join(urls) or 'nothing'}. {problems}".strip()
        )
    return index


def find_pack(urls: Sequence[str], name: str) -> dict[str, Any] | None:
    """Return the index entry of the pack ``name``, or None."""
    entry = load_index(urls).packs.get(name)
    return dict(entry) if isinstance(entry, Mapping) else None


def _contains(value: Any, query: str) -> bool:
    if isinstance(value, str):
        return query in value.lower()
    if isinstance(value, list):
        return any(isinstance(item, str) and item.lower() == query for item in value)
    if isinstance(value, Mapping):
        return query in (str(key).lower() for key in value)
    return query in str(value).lower()


def search_index(urls: Sequence[str], query: str) -> list[dict[str, Any]]:
    """Return the packs a query matches, case-insensitively: name matches, keyword matches,
    then matches in any other field, as StackStorm orders them."""
    if not query.strip():
        raise ValidationError("Query must be specified.")
    wanted = query.lower()
    ranked: list[list[dict[str, Any]]] = [[] for _ in range(len(SEARCH_PRIORITY) + 1)]
    for entry in load_index(urls).packs.values():
        if not isinstance(entry, Mapping):
            continue
        for key, value in entry.items():
            if key in EXCLUDED_FIELDS or not _contains(value, wanted):
                continue
            rank = SEARCH_PRIORITY.index(key) if key in SEARCH_PRIORITY else -1
            ranked[rank].append(dict(entry))
            break
    return list(itertools.chain.from_iterable(ranked))
