"""Sandboxed Jinja rendering for action parameters, rule parameters and criteria patterns.

StackStorm's semantics: ``StrictUndefined`` (an undefined variable fails the render),
``trim_blocks`` and ``lstrip_blocks``, a template that is exactly one expression (``"{{ x }}"``)
keeps the expression's type, and StackStorm's custom filters. The environment is sandboxed and
immutable (a template cannot change the lists and mappings it reads, such as an alert's labels):
templates come from pack authors, values from alerts and webhooks (CVE-2021-44657). The filters
are StackStorm's, shared with workflow expressions (:mod:`poundcake.engine.expression_functions`).

A shell command rendered from a trigger (:func:`render_shell_command`) shell-quotes the value of
every expression, so a payload value is one word of the command whatever characters it holds.
"""

from __future__ import annotations

import json
import re
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from functools import cache, lru_cache
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, meta, nodes, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment

from poundcake.engine import expression_functions
from poundcake.engine.expression_functions import NONE_MAGIC_VALUE
from poundcake.exceptions import ValidationError

# Templates are compiled once per distinct text: rules render the same ones over and over.
_COMPILED_LIMIT = 4096
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{\s*(.*?)\s*\}\}\s*$", re.DOTALL)


class RenderError(ValidationError):
    """A template could not be rendered (syntax error, undefined variable, sandbox refusal)."""


class LazyValue(ABC):
    """A value looked up only when a template uses it (datastore keys)."""

    @abstractmethod
    def _resolve(self) -> Any:
        """Return the value."""

    def _decrypted(self) -> Any:
        return self._resolve()

    def __str__(self) -> str:
        return str(self._resolve())


def _plain(value: Any) -> Any:
    return value._resolve() if isinstance(value, LazyValue) else value


@pass_context
def _decrypt_kv(context: Context, value: Any) -> Any:
    if isinstance(value, LazyValue):
        return value._decrypted()
    decrypt = context.get("decrypt_kv_value")
    if decrypt is None:
        raise RenderError("decrypt_kv: no datastore key is available here")
    return decrypt(value)


def _use_none(value: Any) -> Any:
    # A lone expression keeps its type here, so None stays None and the magic value that
    # StackStorm's use_none writes (and its parameter casting reads back) becomes None too.
    return None if value == NONE_MAGIC_VALUE else value


FILTERS: dict[str, Callable[..., Any]] = {
    **expression_functions.FILTERS,
    "to_complex": lambda value: value,
    "use_none": _use_none,
    "shell_quote": lambda value: _shell_word(value),
    "decrypt_kv": _decrypt_kv,
}


@cache
def environment() -> SandboxedEnvironment:
    """The one sandboxed Jinja environment, built on first use."""
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False
    )
    env.filters.update(FILTERS)
    return env


def _shell_word(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return shlex.quote("" if value is None else str(value))


@cache
def _shell_environment() -> SandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_shell_word,
    )
    env.filters.update(FILTERS)
    return env


@lru_cache(maxsize=_COMPILED_LIMIT)
def _shell_template(template: str) -> Template:
    return _shell_environment().from_string(template)


def render_shell_command(template: Any, context: Mapping[str, Any]) -> Any:
    """Render a shell command template; each ``{{ expression }}`` becomes one quoted word.

    ``echo {{ trigger.body.msg }}`` with ``msg = "hi; rm -rf /"`` gives ``echo 'hi; rm -rf /'``.
    A value that is not a string template is returned unchanged.
    """
    if not is_template(template):
        return template
    try:
        return _shell_template(template).render(**context)
    except TemplateError as error:
        raise RenderError(f"failed to render {template!r}: {error}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as error:
        raise RenderError(f"failed to render {template!r}: {error}") from None


def is_template(value: Any) -> bool:
    """Tell whether ``value`` is a string that contains Jinja syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def referenced_names(template: str) -> set[str]:
    """Return the top-level variable names a template uses."""
    try:
        return set(meta.find_undeclared_variables(environment().parse(template)))
    except TemplateError as error:
        raise RenderError(f"invalid template {template!r}: {error}") from None


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template inside ``value`` (strings, lists and dicts, recursively).

    Dict keys are rendered too, always to text, as StackStorm renders a whole object at once.
    """
    if isinstance(value, str):
        return render_string(value, context)
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, dict):
        return {
            _render_key(key, context): render_value(item, context) for key, item in value.items()
        }
    return value


def _render_key(key: Any, context: Mapping[str, Any]) -> Any:
    return str(render_string(key, context)) if isinstance(key, str) and is_template(key) else key


def render_string(template: str, context: Mapping[str, Any]) -> Any:
    """Render one template; a lone ``{{ expression }}`` keeps the expression's type."""
    if not is_template(template):
        return template
    try:
        expression = _one_expression(template)
        if expression is not None:
            result = expression(**context)
            if isinstance(result, Undefined):
                result._fail_with_undefined_error()
            return _plain(result)
        return _template(template).render(**context)
    except TemplateError as error:
        raise RenderError(f"failed to render {template!r}: {error}") from None
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, ArithmeticError) as error:
        raise RenderError(f"failed to render {template!r}: {error}") from None


@lru_cache(maxsize=_COMPILED_LIMIT)
def _one_expression(template: str) -> Any:
    """The compiled expression if ``template`` is exactly one ``{{ expression }}``, else None."""
    single = _SINGLE_EXPRESSION.match(template)
    if single and _is_one_expression(single.group(1)):
        return environment().compile_expression(single.group(1), undefined_to_none=False)
    return None


@lru_cache(maxsize=_COMPILED_LIMIT)
def _template(template: str) -> Template:
    return environment().from_string(template)


def _is_one_expression(source: str) -> bool:
    if "}}" in source or "{{" in source:
        return False
    try:
        parsed = environment().parse("{{ " + source + " }}")
    except TemplateError:
        return False
    body = parsed.body
    return len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1
