"""Reading packs from disk: ``pack.yaml``, the content directories, config schema and config.

Pure parsing and validation, no database: each ``load_*`` function reads one file and returns a
spec, or raises :class:`MetadataError` naming the file and the field. What needs the database
(does the runner or trigger type exist?) is checked by the service that registers the spec.

Pack refs follow StackStorm: ``ref`` from ``pack.yaml`` if given, else the directory name if it
is a valid ref, else ``name`` if it is; valid refs match ``^[a-z0-9_]+$``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from poundcake.engine.packs.errors import FieldError, MetadataError
from poundcake.engine.packs.fields import Fields
from poundcake.engine.packs.schema import (
    apply_defaults,
    check_parameters,
    check_schema,
    object_schema,
    type_name,
    validate,
)

logger = logging.getLogger(__name__)

MANIFEST_FILE = "pack.yaml"
CONFIG_SCHEMA_FILE = "config.schema.yaml"
METADATA_SUFFIXES = (".yaml", ".yml", ".json")
PACK_REF = re.compile(r"^[a-z0-9_]+$")
SEMVER = re.compile(
    r"^(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*)"
    r"(?:-[\da-z\-]+(?:\.[\da-z\-]+)*)?(?:\+[\da-z\-]+(?:\.[\da-z\-]+)*)?$"
)
STACKSTORM_VERSION = re.compile(r"^((>?>|>=|=|<=|<?<)\s*[0-9]+\.[0-9]+\.[0-9]+?(\s*,)?\s*)+$")
RESERVED_PACK_REFS = frozenset({"_global"})
SYSTEM_PACK_REFS = frozenset({"core", "packs", "poundcake"})
# The fields of StackStorm's pack schema. It allows others and drops them; here they draw a
# warning naming them. ``files`` and ``path`` are computed, as in StackStorm.
PACK_FIELDS = frozenset(
    {
        "id",
        "uid",
        "ref",
        "name",
        "description",
        "keywords",
        "version",
        "stackstorm_version",
        "python_versions",
        "author",
        "email",
        "contributors",
        "files",
        "dependencies",
        "system",
        "path",
    }
)
_IGNORED_FILES = re.compile(r"(^|/)(\.git|__pycache__)(/|$)|\.pyc$")


class ContentType(StrEnum):
    """A kind of pack content, named as ``st2ctl reload --register-<kind>`` names it."""

    TRIGGERS = "triggers"
    SENSORS = "sensors"
    RUNNERS = "runners"
    ACTIONS = "actions"
    RULES = "rules"
    ALIASES = "aliases"
    POLICIES = "policies"
    CONFIGS = "configs"


@dataclass(frozen=True)
class PackSpec:
    """A pack as its ``pack.yaml`` describes it, and where it is."""

    ref: str
    name: str
    description: str
    version: str
    author: str
    path: Path
    email: str | None = None
    keywords: list[str] = field(default_factory=list)
    python_versions: list[str] = field(default_factory=list)
    stackstorm_version: str | None = None
    dependencies: list[str] = field(default_factory=list)
    contributors: list[str] = field(default_factory=list)
    system: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    # Fields of pack.yaml that StackStorm accepts and drops: registration warns about them.
    ignored_fields: tuple[str, ...] = ()

    def relative(self, path: Path) -> str:
        """Return ``path`` relative to the pack directory, as ``metadata_file`` stores it."""
        return path.relative_to(self.path).as_posix()


# --- files ---------------------------------------------------------------------------------


def read_metadata(path: Path, *, allow_empty: bool = False) -> dict[str, Any]:
    """Parse one YAML or JSON metadata file whose top level must be a mapping."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MetadataError(path, None, f"cannot be read ({error})") from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MetadataError(path, None, f"is not valid YAML ({_yaml_problem(error)})") from None
    except json.JSONDecodeError as error:
        raise MetadataError(path, None, f"is not valid JSON ({error})") from None
    if document is None:
        if allow_empty:
            return {}
        raise MetadataError(path, None, "is empty")
    if not isinstance(document, dict):
        raise MetadataError(path, None, f"must hold a mapping, not {type_name(document)}")
    return document


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def content_files(pack: PackSpec, content_type: ContentType) -> list[Path]:
    """Return the metadata files of one content directory, sorted; ``actions/config.*`` is not."""
    directory = pack.path / content_type.value
    if not directory.is_dir():
        return []
    found = [
        path
        for path in directory.iterdir()
        if path.suffix in METADATA_SUFFIXES and path.is_file()
        if not (content_type is ContentType.ACTIONS and path.stem == "config")
    ]
    return sorted(found)


def _pack_files(pack_dir: Path) -> list[str]:
    names = (path.relative_to(pack_dir).as_posix() for path in pack_dir.rglob("*"))
    return sorted(
        name for name in names if not _IGNORED_FILES.search(name) and (pack_dir / name).is_file()
    )


# --- pack.yaml -----------------------------------------------------------------------------


def load_pack(pack_dir: Path) -> PackSpec:
    """Read and check ``<pack_dir>/pack.yaml``."""
    manifest = pack_dir / MANIFEST_FILE
    document = read_metadata(manifest)
    try:
        return _pack_spec(document, pack_dir, manifest)
    except FieldError as error:
        raise MetadataError.from_field_error(manifest, error) from None


def _pack_spec(document: dict[str, Any], pack_dir: Path, manifest: Path) -> PackSpec:
    fields = Fields(document)
    name = fields.required_string("name")
    ref = pack_ref(document, pack_dir.name)
    if ref in RESERVED_PACK_REFS:
        raise FieldError("ref", f'"{ref}" is a reserved name and cannot be used for a pack')
    python_versions = [str(value) for value in fields.array("python_versions")]
    for index, value in enumerate(python_versions):
        if value not in ("2", "3"):
            raise FieldError(f"python_versions.{index}", f'must be "2" or "3", not {value!r}')
    stackstorm_version = fields.optional_string("stackstorm_version")
    if stackstorm_version and not STACKSTORM_VERSION.match(stackstorm_version):
        raise FieldError("stackstorm_version", f'"{stackstorm_version}" is not like ">=3.0.0"')
    return PackSpec(
        ref=ref,
        name=name,
        description=fields.required_string("description"),
        version=_pack_version(document, manifest),
        author=fields.required_string("author"),
        path=pack_dir.resolve(),
        email=fields.optional_string("email"),
        keywords=fields.string_list("keywords"),
        python_versions=python_versions,
        stackstorm_version=stackstorm_version,
        dependencies=fields.string_list("dependencies"),
        contributors=fields.string_list("contributors", max_length=100),
        system=fields.mapping("system"),
        files=_pack_files(pack_dir),
        ignored_fields=tuple(sorted(str(key) for key in document if key not in PACK_FIELDS)),
    )


def pack_ref(document: dict[str, Any], directory_name: str) -> str:
    """Derive a pack's ref: ``ref``, else the directory name, else ``name``, if valid."""
    explicit = document.get("ref")
    if explicit is not None:
        if not isinstance(explicit, str) or not PACK_REF.match(explicit):
            raise FieldError("ref", f"{explicit!r} may contain only a-z, 0-9 and _")
        return explicit
    if PACK_REF.match(directory_name):
        return directory_name
    name = document.get("name")
    if isinstance(name, str) and PACK_REF.match(name):
        return name
    raise FieldError(
        "ref",
        f'is missing and neither the directory name "{directory_name}" nor the name {name!r} '
        "is a valid ref (a-z, 0-9 and _ only); add a ref",
    )


def _pack_version(document: dict[str, Any], manifest: Path) -> str:
    """Return the version as written; ``0.4`` (a YAML number) becomes ``0.4.0``."""
    value = document.get("version")
    if value is None or value == "":
        raise FieldError("version", "is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise FieldError("version", f"must be a string, not {type_name(value)}")
    text = value if isinstance(value, str) else _raw_scalar(manifest, "version") or str(value)
    if text.count(".") == 1:
        text += ".0"
    if not SEMVER.match(text):
        raise FieldError("version", f'"{text}" is not a semantic version such as 1.0.0')
    return text


def _raw_scalar(path: Path, key: str) -> str | None:
    """Return a top-level scalar as written (``1.10`` stays ``1.10``, not the float 1.1)."""
    if path.suffix == ".json":
        return None
    node = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return None
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return None


def discover_packs(
    base_paths: Sequence[Path], system_path: Path
) -> tuple[list[PackSpec], list[MetadataError]]:
    """Find the packs under each base path; return them and the packs that could not be read.

    Among the user's directories the first pack found with a ref wins, as in StackStorm. A
    user's pack also wins over a pack bundled in ``system_path`` with the same ref (its
    replacement is logged), except the system packs ``core``, ``packs`` and ``poundcake``,
    which only ``system_path`` provides: a user's copy of one is ignored with a warning, as
    StackStorm ignores a pack already found in an earlier directory.
    """
    system = system_path.resolve()
    bundled: dict[str, PackSpec] = {}
    users: dict[str, PackSpec] = {}
    failures: list[MetadataError] = []
    for base in dict.fromkeys(path.resolve() for path in base_paths):
        if not base.is_dir():
            failures.append(MetadataError(base, None, "is not a directory of packs"))
            continue
        found, unreadable = _packs_in(base)
        failures.extend(unreadable)
        for pack in found:
            if base == system:
                bundled[pack.ref] = pack
            elif pack.ref in SYSTEM_PACK_REFS:
                logger.warning(
                    "Pack %s in %s is ignored: %s is a system pack, bundled with the engine",
                    pack.ref,
                    pack.path,
                    pack.ref,
                )
            elif pack.ref in users:
                logger.warning(
                    "Pack %s in %s is ignored: already found in %s",
                    pack.ref,
                    pack.path,
                    users[pack.ref].path,
                )
            else:
                users[pack.ref] = pack
    for ref in sorted(bundled.keys() & users.keys()):
        logger.info(
            "Bundled pack %s in %s is replaced by the user's pack in %s",
            ref,
            bundled.pop(ref).path,
            users[ref].path,
        )
    return [*bundled.values(), *users.values()], failures


def _packs_in(base: Path) -> tuple[list[PackSpec], list[MetadataError]]:
    """Read every pack directly under ``base``, in name order."""
    packs: list[PackSpec] = []
    failures: list[MetadataError] = []
    for pack_dir in sorted(base.iterdir()):
        if not (pack_dir / MANIFEST_FILE).is_file():
            continue
        try:
            packs.append(load_pack(pack_dir))
        except MetadataError as error:
            failures.append(error)
    return packs, failures


# --- config schema and config --------------------------------------------------------------


def load_config_schema(pack: PackSpec) -> dict[str, Any] | None:
    """Read ``config.schema.yaml`` (attribute name -> schema), or None if the pack has none.

    Each attribute is checked as StackStorm checks it, against the schema of an action
    parameter: a keyword outside it (``format``, a misspelt ``defualt``) is refused.
    """
    path = pack.path / CONFIG_SCHEMA_FILE
    if not path.is_file():
        return None
    attributes = read_metadata(path)
    for name, spec in attributes.items():
        if not isinstance(spec, dict):
            raise MetadataError(path, str(name), f"must be a mapping, not {type_name(spec)}")
    try:
        check_parameters(attributes, "")
        check_schema(object_schema(attributes), "")
    except FieldError as error:
        raise MetadataError(path, _attribute_path(error.field), error.problem) from None
    return attributes


def _attribute_path(schema_path: str) -> str | None:
    """Turn ``properties.thresholds.properties.warning.type`` into ``thresholds.warning.type``."""
    kept: list[str] = []
    expecting_name = False
    for part in schema_path.split(".") if schema_path else []:
        if not expecting_name and part in ("properties", "patternProperties"):
            expecting_name = True
            continue
        kept.append(part)
        expecting_name = False
    return ".".join(kept) or None


def config_path(configs_dir: Path, pack: PackSpec) -> Path:
    """Return where the pack's config lives: ``<configs_dir>/<ref>.yaml``."""
    return configs_dir / f"{pack.ref}.yaml"


def load_config(path: Path, schema: dict[str, Any] | None) -> dict[str, Any]:
    """Read a pack config, validate it against the pack's schema and fill in the defaults.

    Values that are Jinja expressions (``{{ st2kv.system.token }}``) are resolved when an action
    runs, so they pass validation whatever the declared type.
    """
    values = read_metadata(path, allow_empty=True)
    if schema is None:
        return values
    full_schema = object_schema(schema)
    values = apply_defaults(values, full_schema)
    try:
        validate(values, full_schema, "", allow_templates=True)
    except FieldError as error:
        raise MetadataError.from_field_error(path, error) from None
    return dict(values)
