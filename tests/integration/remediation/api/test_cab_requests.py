"""CAB request bodies on a real poundcake-api (uvicorn, MariaDB scratch database): a body of the
wrong shape is a 400 naming the field, before anything is written or sent to the engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from poundcake.config import PoundCakeConfig
from tests.integration.support.intake import (
    AUTH,
    Intake,
    mariadb_config,
    running_intake,
)

CAB = {"alert_name_pattern": "^DiskFull$", "steps": [{"action": "core.local"}]}


@pytest.fixture
def api(tmp_path: Path, scratch_database: str) -> Iterator[Intake]:
    config: PoundCakeConfig = mariadb_config(
        tmp_path, scratch_database, POUNDCAKE_CABS_DIR=str(tmp_path / "cabs")
    )
    with running_intake(config) as running:
        yield running


def put_cab(api: Intake, name: str, body: Any) -> tuple[int, dict[str, Any]]:
    with api.client() as client:
        answer = client.put(f"/api/v1/cabs/{name}", json=body, headers=AUTH)
    return answer.status_code, answer.json()


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**CAB, "steps": [{"action": "core.local", "bogus": 1}]}, "steps.0.bogus"),
        ({**CAB, "enabled": "yes"}, "enabled"),
        ({**CAB, "steps": []}, "steps"),
        ({"steps": CAB["steps"]}, "alert_name_pattern"),
        (["not", "a", "cab"], "Input should be"),
        ({**CAB, "name": "other"}, 'name: "other" differs'),
        ({**CAB, "alert_name_pattern": "("}, "alert_name_pattern"),
    ],
)
def test_a_cab_body_that_is_not_a_cab_is_400_naming_the_field_and_writes_nothing(
    api: Intake, tmp_path: Path, body: Any, named: str
) -> None:
    status, answer = put_cab(api, "disk_full", body)
    assert status == 400, answer
    assert named in answer["error"], answer
    assert answer["request_id"]
    assert not (tmp_path / "cabs" / "disk_full.yaml").exists()
    with api.client() as client:
        assert client.get("/api/v1/cabs/disk_full", headers=AUTH).status_code == 404


def test_validate_refuses_a_body_of_the_wrong_shape_with_the_error_answer(api: Intake) -> None:
    with api.client() as client:
        answer = client.post(
            "/api/v1/cabs/validate", json={**CAB, "stop_on_first_failure": 1}, headers=AUTH
        )
    assert answer.status_code == 400
    assert set(answer.json()) == {"request_id", "error"}
    assert "stop_on_first_failure" in answer.json()["error"]
