"""Which enabled rules an instance of their trigger matches, with compiled criteria.

Rules are read per batch (they change rarely, but a disabled rule must stop matching at once);
compiled criteria are kept across batches, keyed by the rule's id and its criteria, so a rule
is compiled again only when it changes. A backstop rule matches only when no standard rule on
the same trigger did.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from poundcake.engine.rules.criteria import CompiledCriteria, CriteriaError, compile_criteria
from poundcake.engine.rules.models import RuleDB

logger = logging.getLogger(__name__)

BACKSTOP = "backstop"
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class CandidateRule:
    """An enabled rule ready to evaluate."""

    rule: RuleDB
    criteria: CompiledCriteria | None  # None: the stored criteria do not compile
    backstop: bool


class CriteriaCache:
    """Compiled criteria by rule id and criteria text; safe to keep for a process's life."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, str], CompiledCriteria | None] = {}

    def candidate(self, rule: RuleDB) -> CandidateRule:
        """Return ``rule`` with its compiled criteria."""
        criteria = rule.criteria or {}
        key = (rule.id, json.dumps(criteria, sort_keys=True, default=str))
        if key not in self._compiled:
            if len(self._compiled) >= _CACHE_LIMIT:
                self._compiled.clear()
            try:
                self._compiled[key] = compile_criteria(criteria)
            except CriteriaError as error:
                logger.error("Rule %s never matches: invalid criteria (%s)", rule.ref, error)
                self._compiled[key] = None
        backstop = (rule.type or {}).get("ref") == BACKSTOP
        return CandidateRule(rule=rule, criteria=self._compiled[key], backstop=backstop)


def matching_rules(
    candidates: Iterable[CandidateRule],
    payload: Mapping[str, Any] | None,
    render: Callable[[str], Any] | None,
) -> list[RuleDB]:
    """Return the rules whose criteria ``payload`` matches; backstops only if no standard did."""
    standard: list[RuleDB] = []
    backstops: list[RuleDB] = []
    for candidate in candidates:
        if candidate.criteria is None:
            continue
        if candidate.criteria.matches(payload, render):
            (backstops if candidate.backstop else standard).append(candidate.rule)
        elif logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "Rule %s does not match: %s",
                candidate.rule.ref,
                candidate.criteria.explain(payload, render),
            )
    return standard or backstops
