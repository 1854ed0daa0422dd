"""Each pack's Python virtualenv: where it lives, how it is built, and what pack code runs with.

A pack's virtualenv is ``<virtualenvs_path>/<pack>`` (``[actionrunner] virtualenvs_path``,
default ``<data_dir>/virtualenvs``), as StackStorm keeps them in ``/opt/stackstorm/virtualenvs``.
It is made with the engine's interpreter (``python -m venv``) and gets StackStorm's base
requirement and the pack's ``requirements.txt`` from PyPI through pip, which reads the machine's
pip configuration. Python actions and sensors of a pack run with its virtualenv's interpreter
(:func:`pack_python_environment`); a pack without one, and the system packs, run with the
engine's own.

A virtualenv being built carries a marker file until pip has finished, so one left half-made
(its setup killed) never looks ready: running the pack's code then fails and names the fix. A
setup that fails puts the previous virtualenv back, or leaves none.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import poundcake
from poundcake.config import St2Config
from poundcake.engine.packs.loader import MANIFEST_FILE, PACK_REF, SYSTEM_PACK_REFS
from poundcake.engine.runners.python.compat import COMPAT_DIR
from poundcake.engine.runners.python.fallback import FALLBACK_DIR
from poundcake.exceptions import PoundCakeError, ValidationError

logger = logging.getLogger(__name__)

REQUIREMENTS_FILE = "requirements.txt"
# What StackStorm installs into every pack's virtualenv (st2common.constants.pack).
BASE_PACK_REQUIREMENTS = ("six>=1.9.0,<2.0",)
# Present while a virtualenv is being built or updated; its presence means "not ready".
INCOMPLETE_MARKER = ".poundcake-setup-incomplete"
# Previous virtualenvs wait here while a setup runs, and each pack's setup lock is here; both
# hidden from pack names (refs have no dot).
REPLACED_DIRECTORY = ".replaced"
LOCK_DIRECTORY = ".locks"
# The tail of pip's output an error carries.
PIP_ERROR_LINES = 40


class VirtualenvError(PoundCakeError):
    """A pack's virtualenv cannot be built, or is unusable as it stands."""


def virtualenvs_dir(config: St2Config) -> Path:
    """Return the directory that holds the packs' virtualenvs."""
    configured = config.actionrunner.virtualenvs_path.strip()
    return Path(configured).expanduser() if configured else config.data_dir / "virtualenvs"


def virtualenv_path(config: St2Config, pack: str) -> Path:
    """Return where ``pack``'s virtualenv is (or would be)."""
    return virtualenvs_dir(config) / pack


def _setup_command(pack: str) -> str:
    return f'"st2 run packs.setup_virtualenv packs={pack}"'


def ready_virtualenv(virtualenvs: Path, pack: str) -> Path | None:
    """Return ``pack``'s virtualenv if it has a finished one; None if it has none (or is a
    system pack, whose code always runs with the engine's interpreter).

    Raises :class:`VirtualenvError` for a virtualenv whose setup did not finish.
    """
    if pack in SYSTEM_PACK_REFS:
        return None
    path = virtualenvs / pack
    if not path.is_dir():
        return None
    if (path / INCOMPLETE_MARKER).exists():
        raise VirtualenvError(
            f'The virtualenv of pack "{pack}" at {path} is incomplete: its setup did not finish. '
            f"Set it up again with {_setup_command(pack)}."
        )
    if not (path / "bin" / "python").is_file():
        raise VirtualenvError(
            f'The virtualenv of pack "{pack}" at {path} has no bin/python. Set it up again with '
            f"{_setup_command(pack)}."
        )
    made_with = _python_version(path)
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    if made_with is not None and made_with != ours:
        # The wrapper that loads pack code needs the engine's own (compiled) libraries.
        raise VirtualenvError(
            f'The virtualenv of pack "{pack}" at {path} was made with Python {made_with}, and '
            f"the engine runs Python {ours}. Set it up again with {_setup_command(pack)}."
        )
    return path


def _python_version(virtualenv: Path) -> str | None:
    """Return the ``major.minor`` Python version ``pyvenv.cfg`` records, if it does."""
    try:
        lines = (virtualenv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return ".".join(value.strip().split(".")[:2])
    return None


def pack_python(config: St2Config, pack: str) -> Path:
    """Return the interpreter that runs ``pack``'s Python code: its virtualenv's, else ours."""
    virtualenv = ready_virtualenv(virtualenvs_dir(config), pack)
    return virtualenv / "bin" / "python" if virtualenv is not None else Path(sys.executable)


def site_packages(virtualenv: Path) -> Path:
    """Return a virtualenv's ``lib/python3.X/site-packages``."""
    found = sorted((virtualenv / "lib").glob("python3*/site-packages"))
    if not found:
        raise VirtualenvError(f"The virtualenv at {virtualenv} has no lib/python3*/site-packages.")
    return found[0]


def engine_python_path() -> list[Path]:
    """Return the engine's own import path, without the standard library (the child's
    interpreter has its own) or the scripts directory of a console script, and with the
    directory ``poundcake`` is imported from."""
    standard = {
        Path(location).resolve()
        for key in ("stdlib", "platstdlib", "scripts")
        if (location := sysconfig.get_paths().get(key))
    }
    paths: list[Path] = []
    for entry in [*sys.path, str(Path(poundcake.__file__).resolve().parents[1])]:
        if not entry or entry.endswith(".zip") or "lib-dynload" in entry:
            continue
        path = Path(entry).resolve()
        if path not in standard and path not in paths:
            paths.append(path)
    return paths


@dataclass(frozen=True)
class PackPythonEnvironment:
    """The interpreter, import path and ``PATH`` a pack's Python code runs with."""

    python: Path
    python_path: tuple[Path, ...]
    virtualenv: Path | None

    @property
    def pythonpath(self) -> str:
        """Return ``python_path`` as a ``PYTHONPATH`` value."""
        return os.pathsep.join(str(path) for path in self.python_path)

    def path_variable(self, inherited: str) -> str:
        """Return ``PATH`` with the virtualenv's ``bin`` first, as StackStorm sets it."""
        if self.virtualenv is None:
            return inherited
        entries = [str(self.virtualenv / "bin"), *(part for part in inherited.split(":") if part)]
        return os.pathsep.join(entries)


def common_library(config: St2Config, pack_path: Path) -> Path | None:
    """Return the pack's ``lib/`` when ``[packs] enable_common_libs`` shares it with the pack's
    actions and sensors (StackStorm's switch, off by default), else None."""
    return pack_path / "lib" if config.packs.enable_common_libs else None


def pack_python_environment(
    virtualenvs: Path | None,
    pack: str,
    *,
    library_directory: Path | None = None,
    common_library: Path | None = None,
) -> PackPythonEnvironment:
    """Return the interpreter, import path and ``PATH`` ``pack``'s Python code runs with.

    ``virtualenvs`` is :func:`virtualenvs_dir` (None: no pack has one); ``library_directory`` is the
    code's own shared directory (``actions/lib`` for actions), if any, and ``common_library`` the
    pack's ``lib/`` (see :func:`common_library`). The interpreter is the pack's virtualenv's, else
    the engine's. The import path is, in StackStorm's order: the compatibility modules
    (``st2common``, ...), the pack's common library, the virtualenv's site-packages (so the pack's
    own versions of a library win), the library directory, the engine's own path, for the wrapper
    that loads the pack's code, and last stand-ins for what StackStorm's environment lends pack code
    (``oslo_config``), used only when nothing before provides it. The wrapper appends the directory
    of the module it loads to ``sys.path`` itself, as StackStorm's loader does: on ``PYTHONPATH`` an
    action named ``json.py`` would hide the standard library's ``json``.

    Raises :class:`VirtualenvError` if the pack's virtualenv is incomplete.
    """
    virtualenv = ready_virtualenv(virtualenvs, pack) if virtualenvs is not None else None
    paths = [COMPAT_DIR]
    if common_library is not None and common_library.is_dir():
        paths.append(common_library)
    if virtualenv is not None:
        paths.append(site_packages(virtualenv))
    if library_directory is not None and library_directory.is_dir():
        paths.append(library_directory)
    paths.extend(path for path in engine_python_path() if path not in paths)
    paths.append(FALLBACK_DIR)
    python = virtualenv / "bin" / "python" if virtualenv is not None else Path(sys.executable)
    return PackPythonEnvironment(python, tuple(paths), virtualenv)


# --- setup ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VirtualenvRequest:
    """One pack whose virtualenv to set up, and how."""

    pack: str
    pack_path: Path
    # Keep an existing virtualenv and only install or upgrade its requirements.
    update: bool = False
    # Use the pip bundled with Python; False upgrades pip and setuptools from PyPI first.
    no_download: bool = True


def check_virtualenv_request(request: VirtualenvRequest) -> None:
    """Refuse a pack that cannot have a virtualenv."""
    if not PACK_REF.match(request.pack):
        raise ValidationError(f'Invalid pack name "{request.pack}".')
    if request.pack in SYSTEM_PACK_REFS:
        raise ValidationError(
            f'Pack "{request.pack}" is a system pack: its Python code runs with the engine\'s '
            "interpreter and has no virtualenv."
        )
    if not (request.pack_path / MANIFEST_FILE).is_file():
        raise ValidationError(
            f'Pack "{request.pack}" is not installed: {request.pack_path} has no {MANIFEST_FILE}.'
        )


def _pip_environment(environment: Mapping[str, str] | None) -> dict[str, str]:
    # As StackStorm does: the caller's environment without PYTHONPATH, which would mix the
    # engine's libraries into what pip sees as installed.
    env = dict(os.environ if environment is None else environment)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


def _run(command: Sequence[str], *, env: Mapping[str, str], what: str) -> None:
    logger.info("Running %s", " ".join(command))
    completed = subprocess.run(  # noqa: S603 - argv built here, no shell
        list(command), env=dict(env), capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        lines = (completed.stderr.strip() or completed.stdout.strip()).splitlines()
        tail = "\n".join(lines[-PIP_ERROR_LINES:])
        raise VirtualenvError(f"{what} failed (exit code {completed.returncode}):\n{tail}")


def _requirements(request: VirtualenvRequest) -> list[str]:
    arguments = list(BASE_PACK_REQUIREMENTS)
    requirements = request.pack_path / REQUIREMENTS_FILE
    if requirements.is_file():
        arguments += ["-r", str(requirements)]
    return arguments


def _build(request: VirtualenvRequest, path: Path, env: Mapping[str, str], *, create: bool) -> None:
    """Create (or reuse) the virtualenv at ``path`` and install the pack's requirements."""
    path.mkdir(parents=True, exist_ok=True)
    marker = path / INCOMPLETE_MARKER
    marker.write_text("The setup of this virtualenv has not finished.\n")
    if create:
        command = [sys.executable, "-m", "venv"]
        if not request.no_download:
            command.append("--upgrade-deps")
        _run([*command, str(path)], env=env, what=f'Creating the virtualenv of "{request.pack}"')
    pip = [str(path / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run(
        [*pip, "-U", *_requirements(request)],
        env=env,
        what=f'Installing the requirements of pack "{request.pack}" '
        f"({request.pack_path / REQUIREMENTS_FILE}) with pip",
    )
    marker.unlink()


@dataclass
class _Replaced:
    path: Path
    previous: Path | None


def _set_aside(request: VirtualenvRequest, path: Path, work: Path) -> tuple[_Replaced, bool]:
    """Keep the current virtualenv (moved, or copied for an update) to put back on failure;
    return it and whether a new virtualenv must be created."""
    if not path.exists():
        return _Replaced(path, None), True
    work.mkdir(parents=True, exist_ok=True)
    previous = work / request.pack
    updatable = request.update and not (path / INCOMPLETE_MARKER).exists()
    if updatable:
        shutil.copytree(path, previous, symlinks=True)
    else:
        path.rename(previous)
    return _Replaced(path, previous), not updatable


def _restore(replaced: Sequence[_Replaced]) -> None:
    for item in reversed(replaced):
        shutil.rmtree(item.path, ignore_errors=True)
        if item.previous is not None:
            item.previous.rename(item.path)


@contextmanager
def virtualenvs_set_up(
    virtualenvs: Path,
    requests: Sequence[VirtualenvRequest],
    *,
    environment: Mapping[str, str] | None = None,
) -> Iterator[list[Path]]:
    """Set up each pack's virtualenv; yield their paths. If a setup or the block raises, every
    virtualenv is put back as it was.

    ``environment`` is what pip runs with (default: this process's, without ``PYTHONPATH``).
    """
    packs = [request.pack for request in requests]
    for request in requests:
        check_virtualenv_request(request)
    if len(set(packs)) != len(packs):
        raise ValidationError(f"A pack is named twice in {', '.join(packs)}.")
    env = _pip_environment(environment)
    work = virtualenvs / REPLACED_DIRECTORY / uuid.uuid4().hex
    replaced: list[_Replaced] = []
    with _locked(virtualenvs, packs):
        try:
            for request in requests:
                path = virtualenvs / request.pack
                item, create = _set_aside(request, path, work)
                replaced.append(item)
                _build(request, path, env, create=create)
                logger.info('Set up the virtualenv of pack "%s" in %s', request.pack, path)
            yield [virtualenvs / pack for pack in packs]
        except BaseException:
            _restore(replaced)
            raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                work.parent.rmdir()


@contextmanager
def _locked(virtualenvs: Path, packs: Sequence[str]) -> Iterator[None]:
    """Hold each pack's setup lock, so two setups of one pack (on this host) take turns; taken
    in name order, so two setups never wait for each other."""
    directory = virtualenvs / LOCK_DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        for pack in sorted(packs):
            lock = held.enter_context((directory / f"{pack}.lock").open("a"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def installed_virtualenvs(
    virtualenvs: Path | None, packs: Mapping[str, Path]
) -> contextlib.AbstractContextManager[object]:
    """Set up the virtualenv of each pack just put in place (ref to directory), as StackStorm's
    install does, for the block that registers them; nothing when ``virtualenvs`` is None."""
    if virtualenvs is None:
        return contextlib.nullcontext()
    requests = [VirtualenvRequest(pack, path) for pack, path in packs.items()]
    return virtualenvs_set_up(virtualenvs, requests)


def remove_virtualenv(virtualenvs: Path, pack: str) -> bool:
    """Delete ``pack``'s virtualenv; return False if it had none."""
    path = virtualenvs / pack
    if not PACK_REF.match(pack) or not path.is_dir():
        return False
    shutil.rmtree(path)
    return True
