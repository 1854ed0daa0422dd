"""PoundCake's own API answers go through typed models: unknown fields are refused, fields a
service leaves out stay out, and every field a service writes is declared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from poundcake.config import load_poundcake_config
from poundcake.remediation.alerts.models import Alert
from poundcake.remediation.api.app import create_app
from poundcake.remediation.api.schemas import (
    AlertDocument,
    AlertsPage,
    CabBody,
    CabDocument,
    EnabledBody,
    LoginBody,
    body,
    refusal,
)
from poundcake.remediation.cabs.definition import CAB_KEYS, parse_cab
from poundcake.remediation.tracking.trail import alert_document
from tests import factories


def _alert() -> Alert:
    return factories.alert(severity="critical", ends_at=None, resolved_at=None, state_reason=None)


def test_an_alert_document_is_exactly_the_declared_fields() -> None:
    document = alert_document(_alert())
    assert body(AlertDocument.model_validate(document)) == document
    assert list(body(AlertDocument.model_validate(document))) == list(document)


def test_a_field_no_model_declares_is_refused() -> None:
    document = {**alert_document(_alert()), "surprise": 1}
    with pytest.raises(pydantic.ValidationError, match="surprise"):
        AlertsPage.model_validate({"request_id": "r", "total": 1, "alerts": [document]})


def test_fields_a_service_leaves_out_stay_out() -> None:
    cab = parse_cab(
        {
            "name": "disk",
            "alert_name_pattern": "Disk.*",
            "steps": [{"name": "df", "action": "core.local", "parameters": {"cmd": "df"}}],
        }
    )
    document = cab.document()
    assert "expected_result" not in document["steps"][0]
    assert body(CabDocument.model_validate(document)) == document


def _openapi_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The ``paths`` of poundcake-api's OpenAPI document."""
    monkeypatch.setenv("POUNDCAKE_DATA_DIR", str(tmp_path))
    sessions = sessionmaker(bind=sa.create_engine("sqlite://"))
    app = create_app(load_poundcake_config(), sessions=sessions, enqueue=lambda _ids: None)
    paths: dict[str, Any] = app.openapi()["paths"]
    return paths


def test_the_openapi_document_shows_each_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _openapi_paths(tmp_path, monkeypatch)

    def answer(path: str, method: str, status: str = "200") -> str:
        content = paths[path][method]["responses"][status]["content"]
        return str(content["application/json"]["schema"]["$ref"]).rsplit("/", 1)[1]

    assert answer("/api/v1/alerts", "get") == "AlertsPage"
    assert answer("/api/v1/alerts/{alert_id}", "get") == "AlertAnswer"
    assert answer("/api/v1/requests/{trail_id}", "get") == "TrailAnswer"
    assert answer("/api/v1/cabs", "get") == "CabsAnswer"
    refused = paths["/api/v1/cabs/validate"]["post"]["responses"]["400"]["content"]
    either = refused["application/json"]["schema"]["anyOf"]
    assert {str(each["$ref"]).rsplit("/", 1)[1] for each in either} == {
        "ValidationAnswer",
        "ErrorAnswer",
    }
    assert answer("/api/v1/cabs/{name}", "put") == "ApplyAnswer"
    assert answer("/api/v1/webhook", "post", "202") == "WebhookAccepted"


def test_a_cab_body_is_read_into_its_model_before_parse_cab() -> None:
    sent = {"alert_name_pattern": "^Disk", "steps": [{"action": "core.local"}]}
    document = CabBody.model_validate(sent).document()
    assert document == sent
    assert parse_cab({**document, "name": "disk"}) == parse_cab({**sent, "name": "disk"})


@pytest.mark.parametrize(
    ("sent", "named"),
    [
        ({"steps": [{"action": "core.local", "bogus": 1}]}, "steps.0.bogus"),
        ({"steps": [{"action": "core.local"}], "enabled": "yes"}, "enabled"),
        ({"steps": [{"action": "core.local", "timeout_seconds": True}]}, "steps.0.timeout_seconds"),
        ({"steps": []}, "steps"),
        ({"steps": [{"action": "core.local"}], "colour": "red"}, "colour"),
    ],
)
def test_a_cab_body_of_the_wrong_shape_is_refused_naming_the_field(
    sent: dict[str, object], named: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        CabBody.model_validate({"alert_name_pattern": "^Disk", **sent})
    places = {".".join(str(part) for part in error["loc"]) for error in refused.value.errors()}
    assert any(place.startswith(named) for place in places), places


def test_the_openapi_document_shows_the_cab_request_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _openapi_paths(tmp_path, monkeypatch)
    put = paths["/api/v1/cabs/{name}"]["put"]["requestBody"]["content"]["application/json"]
    assert str(put["schema"]["$ref"]).endswith("/CabBody")
    posted = paths["/api/v1/cabs/validate"]["post"]["requestBody"]["content"]["application/json"]
    assert "CabBody" in str(posted["schema"])


def test_a_cab_body_takes_every_field_a_cab_file_may_have() -> None:
    """The API must not refuse a field the CAB files accept (guards and run safety included)."""
    assert set(CabBody.model_fields) == set(CAB_KEYS)


ENABLED_SHAPE = 'the body must be {"enabled": true} or {"enabled": false}'


@pytest.mark.parametrize(
    ("sent", "told"),
    [
        (None, ENABLED_SHAPE),
        ([True], ENABLED_SHAPE),
        ({}, ENABLED_SHAPE),
        ({"enabled": "no"}, ENABLED_SHAPE),
        ({"enabled": 1}, ENABLED_SHAPE),
        ({"enabled": True, "colour": "red"}, f'{ENABLED_SHAPE}, without "colour"'),
    ],
)
def test_a_ui_enabled_body_of_the_wrong_shape_is_refused_in_our_words(
    sent: object, told: str
) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        EnabledBody.model_validate(sent)
    assert refusal(refused.value, ENABLED_SHAPE, ENABLED_SHAPE) == told


def test_a_ui_enabled_body_is_read_strictly() -> None:
    assert EnabledBody.model_validate({"enabled": False}).enabled is False


@pytest.mark.parametrize(
    ("sent", "told"),
    [
        ("admin", "shape"),
        ({"username": "admin"}, "wrong"),
        ({"username": "admin", "password": 7}, "wrong"),
        ({"username": "admin", "password": "x", "remember": True}, 'shape, without "remember"'),
    ],
)
def test_a_login_body_of_the_wrong_shape_is_refused_in_our_words(sent: object, told: str) -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        LoginBody.model_validate(sent)
    assert refusal(refused.value, "shape", "wrong") == told


def test_a_login_body_keeps_its_password_out_of_its_repr() -> None:
    login = LoginBody.model_validate({"username": "admin", "password": "hunter2-secret"})
    assert (login.username, login.password) == ("admin", "hunter2-secret")
    assert "hunter2-secret" not in repr(login)
