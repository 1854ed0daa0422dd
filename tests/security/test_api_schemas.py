"""Schemathesis against the running product: no generated request gets a 5xx.

The engine's st2api and st2auth and poundcake-api run as real processes on MariaDB (the
session's ``product``); their own OpenAPI documents drive the requests, valid and invalid ones
(schemathesis' positive and negative modes), sent with valid credentials so they get past the
auth layer. Every response is checked: not a server error, and of the content type and schema
the document declares for its status. Hypothesis is derandomized and the examples per operation
are bounded, so a CI run is repeatable.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

import httpx
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.e2e.stack import TOKEN, Product
from tests.integration.support.st2cli import PASSWORD, USER

EXAMPLES_PER_OPERATION = 6
EXAMPLES_PER_KNOWN_OBJECT = 3
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
# Not fuzzed: an event stream never ends by design; logging out would end the fuzzing login.
NOT_FUZZED = frozenset({"GET /v1/stream", "GET /ui/api/events", "DELETE /ui/session"})


def fuzz_operation(
    strategy: st.SearchStrategy[Case],
    session: requests.Session,
    headers: Mapping[str, str],
    examples: int,
) -> bool:
    """Send the operation's generated cases; raise on the first failed check; return whether
    any answer was a 2xx."""
    answered: list[int] = []

    @settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Case) -> None:
        response = case.call_and_validate(
            session=session, headers=dict(headers), checks=CHECKS, timeout=30
        )
        answered.append(response.status_code)

    check()
    return any(status < 300 for status in answered)


def fuzz(
    url: str,
    headers: Mapping[str, str],
    *,
    known: Mapping[str, list[str]] | None = None,
    cookies: Mapping[str, str] | None = None,
) -> tuple[list[str], set[str]]:
    """Fuzz every operation of the document at ``url``; return the failures found and the
    operations that answered 2xx at least once.

    Reads (GET) are also sent with the ``known`` identifiers (path parameter name -> values)
    of real objects, with generated query parameters; writes only get generated identifiers, so
    the product stays as the other tests expect it.
    """
    schema = schemathesis.openapi.from_url(url)
    session = requests.Session()
    session.cookies.update(dict(cookies or {}))
    failures: list[str] = []
    reached: set[str] = set()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, f"{url} documents no operation"
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if label in NOT_FUZZED:
            continue
        strategies = [
            (
                st.one_of(
                    operation.as_strategy(GenerationMode.POSITIVE),
                    operation.as_strategy(GenerationMode.NEGATIVE),
                ),
                EXAMPLES_PER_OPERATION,
            )
        ]
        if known and operation.method.upper() == "GET":
            strategies.extend(
                (operation.as_strategy(path_parameters=fixed), EXAMPLES_PER_KNOWN_OBJECT)
                for fixed in known_path_parameters(operation.path, known)
            )
        for strategy, examples in strategies:
            try:
                if fuzz_operation(strategy, session, headers, examples):
                    reached.add(label)
            except (AssertionError, FailureGroup, requests.RequestException) as error:
                failures.append(f"{label}: {error}")
    return failures, reached


def known_path_parameters(path: str, known: Mapping[str, list[str]]) -> list[dict[str, str]]:
    """Path parameters naming real objects, for a path with one parameter that ``known`` has."""
    names = re.findall(r"{(\w+)}", path)
    if len(names) != 1 or names[0] not in known:
        return []
    return [{names[0]: value} for value in known[names[0]]]


def test_engine_api(product: Product, known_ids: dict[str, list[str]]) -> None:
    headers = {"St2-Api-Key": product.api_key}
    failures, reached = fuzz(f"{product.engine.api_url}/openapi.json", headers, known=known_ids)
    assert not failures, "\n\n".join(failures)
    # Reads reached real objects, so their serialisation was exercised too.
    assert {
        "GET /v1/executions/{execution_id}",
        "GET /v1/executions/{execution_id}/output",
        "GET /v1/actions/{ref_or_id}",
        "GET /v1/keys/{name}",
        "GET /v1/triggerinstances/{instance_id}",
    } <= reached, sorted(reached)


def test_engine_auth(product: Product) -> None:
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    failures, reached = fuzz(
        f"{product.engine.auth_url}/v1/openapi.json", {"Authorization": f"Basic {basic}"}
    )
    assert not failures, "\n\n".join(failures)
    assert "POST /tokens" in reached


def test_poundcake_api(product: Product, known_ids: dict[str, list[str]]) -> None:
    login = httpx.post(
        f"{product.api_url}/ui/session", json={"username": USER, "password": PASSWORD}, timeout=30
    )
    assert login.status_code == 200, login.text
    failures, reached = fuzz(
        f"{product.api_url}/api/v1/openapi.json",
        {"Authorization": f"Bearer {TOKEN}"},
        known=known_ids,
        cookies=dict(login.cookies),
    )
    assert not failures, "\n\n".join(failures)
    assert {
        "GET /api/v1/requests/{trail_id}",
        "GET /api/v1/alerts/{alert_id}",
        "GET /api/v1/cabs/{name}",
        "GET /ui/api/alerts",
    } <= reached, sorted(reached)
