"""What a chain's templates see, with StackStorm's names and precedence.

Task parameters render against the chain's parameters, then every finished task's result under
its task name (``{{ task1.stdout }}``), then the chain's variables (``vars`` and everything
published so far), then ``__results`` (all task results), ``st2kv``, ``action_context`` and
``config_context``; later names hide earlier ones. ``publish`` renders against the same names.
``vars`` render once, at the start, against the parameters and ``st2kv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from poundcake.engine.rendering import LazyValue, render_value
from poundcake.engine.runners.base import Datastore
from poundcake.engine.runners.chain.definition import ChainTask

RESULTS_KEY = "__results"


class DatastoreLookup(LazyValue):
    """``st2kv.system.<key>`` or ``st2kv.user.<key>``, read through the runner's datastore.

    A missing key renders as an empty string and secrets stay encrypted unless piped through
    ``decrypt_kv``, as in StackStorm.
    """

    def __init__(self, datastore: Datastore, scope: str, key: str = "") -> None:
        self._datastore = datastore
        self._scope = scope
        self._key = key

    def __getattr__(self, name: str) -> DatastoreLookup:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> DatastoreLookup:
        key = f"{self._key}.{name}" if self._key else name
        return DatastoreLookup(self._datastore, self._scope, key)

    def _lookup(self, decrypt: bool) -> Any:
        if not self._key:
            return ""
        value = self._datastore.get_value(
            self._key, local=False, scope=self._scope, decrypt=decrypt
        )
        return "" if value is None else value

    def _resolve(self) -> Any:
        return self._lookup(decrypt=False)

    def _decrypted(self) -> Any:
        return self._lookup(decrypt=True)


def datastore_variables(datastore: Datastore | None) -> dict[str, Any]:
    """The ``st2kv`` variable, when the runner has a datastore."""
    if datastore is None:
        return {}
    return {
        "st2kv": {
            "system": DatastoreLookup(datastore, "system"),
            "user": DatastoreLookup(datastore, "user"),
        }
    }


@dataclass
class ChainContext:
    """The state a chain's templates read: parameters, results, variables."""

    parameters: Mapping[str, Any]
    action_context: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    datastore: Mapping[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)

    def start(self, chain_vars: Mapping[str, Any]) -> None:
        """Render the chain's ``vars``; raises RenderError."""
        context = {**self.datastore, **self.parameters, "action_context": self.action_context}
        self.variables = dict(render_value(dict(chain_vars), context))

    def task_parameters(self, task: ChainTask) -> dict[str, Any]:
        """Render a task's parameters; raises RenderError."""
        return dict(render_value(task.parameters, self._names()))

    def record(self, task: ChainTask, result: Any) -> None:
        """Remember a finished task's result under its name."""
        self.results[task.name] = result

    def publish(self, task: ChainTask) -> dict[str, Any]:
        """Render a task's ``publish`` and add it to the variables; raises RenderError."""
        if not task.publish:
            return {}
        published = dict(render_value(task.publish, self._names()))
        self.variables.update(published)
        return published

    def _names(self) -> dict[str, Any]:
        return {
            **self.parameters,
            **self.results,
            **self.variables,
            RESULTS_KEY: dict(self.results),
            **self.datastore,
            "action_context": self.action_context,
            "config_context": self.config,
        }
