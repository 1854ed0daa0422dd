"""Installing packs from local directories: checks, the copy into place and registration.

Only local sources are installed: a ``file://`` URL or an absolute path to a pack directory,
or the bare name of a pack bundled with PoundCake (``linux`` is the repository's
``packs/linux``); nothing is downloaded from the exchange or git. Each pack is copied to
``<packs directory>/<ref>``, the packs directory being the first existing, writable directory of
``[content] packs_base_paths``, replacing an older copy, and then registered with all its
content; a pack that already sits in a directory of the pack search path (a bundled pack in the
system packs directory) is registered where it is. A pack that fails a check or does not
register leaves the previous copy in place.
Dependencies are not fetched: they must be installed already or come in the same request.
Functions flush; the caller commits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from poundcake.engine.packs.loader import MANIFEST_FILE, SYSTEM_PACK_REFS, PackSpec, load_pack
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR, ContentLocations
from poundcake.engine.packs.models import PackDB
from poundcake.engine.packs.registration import register_packs
from poundcake.engine.packs.virtualenvs import installed_virtualenvs
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

FILE_SCHEME = "file://"
# The StackStorm release whose API this engine serves, for packs' ``stackstorm_version``.
STACKSTORM_VERSION = "3.9.0"
PYTHON_MAJOR = "3"
PACKS_SETTING = "[content] packs_base_paths"
WORK_DIRECTORY = ".installing"
_COPY_IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc")
_VERSION_CLAUSE = re.compile(r"(>=|<=|==|!=|>>|<<|>|<|=)\s*(\d+)\.(\d+)\.(\d+)")
_PACK_NAME = re.compile(r"^[a-z0-9_]+$")


@dataclass
class PackOperationReport:
    """What an install or removal did, as StackStorm's ``packs.*`` workflows report it."""

    packs_list: list[str] = field(default_factory=list)
    warning_list: list[str] = field(default_factory=list)

    def output(self) -> dict[str, list[str]]:
        """Return the workflow output the ``st2`` CLI reads."""
        return {"packs_list": list(self.packs_list), "warning_list": list(self.warning_list)}


# --- checks --------------------------------------------------------------------------------


def bundled_pack_names(bundled: Path = BUNDLED_PACKS_DIR) -> list[str]:
    """Return the names of the installable packs bundled with PoundCake (not the system packs)."""
    if not bundled.is_dir():
        return []
    return sorted(
        folder.name
        for folder in bundled.iterdir()
        if (folder / MANIFEST_FILE).is_file() and folder.name not in SYSTEM_PACK_REFS
    )


def local_source(source: str, bundled: Path = BUNDLED_PACKS_DIR) -> Path:
    """Return the pack directory a ``file://`` URL, an absolute path or a bundled pack's name
    names; refuse the rest."""
    text = source.strip()
    if text.startswith(FILE_SCHEME):
        parsed = urllib.parse.urlparse(text)
        if parsed.netloc not in ("", "localhost"):
            raise ValidationError(
                f'Cannot install "{source}": a file:// URL must name an absolute path '
                "on this host (file:///path/to/pack)."
            )
        path = Path(urllib.parse.unquote(parsed.path))
    elif Path(text).is_absolute():
        path = Path(text)
    elif _PACK_NAME.match(text) and (bundled / text / MANIFEST_FILE).is_file():
        # A system pack's name gets here too, to be refused as a system pack.
        path = bundled / text
    else:
        names = ", ".join(bundled_pack_names(bundled)) or "none"
        raise ValidationError(
            f'Cannot install "{source}": only local packs can be installed, given as a '
            "file:// URL, an absolute path to a pack directory or the name of a pack bundled "
            f"with PoundCake ({names}); this engine does not download packs from the "
            "StackStorm Exchange or from git."
        )
    if not (path / MANIFEST_FILE).is_file():
        raise ValidationError(f'Cannot install "{source}": {path} has no {MANIFEST_FILE}.')
    return path


def packs_directory(locations: ContentLocations) -> Path:
    """Return the first existing, writable directory of ``[content] packs_base_paths``."""
    for base in locations.packs_base_paths:
        folder = base.expanduser()
        if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
            return folder.resolve()
    configured = ", ".join(str(path) for path in locations.packs_base_paths) or "nothing"
    raise ValidationError(
        f"No directory to install packs into: {PACKS_SETTING} is {configured}; set it to an "
        "existing directory the engine can write."
    )


def version_satisfies(requirement: str, version: str = STACKSTORM_VERSION) -> bool:
    """Tell whether ``version`` meets a ``stackstorm_version`` such as ``>=3.0.0,<4.0.0``."""
    clauses = _VERSION_CLAUSE.findall(requirement)
    if not clauses:
        raise ValidationError(f'"{requirement}" is not a version requirement like ">=3.0.0".')
    have = tuple(int(part) for part in version.split("."))
    checks = {
        ">=": lambda want: have >= want,
        "<=": lambda want: have <= want,
        ">": lambda want: have > want,
        ">>": lambda want: have > want,
        "<": lambda want: have < want,
        "<<": lambda want: have < want,
        "==": lambda want: have == want,
        "=": lambda want: have == want,
        "!=": lambda want: have != want,
    }
    return all(
        checks[operator]((int(major), int(minor), int(patch)))
        for operator, major, minor, patch in clauses
    )


def dependency_ref(dependency: str) -> str:
    """Return the pack ref a ``dependencies`` entry names (a ref, ``ref=version`` or a URL)."""
    name = dependency.strip().split("=", 1)[0].strip()
    if "/" in name or name.startswith(FILE_SCHEME):
        name = name.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        name = name.removeprefix("stackstorm-")
    return name.replace("-", "_").lower()


def compatibility_problems(spec: PackSpec) -> list[str]:
    """Return why this engine may not run the pack (Python or StackStorm version)."""
    problems = []
    if spec.python_versions and PYTHON_MAJOR not in spec.python_versions:
        problems.append(
            f'Pack "{spec.ref}" supports Python {", ".join(spec.python_versions)} only, '
            f"and actions here run on Python {PYTHON_MAJOR}."
        )
    if spec.stackstorm_version and not version_satisfies(spec.stackstorm_version):
        problems.append(
            f'Pack "{spec.ref}" requires StackStorm {spec.stackstorm_version}, and this engine '
            f"is compatible with StackStorm {STACKSTORM_VERSION}."
        )
    return problems


@dataclass(frozen=True)
class _Candidate:
    source: Path
    spec: PackSpec
    # The source already sits in a directory of the pack search path: register it there.
    in_place: bool = False

    def destination(self, target: Path) -> Path:
        """Return where the pack is registered from once installed."""
        return self.source.resolve() if self.in_place else (target / self.spec.ref).resolve()


def _candidates(
    sources: Sequence[str], target: Path, search_paths: Sequence[Path]
) -> list[_Candidate]:
    searched = {path.expanduser().resolve() for path in search_paths}
    candidates: list[_Candidate] = []
    for source in sources:
        path = local_source(source)
        spec = load_pack(path)
        if spec.ref in SYSTEM_PACK_REFS:
            raise ValidationError(
                f'Pack "{spec.ref}" is a system pack bundled with the engine; it cannot be '
                "installed."
            )
        if target == path.resolve() or path.resolve() in target.parents:
            raise ValidationError(f"Cannot install {path}: it holds the packs directory {target}.")
        if any(candidate.spec.ref == spec.ref for candidate in candidates):
            raise ValidationError(f'Pack "{spec.ref}" is named twice in one request.')
        candidates.append(_Candidate(path, spec, path.resolve().parent in searched))
    return candidates


def _check_dependencies(session: Session, candidates: list[_Candidate]) -> None:
    installed = set(session.scalars(sa.select(PackDB.ref)))
    installed.update(candidate.spec.ref for candidate in candidates)
    for candidate in candidates:
        missing = [
            dependency
            for dependency in candidate.spec.dependencies
            if dependency_ref(dependency) not in installed
        ]
        if missing:
            raise ValidationError(
                f'Pack "{candidate.spec.ref}" depends on {", ".join(missing)}, which '
                f"{'is' if len(missing) == 1 else 'are'} not installed; install "
                f"{'it' if len(missing) == 1 else 'them'} first from a local path, or skip the "
                "dependency check (--skip-dependencies)."
            )


# --- files ---------------------------------------------------------------------------------


@contextmanager
def _placed(candidates: list[_Candidate], target: Path) -> Iterator[None]:
    """Copy each pack into place; put the previous copies back if the block raises.

    New and replaced copies wait in ``<target>/.installing/<id>/``, one level deeper than pack
    discovery looks and on the same file system, so each swap is a rename.
    """
    work = target / WORK_DIRECTORY / uuid.uuid4().hex
    replaced: list[tuple[Path, Path | None]] = []
    try:
        for index, candidate in enumerate(candidates):
            destination = target / candidate.spec.ref
            if candidate.in_place or candidate.source.resolve() == destination.resolve():
                continue
            staging, backup = work / f"new-{index}", work / f"old-{index}"
            shutil.copytree(candidate.source, staging, ignore=_COPY_IGNORED, symlinks=True)
            if destination.exists():
                destination.rename(backup)
                replaced.append((destination, backup))
            else:
                replaced.append((destination, None))
            staging.rename(destination)
        yield
    except BaseException:
        for destination, previous in reversed(replaced):
            shutil.rmtree(destination, ignore_errors=True)
            if previous is not None:
                previous.rename(destination)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()


# --- install -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallPlan:
    """Checked packs to install, where to, and the warnings a forced install carries."""

    target: Path
    candidates: list[_Candidate]
    warnings: list[str]

    @property
    def refs(self) -> list[str]:
        """Return the refs of the packs, in request order."""
        return [candidate.spec.ref for candidate in self.candidates]


def plan_install(
    *,
    session: Session,
    locations: ContentLocations,
    sources: Sequence[str],
    force: bool = False,
    skip_dependencies: bool = False,
) -> InstallPlan:
    """Check an install request without changing anything; raise ValidationError if it cannot
    go ahead.

    ``force`` accepts a pack whose Python or StackStorm version does not match (with a
    warning); ``skip_dependencies`` does not check that dependencies are present.
    """
    if not sources:
        raise ValidationError("Name at least one pack to install.")
    target = packs_directory(locations)
    candidates = _candidates(sources, target, locations.search_paths)
    warnings: list[str] = []
    for candidate in candidates:
        problems = compatibility_problems(candidate.spec)
        if problems and not force:
            raise ValidationError(" ".join(problems) + " Use --force to install it anyway.")
        warnings.extend(problems)
    if not skip_dependencies:
        _check_dependencies(session, candidates)
    return InstallPlan(target, candidates, warnings)


def install_packs(
    *,
    session: Session,
    locations: ContentLocations,
    sources: Sequence[str],
    force: bool = False,
    skip_dependencies: bool = False,
    system_user: str = "stanley",
    virtualenvs: Path | None = None,
) -> PackOperationReport:
    """Check local packs (see :func:`plan_install`), copy them into place, set up their
    virtualenvs in ``virtualenvs`` (if given) and register them."""
    plan = plan_install(
        session=session,
        locations=locations,
        sources=sources,
        force=force,
        skip_dependencies=skip_dependencies,
    )
    placed = {each.spec.ref: each.destination(plan.target) for each in plan.candidates}
    with _placed(plan.candidates, plan.target), installed_virtualenvs(virtualenvs, placed):
        register_packs(
            session=session,
            locations=locations,
            packs=plan.refs,
            types=None,
            system_user=system_user,
            warnings=plan.warnings,
        )
        _check_registered_from(session, plan)
    logger.info("Installed packs %s into %s", ", ".join(plan.refs), plan.target)
    return PackOperationReport(packs_list=plan.refs, warning_list=list(plan.warnings))


def _check_registered_from(session: Session, plan: InstallPlan) -> None:
    """Fail if a pack of the same ref earlier in the search path hides an installed one."""
    expected_paths = {
        candidate.spec.ref: candidate.destination(plan.target) for candidate in plan.candidates
    }
    rows = session.execute(sa.select(PackDB.ref, PackDB.path).where(PackDB.ref.in_(plan.refs)))
    for ref, path in rows:
        expected = expected_paths[ref]
        if path is None or Path(path).resolve() != expected:
            raise ValidationError(
                f'Pack "{ref}" was installed to {expected}, but the copy at {path} comes first '
                "in the pack search path; remove that one first."
            )
