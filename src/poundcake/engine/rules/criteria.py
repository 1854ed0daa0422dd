"""Rule criteria: compile a rule's ``criteria`` once, then match trigger payloads against it fast.

StackStorm's semantics (``st2common/operators.py``, ``st2reactor/rules/filter.py``): every
criterion must match, and non-empty criteria never match an empty payload. A key is a path in
jsonpath-rw 1.4's dialect into the payload under ``trigger``, or into each list element under
``item`` inside a ``search``; a ``#suffix`` is ignored, so one value can be tested twice. The
first value the path finds is tested, ``None`` if it finds none. Operators compare the typed
values without casting (``eq`` of 5 and "5" is false), decode bytes to text, and treat a
``None`` pattern as no match (except ``nequals``, ``exists`` and ``nexists``). Any error while
looking up, rendering or comparing means "no match", logged at DEBUG, never an exception.

A pattern that is a Jinja template is rendered on every evaluation through the caller's
``render`` (the datastore changes); other patterns are prepared once (regular expressions
compiled, lower-cased forms computed).
"""

from __future__ import annotations

import email.utils
import fnmatch
import logging
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

from jinja2 import TemplateError

from poundcake.engine.packs.errors import FieldError
from poundcake.engine.rendering import environment, is_template
from poundcake.engine.rules.payload_paths import TRIGGER_PREFIX, Step, lookup_for, parse_key

logger = logging.getLogger(__name__)

Render = Callable[[str], Any]
ITEM_PREFIX: Final = "item"
SEARCH: Final = "search"
# StackStorm 3.x: any/all say how many list elements must pass every item criterion;
# any2any/all2any how many must pass at least one.
SEARCH_CONDITIONS: Final = ("any", "all", "any2any", "all2any")
_REPR_LIMIT = 200
# What comparing values of unexpected types raises: the criterion does not match.
_DATA_ERRORS = (ArithmeticError, AttributeError, LookupError, TypeError, ValueError, re.error)
_NO_PATTERN: Final = object()


class CriteriaError(FieldError, ValueError):
    """Criteria that cannot be compiled; ``key`` names the field (``criteria.trigger.x.type``)."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(key, problem)
        self.key = key


def _text(value: Any) -> Any:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _as_is(pattern: Any) -> Any:
    return pattern


def _lowered(pattern: Any) -> Any:
    return _text(pattern).lower()


@lru_cache(maxsize=1024)
def _regex(pattern: str, flags: int) -> re.Pattern[str]:
    return re.compile(pattern, flags)


def _regex_preparer(flags: int) -> Callable[[Any], Any]:
    return lambda pattern: _regex(_text(pattern), flags)


def _wildcard(pattern: Any) -> Any:
    pattern = _text(pattern)
    if not isinstance(pattern, str):
        raise TypeError(f"a wildcard pattern must be a string, not {type(pattern).__name__}")
    return _regex(fnmatch.translate(pattern), 0)


def _age(value: Any) -> float:
    """Seconds from the date ``value`` (ISO 8601 or RFC 2822; naive means UTC) until now."""
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = email.utils.parsedate_to_datetime(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (datetime.now(UTC) - moment).total_seconds()


def _never(value: Any, pattern: Any) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class _Operator:
    """How one operator prepares its pattern and tests a value against it."""

    test: Callable[[Any, Any], bool]  # StackStorm's expression for the operator
    prepare: Callable[[Any], Any] = _text
    decodes: bool = True  # a bytes value is compared as text
    needs_pattern: bool = True  # at compile time
    none_pattern_fails: bool = True  # for a pattern rendered as None
    # For a None value the test is false (or raises): skip it, and the cost of an exception.
    none_value_fails: bool = True
    regex: bool = False  # a static pattern it cannot prepare is a compile error


def _match(value: Any, pattern: Any) -> bool:
    return pattern.match(value) is not None


def _search(value: Any, pattern: Any) -> bool:
    return pattern.search(value) is not None


_OPERATORS: Final = {
    "matchwildcard": _Operator(_match, _wildcard),
    "matchregex": _Operator(_match, _regex_preparer(re.DOTALL), regex=True),
    "regex": _Operator(_search, _regex_preparer(0), regex=True),
    "iregex": _Operator(_search, _regex_preparer(re.IGNORECASE), regex=True),
    "equals": _Operator(operator.eq),
    "nequals": _Operator(operator.ne, none_pattern_fails=False, none_value_fails=False),
    "iequals": _Operator(lambda value, pattern: value.lower() == pattern, _lowered),
    "contains": _Operator(operator.contains),
    "icontains": _Operator(lambda value, pattern: pattern in value.lower(), _lowered),
    "ncontains": _Operator(lambda value, pattern: pattern not in value),
    "incontains": _Operator(lambda value, pattern: pattern not in value.lower(), _lowered),
    "startswith": _Operator(lambda value, pattern: value.startswith(pattern)),
    "istartswith": _Operator(lambda value, pattern: value.lower().startswith(pattern), _lowered),
    "endswith": _Operator(lambda value, pattern: value.endswith(pattern)),
    "iendswith": _Operator(lambda value, pattern: value.lower().endswith(pattern), _lowered),
    "lessthan": _Operator(operator.lt, _as_is, decodes=False),
    "greaterthan": _Operator(operator.gt, _as_is, decodes=False),
    "timediff_lt": _Operator(lambda value, pattern: _age(value) < pattern, float, decodes=False),
    "timediff_gt": _Operator(lambda value, pattern: _age(value) > pattern, float, decodes=False),
    "exists": _Operator(
        lambda value, pattern: value is not None,
        _as_is,
        decodes=False,
        needs_pattern=False,
        none_pattern_fails=False,
    ),
    "nexists": _Operator(
        lambda value, pattern: value is None,
        _as_is,
        decodes=False,
        needs_pattern=False,
        none_pattern_fails=False,
        none_value_fails=False,
    ),
    "inside": _Operator(lambda value, pattern: value in pattern, none_value_fails=False),
    "ninside": _Operator(lambda value, pattern: value not in pattern, none_value_fails=False),
    SEARCH: _Operator(_never, _as_is, decodes=False),  # evaluated by _SearchCriterion
}
_SHORT_NAMES: Final = {
    **{"eq": "equals", "neq": "nequals", "ieq": "iequals", "lt": "lessthan", "gt": "greaterthan"},
    **{"td_lt": "timediff_lt", "td_gt": "timediff_gt", "in": "inside", "nin": "ninside"},
}
# StackStorm's criteria operators by name, long and short.
OPERATORS: Final[Mapping[str, _Operator]] = {
    **_OPERATORS,
    **{short: _OPERATORS[long] for short, long in _SHORT_NAMES.items()},
}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_LIMIT else text[: _REPR_LIMIT - 3] + "..."


class _Criterion:
    """One compiled ``key: {type, pattern}`` whose pattern was prepared at compile time."""

    __slots__ = (
        "decodes",
        "key",
        "lookup",
        "none_value_fails",
        "operator_name",
        "pattern",
        "source",
        "steps",
        "test",
    )

    def __init__(self, key: str, steps: tuple[Step, ...], operator_name: str, source: Any) -> None:
        spec = OPERATORS[operator_name]
        self.key = key
        self.steps = steps
        self.lookup = lookup_for(steps)
        self.operator_name = operator_name
        self.source = source
        self.pattern: Any = source
        self.test = spec.test
        self.decodes = spec.decodes
        self.none_value_fails = spec.none_value_fails

    def check(self, root: Any, render: Render | None) -> bool:
        """Tell whether the value at this key in ``root`` passes; never raises."""
        return self.compare(root, self.pattern)

    def compare(self, root: Any, pattern: Any) -> bool:
        """Tell whether the value at this key in ``root`` passes ``pattern``; never raises."""
        try:
            value = self.lookup(self.steps, root)
            if value is None:
                if self.none_value_fails:
                    return False
            elif self.decodes and type(value) is bytes:
                value = value.decode("utf-8")
            return self.test(value, pattern)
        except _DATA_ERRORS as error:
            logger.debug("Criterion %s does not match: %r", self.key, error)
            return False
        # Criteria come from packs and values from alerts: whatever either holds, an error while
        # comparing them is StackStorm's "no match", and must not stop the other rules.
        except Exception:
            logger.debug("Criterion %s does not match", self.key, exc_info=True)
            return False

    def describe_pattern(self, render: Render | None) -> str:
        return _short(self.source)

    def explain(self, root: Any, render: Render | None) -> str | None:
        """``"key: type pattern vs value"`` if this criterion fails on ``root``, else None."""
        if self.check(root, render):
            return None
        try:
            value = _short(self.lookup(self.steps, root))
        except _DATA_ERRORS as error:
            value = f"<key lookup failed: {error!r}>"
        return f"{self.key}: {self.operator_name} {self.describe_pattern(render)} vs {value}"


class _TemplatedCriterion(_Criterion):
    """A criterion whose pattern is a Jinja template, rendered on every evaluation."""

    __slots__ = ("none_pattern_fails", "prepare")

    def __init__(self, key: str, steps: tuple[Step, ...], operator_name: str, source: str) -> None:
        super().__init__(key, steps, operator_name, source)
        spec = OPERATORS[operator_name]
        self.prepare = spec.prepare
        self.none_pattern_fails = spec.none_pattern_fails

    def check(self, root: Any, render: Render | None) -> bool:
        pattern = self.rendered(render)
        return pattern is not _NO_PATTERN and self.compare(root, pattern)

    def rendered(self, render: Render | None) -> Any:
        """The pattern rendered and prepared, or _NO_PATTERN if that fails."""
        if render is None:
            return _NO_PATTERN
        try:
            pattern = render(self.source)
            if pattern is None:
                return _NO_PATTERN if self.none_pattern_fails else None
            return self.prepare(pattern)
        except Exception:  # the caller's renderer: any failure means no match
            logger.debug("Criterion %s: pattern %r fails", self.key, self.source, exc_info=True)
            return _NO_PATTERN

    def describe_pattern(self, render: Render | None) -> str:
        if render is None:
            return f"{_short(self.source)} (no renderer)"
        pattern = self.rendered(render)
        if pattern is _NO_PATTERN:
            return f"{_short(self.source)} (render failed)"
        return f"{_short(self.source)} rendered as {_short(getattr(pattern, 'pattern', pattern))}"


class _SearchCriterion(_Criterion):
    """``search``: item criteria applied to each element of a list (a mapping is a 1-list)."""

    __slots__ = ("every_criterion", "every_element", "items")

    def __init__(
        self,
        key: str,
        steps: tuple[Step, ...],
        pattern: Mapping[str, Any],
        condition: str,
        items: tuple[_Criterion, ...],
    ) -> None:
        super().__init__(key, steps, SEARCH, pattern)
        self.items = items
        self.every_element = condition in ("all", "all2any")
        self.every_criterion = condition in ("any", "all")

    def check(self, root: Any, render: Render | None) -> bool:
        try:
            return self.search(self.lookup(self.steps, root), render)
        except _DATA_ERRORS as error:
            logger.debug("Criterion %s does not match: %r", self.key, error)
            return False
        except Exception:
            logger.debug("Criterion %s does not match", self.key, exc_info=True)
            return False

    def search(self, value: Any, render: Render | None) -> bool:
        """Apply the item criteria to each element; ``condition`` says how many must pass."""
        if isinstance(value, dict):
            value = [value]
        for element in value:
            if self._element_matches(element, render) != self.every_element:
                return not self.every_element
        return self.every_element

    def _element_matches(self, element: Any, render: Render | None) -> bool:
        for item in self.items:
            if item.check(element, render) != self.every_criterion:
                return not self.every_criterion
        return self.every_criterion


class CompiledCriteria:
    """A rule's criteria, ready to match trigger payloads; safe to share between threads."""

    __slots__ = ("_criteria",)

    def __init__(self, criteria: tuple[_Criterion, ...]) -> None:
        self._criteria = criteria

    def matches(self, payload: Any, render: Render | None = None) -> bool:
        """Tell whether ``payload`` meets every criterion; ``render`` renders templated patterns."""
        criteria = self._criteria
        if not criteria:
            return True
        if not payload:
            return False
        for criterion in criteria:
            if not criterion.check(payload, render):
                break
        else:
            return True
        return False

    def explain(self, payload: Any, render: Render | None = None) -> str | None:
        """Describe the first criterion ``payload`` fails (for logs); None if it matches."""
        if self._criteria and not payload:
            return f"empty payload {_short(payload)} vs {len(self._criteria)} criteria"
        for criterion in self._criteria:
            failure = criterion.explain(payload, render)
            if failure is not None:
                return failure
        return None


def compile_criteria(criteria: Mapping[str, Any]) -> CompiledCriteria:
    """Check and prepare a rule's ``criteria``; CriteriaError names the first bad field."""
    return CompiledCriteria(_compile_all(criteria, TRIGGER_PREFIX, "criteria"))


def _compile_all(criteria: Any, prefix: str, where: str) -> tuple[_Criterion, ...]:
    if not isinstance(criteria, Mapping):
        raise CriteriaError(where, "must be a mapping of keys to criteria")
    return tuple(
        _compile_one(key, spec, prefix, f"{where}.{key}") for key, spec in criteria.items()
    )


def _compile_one(key: Any, spec: Any, prefix: str, where: str) -> _Criterion:
    if not isinstance(key, str):
        raise CriteriaError(where, "the key must be a string")
    try:
        steps = parse_key(key, prefix)
    except ValueError as error:
        raise CriteriaError(where, f"{key!r} is not a payload path ({error})") from None
    if not isinstance(spec, Mapping):
        raise CriteriaError(where, "must be a mapping with type and pattern")
    if spec.get("type") is None:
        raise CriteriaError(f"{where}.type", "is required (the operator)")
    operator_name = spec["type"].lower() if isinstance(spec["type"], str) else ""
    if operator_name not in OPERATORS:
        raise CriteriaError(f"{where}.type", f'"{spec["type"]}" is not a criteria operator')
    source = spec.get("pattern")
    if source is None and OPERATORS[operator_name].needs_pattern:
        raise CriteriaError(f"{where}.pattern", f'is required for operator "{operator_name}"')
    if operator_name == SEARCH:
        return _compile_search(key, steps, spec, where)
    if isinstance(source, str) and is_template(source):
        try:
            environment().parse(source)
        except TemplateError as error:
            message = f"{_short(source)} is not a valid template: {error}"
            raise CriteriaError(f"{where}.pattern", message) from None
        return _TemplatedCriterion(key, steps, operator_name, source)
    criterion = _Criterion(key, steps, operator_name, source)
    _prepare_static(criterion, OPERATORS[operator_name], f"{where}.pattern")
    return criterion


def _compile_search(
    key: str, steps: tuple[Step, ...], spec: Mapping[str, Any], where: str
) -> _Criterion:
    condition = spec.get("condition")
    if condition not in SEARCH_CONDITIONS:
        allowed = ", ".join(SEARCH_CONDITIONS)
        raise CriteriaError(f"{where}.condition", f"{condition!r} is not one of {allowed}")
    pattern = spec["pattern"]
    if not isinstance(pattern, Mapping):
        raise CriteriaError(f"{where}.pattern", 'must be a mapping of item criteria for "search"')
    items = _compile_all(pattern, ITEM_PREFIX, f"{where}.pattern")
    return _SearchCriterion(key, steps, pattern, condition, items)


def _prepare_static(criterion: _Criterion, spec: _Operator, where: str) -> None:
    try:
        criterion.pattern = spec.prepare(criterion.source)
    except _DATA_ERRORS as error:
        if spec.regex:
            message = f"{_short(criterion.source)} is not a valid regular expression: {error}"
            raise CriteriaError(where, message) from None
        # StackStorm accepts the rule and it never matches (the operator fails every time).
        logger.debug("Criterion %s can never match: %r", criterion.key, error)
        criterion.test = _never
