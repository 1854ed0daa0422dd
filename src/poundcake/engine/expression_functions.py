"""StackStorm's expression functions: the Jinja filters of parameter rendering and the functions of
Orquesta workflow expressions (YAQL and Jinja) share these implementations.

Each behaves as StackStorm 3.9's ``st2common.expressions.functions`` does: the same arguments,
defaults and results. Values may come from YAQL, which hands over read-only mappings and tuples;
the JSON and YAML writers accept those as objects and arrays.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

import semver
import yaml

from poundcake.engine.rules.payload_paths import Step, find_all, parse_query

# What ``use_none`` turns None into; StackStorm turns a parameter with this value back into None.
NONE_MAGIC_VALUE: Final = "%*****__%NONE%__*****%"

_QUERIES_CACHED = 1024


def _plain(value: Any) -> Any:
    """A JSON encoder fallback: any mapping is an object (YAQL's frozen dicts)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper that also writes any mapping as a map and a tuple as a list."""


_Dumper.add_multi_representer(Mapping, _Dumper.represent_dict)  # type: ignore[type-abstract]
_Dumper.add_representer(tuple, _Dumper.represent_list)


def from_json_string(value: Any) -> Any:
    """Parse a JSON document."""
    return json.loads(str(value))


def from_yaml_string(value: Any) -> Any:
    """Parse a YAML document (safe loader)."""
    return yaml.safe_load(str(value))


def to_json_string(
    value: Any,
    indent: int | None = None,
    sort_keys: bool = False,
    separators: tuple[str, str] = (",", ": "),
) -> str:
    """Write ``value`` as JSON; StackStorm's default separators put no space after commas."""
    return json.dumps(
        value, indent=indent, sort_keys=sort_keys, separators=separators, default=_plain
    )


def to_yaml_string(value: Any, indent: int | None = None, allow_unicode: bool = True) -> str:
    """Write ``value`` as block-style YAML."""
    return yaml.dump(
        value, Dumper=_Dumper, default_flow_style=False, indent=indent, allow_unicode=allow_unicode
    )


def json_escape(value: Any) -> str:
    """Escape ``value`` for use inside a JSON string (the JSON text without its outer quotes)."""
    return json.dumps(value, default=_plain).strip('"')


@lru_cache(maxsize=_QUERIES_CACHED)
def _query(path: str) -> tuple[Step, ...]:
    return parse_query(path)


def jsonpath_query(value: Any, query: str) -> list[Any] | None:
    """Every value a JSONPath query finds in ``value``, or None when it finds none.

    The dialect is the engine's one (:mod:`poundcake.engine.rules.payload_paths`): jsonpath-rw's
    root, field, index, slice and wildcard forms; ``..`` and ``where`` are refused.
    """
    matches = find_all(_query(query), value)
    return matches or None


def _flags(ignorecase: bool) -> int:
    return re.IGNORECASE if ignorecase else 0


def regex_match(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    """Tell whether ``pattern`` matches at the start of ``value``."""
    return re.match(pattern, str(value), _flags(ignorecase)) is not None


def regex_search(value: Any, pattern: str, ignorecase: bool = False) -> bool:
    """Tell whether ``pattern`` matches anywhere in ``value``."""
    return re.search(pattern, str(value), _flags(ignorecase)) is not None


def regex_replace(value: Any, pattern: str, replacement: str, ignorecase: bool = False) -> str:
    """Replace every match of ``pattern`` in ``value``."""
    return re.sub(pattern, replacement, str(value), flags=_flags(ignorecase))


def regex_substring(
    value: Any, pattern: str, result_index: int = 0, ignorecase: bool = False
) -> Any:
    """The ``result_index``-th match of ``pattern`` in ``value`` (its groups if it has several)."""
    return re.findall(pattern, str(value), _flags(ignorecase))[result_index]


def use_none(value: Any) -> Any:
    """None becomes :data:`NONE_MAGIC_VALUE`; anything else is returned as is."""
    return NONE_MAGIC_VALUE if value is None else value


def basename(path: str) -> str:
    """The last component of ``path``."""
    return os.path.basename(path)


def dirname(path: str) -> str:
    """``path`` without its last component."""
    return os.path.dirname(path)


def to_human_time_from_seconds(seconds: int | float) -> str | None:
    """``12345`` -> ``"3h25m45s"``.

    StackStorm's arithmetic: the duration is added to 0001-01-01 and the years, day of the month,
    hours, minutes and seconds of that date are shown from the first one that is not zero (so whole
    months are not shown); a value below one second is shown as microseconds (``0.5μs``).
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"seconds must be a number, not {type(seconds).__name__}")
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds}\u03bcs"
    moment = datetime.datetime(1, 1, 1) + datetime.timedelta(seconds=round(seconds))
    parts = [moment.year - 1, moment.day - 1, moment.hour, moment.minute, moment.second]
    first = next(index for index, part in enumerate(parts) if part)
    shown = parts[first:]
    units = ("y", "d", "h", "m", "s")[first:]
    return "".join(f"{part}{unit}" for part, unit in zip(shown, units, strict=True))


def version_compare(value: str, pattern: str) -> int:
    """-1, 0 or 1 as semantic version ``value`` is below, equal to or above ``pattern``."""
    return semver.Version.parse(value).compare(pattern)


def version_more_than(value: str, pattern: str) -> bool:
    """Tell whether ``value`` is a higher semantic version than ``pattern``."""
    return version_compare(value, pattern) == 1


def version_less_than(value: str, pattern: str) -> bool:
    """Tell whether ``value`` is a lower semantic version than ``pattern``."""
    return version_compare(value, pattern) == -1


def version_equal(value: str, pattern: str) -> bool:
    """Tell whether ``value`` and ``pattern`` are the same semantic version."""
    return version_compare(value, pattern) == 0


def version_match(value: str, pattern: str) -> bool:
    """Tell whether ``value`` satisfies a condition such as ``">=1.2.0"``."""
    return semver.Version.parse(value).match(pattern)


def version_bump_major(value: str) -> str:
    """``1.2.3`` -> ``2.0.0``."""
    return str(semver.Version.parse(value).bump_major())


def version_bump_minor(value: str) -> str:
    """``1.2.3`` -> ``1.3.0``."""
    return str(semver.Version.parse(value).bump_minor())


def version_bump_patch(value: str) -> str:
    """``1.2.3`` -> ``1.2.4``."""
    return str(semver.Version.parse(value).bump_patch())


def version_strip_patch(value: str) -> str:
    """``1.2.3`` -> ``1.2``."""
    version = semver.Version.parse(value)
    return f"{version.major}.{version.minor}"


# StackStorm's Jinja filters for parameter rendering (``st2common.util.jinja.get_filters``), less
# the ones that depend on how a value is rendered (``to_complex``, ``use_none``, ``decrypt_kv``).
FILTERS: Final[Mapping[str, Callable[..., Any]]] = {
    "from_json_string": from_json_string,
    "from_yaml_string": from_yaml_string,
    "json_escape": json_escape,
    "jsonpath_query": jsonpath_query,
    "to_json_string": to_json_string,
    "to_yaml_string": to_yaml_string,
    "regex_match": regex_match,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "regex_substring": regex_substring,
    "to_human_time_from_seconds": to_human_time_from_seconds,
    "version_compare": version_compare,
    "version_more_than": version_more_than,
    "version_less_than": version_less_than,
    "version_equal": version_equal,
    "version_match": version_match,
    "version_bump_major": version_bump_major,
    "version_bump_minor": version_bump_minor,
    "version_bump_patch": version_bump_patch,
    "version_strip_patch": version_strip_patch,
    "basename": basename,
    "dirname": dirname,
}

# The Orquesta runner's catalog of StackStorm functions (its ``orquesta.expressions.functions``
# entry points, less ``st2kv`` and ``task``, which need the running workflow).
WORKFLOW_FUNCTIONS: Final[Mapping[str, Callable[..., Any]]] = {
    **FILTERS,
    "json_dump": to_json_string,
    "json_parse": from_json_string,
    "yaml_dump": to_yaml_string,
    "yaml_parse": from_yaml_string,
    "use_none": use_none,
}
