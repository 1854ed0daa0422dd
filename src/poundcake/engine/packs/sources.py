"""Where a pack to install comes from, and fetching it into a local directory.

A source is what ``st2 pack install`` names, as StackStorm reads it:

- ``<git URL>[=<version>]``: a ``https://``, ``http://``, ``ssh://``, ``git@`` or ``file://``
  URL of a git repository (a working copy or a bare repository), or GitHub's ``owner/repo``
  shorthand. The version is a branch, a tag or a commit; ``1.0.0`` also finds the tag
  ``v1.0.0``. Without one, the repository's default branch is installed.
- ``<name>[=<version>]``: a pack of the pack index (``[content] index_url``), installed from its
  ``repo_url`` at the version asked for, else the index's version.
- a ``file://`` URL or an absolute path of a pack directory that is not a git repository: its
  files as they are.
- the name of a pack bundled with PoundCake (``linux``) that the index does not hold: registered
  where it is.

Fetching clones with the ``git`` command into a directory the caller owns and removes.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from poundcake.engine.packs.index import find_pack
from poundcake.engine.packs.loader import MANIFEST_FILE, SEMVER
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

FILE_SCHEME = "file://"
VERSION_SEPARATOR = "="
GIT_TIMEOUT_SECONDS = 600
_REMOTE_SCHEMES = ("https://", "http://", "ssh://", "git://", "git@", "gitlab@")
_PACK_NAME = re.compile(r"^[a-z0-9_-]+$", re.IGNORECASE)
# git must never wait for a password on a terminal nobody sees.
_GIT_ENVIRONMENT = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/echo"}


@dataclass(frozen=True)
class PackSource:
    """One pack to fetch: a git repository at a version, or a directory as it is."""

    request: str
    repo_url: str | None = None
    version: str | None = None
    directory: Path | None = None
    # Named by its index entry (for messages).
    index_name: str | None = None


def split_version(request: str) -> tuple[str, str | None]:
    """Split ``<name or URL>=<version>`` as StackStorm does; the version may be absent."""
    name, _, version = request.strip().partition(VERSION_SEPARATOR)
    return name.strip(), (version.strip() or None) if version else None


def _local_path(url: str) -> Path:
    parsed = urllib.parse.urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise ValidationError(
            f'Cannot install "{url}": a file:// URL must name an absolute path on this host '
            "(file:///path/to/pack)."
        )
    return Path(urllib.parse.unquote(parsed.path))


def is_git_repository(path: Path) -> bool:
    """Tell whether ``path`` is a git working copy or a bare repository."""
    return (path / ".git").exists() or (
        (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()
    )


def resolve_source(request: str, index_urls: Sequence[str], bundled: Path) -> PackSource:
    """Turn one install request into a source; refuse what names nothing installable."""
    name, version = split_version(request)
    if not name:
        raise ValidationError("An empty pack name cannot be installed.")
    if name.startswith(FILE_SCHEME) or Path(name).is_absolute():
        path = _local_path(name) if name.startswith(FILE_SCHEME) else Path(name)
        if not path.exists():
            raise ValidationError(f'Cannot install "{request}": {path} does not exist.')
        if is_git_repository(path):
            return PackSource(request, repo_url=path.resolve().as_uri(), version=version)
        if version is not None:
            raise ValidationError(
                f'Cannot install "{request}": {path} is not a git repository, so it has no '
                f'version "{version}".'
            )
        if not (path / MANIFEST_FILE).is_file():
            raise ValidationError(f'Cannot install "{request}": {path} has no {MANIFEST_FILE}.')
        return PackSource(request, directory=path)
    if name.startswith(_REMOTE_SCHEMES) or "/" in name:
        url = name if name.startswith(_REMOTE_SCHEMES) else f"https://github.com/{name}"
        return PackSource(request, repo_url=url, version=version)
    if not _PACK_NAME.match(name):
        raise ValidationError(f'Cannot install "{request}": "{name}" is not a pack name or a URL.')
    return _from_index(request, name, version, index_urls, bundled)


def _from_index(
    request: str, name: str, version: str | None, index_urls: Sequence[str], bundled: Path
) -> PackSource:
    bundled_pack = bundled / name
    try:
        entry = find_pack(index_urls, name) if index_urls else None
    except ValidationError:
        if (bundled_pack / MANIFEST_FILE).is_file() and version is None:
            entry = None
        else:
            raise
    if entry is None:
        if (bundled_pack / MANIFEST_FILE).is_file() and version is None:
            return PackSource(request, directory=bundled_pack)
        raise ValidationError(f'No record of the "{name}" pack in the index.')
    repo_url = entry.get("repo_url")
    if not isinstance(repo_url, str) or not repo_url:
        raise ValidationError(f'The index entry of the "{name}" pack has no repo_url.')
    indexed_version = entry.get("version")
    return PackSource(
        request,
        repo_url=repo_url,
        version=version or (str(indexed_version) if indexed_version else None),
        index_name=name,
    )


# --- git -----------------------------------------------------------------------------------


def _git(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    git = shutil.which("git")
    if git is None:
        raise ValidationError("Installing a pack from git needs the git command, not found.")
    return subprocess.run(  # noqa: S603 - argv list, no shell; URLs and versions come after --
        [git, *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_SECONDS,
        env={**os.environ, **_GIT_ENVIRONMENT},
        check=False,
    )


def _commit_of(checkout: Path, ref: str) -> str | None:
    found = _git(
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", cwd=checkout
    )
    return found.stdout.strip() if found.returncode == 0 else None


def _versions(checkout: Path) -> list[str]:
    tags = _git("tag", "--list", "v*", cwd=checkout).stdout.split()
    return [tag[1:] for tag in tags if SEMVER.match(tag[1:])]


def pick_commit(checkout: Path, version: str, repo_url: str) -> str:
    """Find what ``version`` names, in StackStorm's order: a branch, a tag or commit, then the
    tag ``v<version>`` when the version is a semantic version."""
    candidates = [f"origin/{version}", version]
    if SEMVER.match(version):
        candidates.append(f"v{version}")
    for candidate in candidates:
        commit = _commit_of(checkout, candidate)
        if commit:
            return commit
    message = f'"{version}" is not a valid version, hash, tag or branch in {repo_url}.'
    available = _versions(checkout)
    if available:
        message += f" Available versions are: {', '.join(available)}."
    raise ValidationError(message)


def clone(source: PackSource, destination: Path) -> Path:
    """Clone the source's repository into ``destination`` at its version; return it."""
    if source.repo_url is None:
        raise ValidationError(f'Cannot install "{source.request}": it names no git repository.')
    cloned = _git("clone", "--quiet", "--no-checkout", "--", source.repo_url, str(destination))
    if cloned.returncode != 0:
        problem = cloned.stderr.strip().splitlines()
        raise ValidationError(
            f'Cannot install "{source.request}": git clone of {source.repo_url} failed'
            + (f" ({problem[-1]})" if problem else "")
            + "."
        )
    commit = (
        pick_commit(destination, source.version, source.repo_url)
        if source.version
        else _commit_of(destination, "HEAD")
    )
    if commit is None:
        raise ValidationError(f'Cannot install "{source.request}": {source.repo_url} is empty.')
    checkout = _git("checkout", "--quiet", "--detach", commit, cwd=destination)
    if checkout.returncode != 0:
        raise ValidationError(
            f'Cannot install "{source.request}": git checkout of {commit} failed '
            f"({checkout.stderr.strip()})."
        )
    if not (destination / MANIFEST_FILE).is_file():
        raise ValidationError(
            f'Cannot install "{source.request}": {source.repo_url} has no {MANIFEST_FILE} at '
            "its top level."
        )
    logger.info("Fetched %s at %s", source.repo_url, commit)
    return destination


def fetch(source: PackSource, work: Path) -> Path:
    """Return a directory holding the source's pack: cloned under ``work``, or its own."""
    if source.directory is not None:
        return source.directory
    work.mkdir(parents=True, exist_ok=True)
    return clone(source, work / f"clone-{len(list(work.iterdir()))}")
