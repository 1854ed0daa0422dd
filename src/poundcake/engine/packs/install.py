"""Installing packs: fetching them, checks, dependencies, the copy into place and registration.

Each request names a source (see :mod:`poundcake.engine.packs.sources`): a git URL with an
optional version, a name from the pack index, a local pack directory or a bundled pack's name.
Dependencies from ``pack.yaml`` are fetched the same way and installed first, unless they are
installed already (at the version asked for: another version is a conflict, as in StackStorm)
or ``skip_dependencies`` is set. Each pack is copied to ``<packs directory>/<ref>``, the packs
directory being the first existing, writable directory of ``[content] packs_base_paths``,
replacing an older copy, its virtualenv set up
(:func:`~poundcake.engine.packs.virtualenvs.installed_virtualenvs`) and registered with all its
content; a pack that already sits in a directory of the pack search path (a bundled pack)
is registered where it is. A request that fails anywhere leaves the previous copies in place.
Functions flush; the caller commits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
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
from poundcake.engine.packs.sources import FILE_SCHEME, fetch, resolve_source, split_version
from poundcake.engine.packs.virtualenvs import installed_virtualenvs
from poundcake.exceptions import ValidationError

logger = logging.getLogger(__name__)

# The StackStorm release whose API this engine serves, for packs' ``stackstorm_version``.
STACKSTORM_VERSION = "3.9.0"
PYTHON_MAJOR = "3"
PACKS_SETTING = "[content] packs_base_paths"
WORK_DIRECTORY = ".installing"
_COPY_IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc")
_VERSION_CLAUSE = re.compile(r"(>=|<=|==|!=|>>|<<|>|<|=)\s*(\d+)\.(\d+)\.(\d+)")
# StackStorm fetches dependencies of dependencies this deep at most.
MAX_DEPENDENCY_DEPTH = 10


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
    request: str
    # The source already sits in a directory of the pack search path: register it there.
    in_place: bool = False

    def destination(self, target: Path) -> Path:
        """Return where the pack is registered from once installed."""
        return self.source.resolve() if self.in_place else (target / self.spec.ref).resolve()


def _same_version(wanted: str, have: str) -> bool:
    """Compare versions as StackStorm does: ``1.0.0`` and ``v1.0.0`` are the same."""
    return wanted.removeprefix("v") == have.removeprefix("v")


@dataclass
class _Planner:
    """Fetches the requested packs, then their dependencies level by level."""

    session: Session
    locations: ContentLocations
    target: Path
    work: Path
    candidates: list[_Candidate] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def add(self, request: str, *, dependency: bool) -> _Candidate | None:
        """Fetch and check one pack; a dependency already planned is not fetched twice."""
        source = resolve_source(request, self.locations.index_urls, BUNDLED_PACKS_DIR)
        path = fetch(source, self.work)
        spec = load_pack(path)
        if spec.ref in SYSTEM_PACK_REFS:
            raise ValidationError(
                f'Pack "{spec.ref}" is a system pack bundled with the engine; it cannot be '
                "installed."
            )
        if self.target == path.resolve() or path.resolve() in self.target.parents:
            raise ValidationError(f"Cannot install {path}: it holds the packs directory.")
        if any(candidate.spec.ref == spec.ref for candidate in self.candidates):
            if dependency:
                return None
            raise ValidationError(f'Pack "{spec.ref}" is named twice in one request.')
        searched = {folder.expanduser().resolve() for folder in self.locations.search_paths}
        candidate = _Candidate(path, spec, request, path.resolve().parent in searched)
        self.candidates.append(candidate)
        return candidate

    def dependencies(self, level: list[_Candidate]) -> list[str]:
        """Return the dependencies of ``level`` still to fetch; note the conflicts."""
        rows = self.session.execute(sa.select(PackDB.ref, PackDB.version))
        installed = {ref: version for ref, version in rows}
        planned = {candidate.spec.ref: candidate.spec.version for candidate in self.candidates}
        wanted: dict[str, str] = {}
        for candidate in level:
            for dependency in candidate.spec.dependencies:
                ref = dependency_ref(dependency)
                _, version = split_version(dependency)
                have = planned.get(ref) or installed.get(ref)
                if have is not None:
                    if version and not _same_version(version, have):
                        self.conflicts.append(f"{dependency} (installed: {have})")
                    continue
                if ref in wanted and split_version(wanted[ref])[1] != version:
                    self.conflicts.append(f"{dependency} (also asked for: {wanted[ref]})")
                    continue
                wanted.setdefault(ref, dependency)
        return list(wanted.values())


def _plan_candidates(
    planner: _Planner, requests: Sequence[str], skip_dependencies: bool
) -> list[_Candidate]:
    """Fetch the requested packs and, unless skipped, their dependencies; dependencies first."""
    level = [planner.add(request, dependency=False) for request in requests]
    levels = [[candidate for candidate in level if candidate is not None]]
    for _ in range(MAX_DEPENDENCY_DEPTH):
        if skip_dependencies:
            break
        wanted = planner.dependencies(levels[-1])
        if planner.conflicts:
            raise ValidationError(
                "Unable to install packs due to conflicts: "
                + ", ".join(planner.conflicts)
                + ". Review the versions of the installed packs, or install with "
                "--skip-dependencies."
            )
        found = [planner.add(request, dependency=True) for request in wanted]
        level_found = [candidate for candidate in found if candidate is not None]
        if not level_found:
            break
        levels.append(level_found)
    return [candidate for level in reversed(levels) for candidate in level]


# --- files ---------------------------------------------------------------------------------


@contextmanager
def _work_directory(target: Path) -> Iterator[Path]:
    """Yield ``<target>/.installing/<id>/``, removed afterwards.

    It is one level deeper than pack discovery looks and on the packs' file system, so each
    swap into place is a rename.
    """
    work = target / WORK_DIRECTORY / uuid.uuid4().hex
    work.mkdir(parents=True)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()


def copy_into_place(candidate: _Candidate, destination: Path, staging: Path) -> None:
    """Copy one fetched pack to ``staging`` (without ``.git``), then rename it to
    ``destination``, which must not exist."""
    shutil.copytree(candidate.source, staging, ignore=_COPY_IGNORED, symlinks=True)
    staging.rename(destination)


@contextmanager
def _placed(candidates: list[_Candidate], target: Path, work: Path) -> Iterator[None]:
    """Copy each pack into place; put the previous copies back if the block raises."""
    replaced: list[tuple[Path, Path | None]] = []
    try:
        for index, candidate in enumerate(candidates):
            destination = target / candidate.spec.ref
            if candidate.in_place or candidate.source.resolve() == destination.resolve():
                continue
            backup = work / f"old-{index}"
            if destination.exists():
                destination.rename(backup)
                replaced.append((destination, backup))
            else:
                replaced.append((destination, None))
            copy_into_place(candidate, destination, work / f"new-{index}")
        yield
    except BaseException:
        for destination, previous in reversed(replaced):
            shutil.rmtree(destination, ignore_errors=True)
            if previous is not None:
                previous.rename(destination)
        raise


# --- install -------------------------------------------------------------------------------


@dataclass(frozen=True)
class InstallPlan:
    """Checked packs to install (dependencies first), where to, and the warnings a forced
    install carries."""

    target: Path
    candidates: list[_Candidate]
    warnings: list[str]

    @property
    def refs(self) -> list[str]:
        """Return the refs of the packs, dependencies first."""
        return [candidate.spec.ref for candidate in self.candidates]


def plan_install(
    *,
    session: Session,
    locations: ContentLocations,
    sources: Sequence[str],
    work: Path,
    force: bool = False,
    skip_dependencies: bool = False,
) -> InstallPlan:
    """Fetch the packs and their dependencies into ``work`` and check them, without changing
    anything installed; raise ValidationError if the request cannot go ahead.

    ``force`` accepts a pack whose Python or StackStorm version does not match (with a
    warning); ``skip_dependencies`` neither fetches nor checks dependencies.
    """
    if not sources:
        raise ValidationError("Name at least one pack to install.")
    target = packs_directory(locations)
    planner = _Planner(session, locations, target, work / "fetched")
    candidates = _plan_candidates(planner, sources, skip_dependencies)
    warnings: list[str] = []
    for candidate in candidates:
        problems = compatibility_problems(candidate.spec)
        if problems and not force:
            raise ValidationError(" ".join(problems) + " Use --force to install it anyway.")
        warnings.extend(problems)
    return InstallPlan(target, candidates, warnings)


@contextmanager
def _planned(
    session: Session,
    locations: ContentLocations,
    sources: Sequence[str],
    force: bool,
    skip_dependencies: bool,
) -> Iterator[tuple[InstallPlan, Path]]:
    """Plan in a fresh work directory; yield the plan and the directory, removed afterwards."""
    with _work_directory(packs_directory(locations)) as work:
        yield (
            plan_install(
                session=session,
                locations=locations,
                sources=sources,
                work=work,
                force=force,
                skip_dependencies=skip_dependencies,
            ),
            work,
        )


def check_install(
    *,
    session: Session,
    locations: ContentLocations,
    sources: Sequence[str],
    force: bool = False,
    skip_dependencies: bool = False,
) -> list[str]:
    """Check an install request as :func:`install_packs` would; return the refs it installs."""
    with _planned(session, locations, sources, force, skip_dependencies) as (plan, _):
        return plan.refs


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
    """Fetch and check packs (see :func:`plan_install`), copy them into place, set up their
    virtualenvs in ``virtualenvs`` (if given) and register them, all or none."""
    with (
        _planned(session, locations, sources, force, skip_dependencies) as (plan, work),
        _placed(plan.candidates, plan.target, work),
        installed_virtualenvs(
            virtualenvs,
            {each.spec.ref: each.destination(plan.target) for each in plan.candidates},
        ),
    ):
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
