"""The Execution API document: projections, falsy fields, secret masking, encoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from poundcake.engine.executions.documents import (
    Projection,
    Raw,
    RawJson,
    encode_documents,
    execution_document,
)
from poundcake.exceptions import ValidationError

CLI_LIST = "id,action.ref,context.user,status,start_timestamp,end_timestamp"
ACTION = {
    "ref": "default.login",
    "runner_type": "local-shell-cmd",
    "parameters": {"token": {"type": "string", "secret": True}, "user": {"type": "string"}},
    "output_schema": {"type": "object", "properties": {"session": {"secret": True}}},
}
RUNNER = {
    "name": "local-shell-cmd",
    "output_key": "stdout",
    "runner_parameters": {"sudo_password": {"type": "string", "secret": True}, "cmd": {}},
}


def row(*, raw: bool = True, **overrides: Any) -> dict[str, Any]:
    """Column values as a query returns them: JSON columns decoded, or as text (``raw``)."""
    values: dict[str, Any] = {
        "id": "6b0ada9bae430522e5172fb0",
        "action": "default.login",
        "action_snapshot": ACTION,
        "runner": RUNNER,
        "runner_type": "local-shell-cmd",
        "liveaction_id": "6b0ada9bae430522e5172fb1",
        "liveaction": {
            "id": "6b0ada9bae430522e5172fb1",
            "action": "default.login",
            "parameters": {"token": "s3cret", "sudo_password": "pw", "user": "bob"},
        },
        "status": "succeeded",
        "start_timestamp": datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC),
        "end_timestamp": datetime(2026, 11, 28, 10, 0, 1, 500000, tzinfo=UTC),
        "parameters": {"token": "s3cret", "sudo_password": "pw", "user": "bob"},
        "result": {"stdout": {"session": "abc", "greeting": "hi"}, "return_code": 0},
        "result_size": 64,
        "context": {"user": "st2admin", "pack": "default"},
        "context_user": "st2admin",
        "parent": None,
        "children": [],
        "log": [{"timestamp": "2026-11-28T10:00:00.000000Z", "status": "requested"}],
        "delay": None,
        "web_url": None,
        "rule": None,
        "trigger": None,
        "trigger_type": None,
        "trigger_instance": None,
    }
    values.update(overrides)
    json_columns = {
        "action_snapshot",
        "runner",
        "liveaction",
        "parameters",
        "result",
        "context",
        "children",
        "log",
        "rule",
        "trigger",
        "trigger_type",
        "trigger_instance",
    }
    if not raw:
        return values
    return {
        key: Raw(json.dumps(value)) if key in json_columns and value is not None else value
        for key, value in values.items()
    }


def test_raw_columns_read_json_as_text() -> None:
    projection = Projection.parse("result,status", None)
    raw = {column.key: column.type for column in projection.columns(raw=True)}
    plain = {column.key: column.type for column in projection.columns()}
    assert isinstance(raw["result"], RawJson)
    assert not isinstance(plain["result"], RawJson)
    assert not isinstance(raw["status"], RawJson)


def test_the_cli_list_reads_only_narrow_columns() -> None:
    projection = Projection.parse(CLI_LIST, None)
    assert set(projection.keys) == {
        "id",
        "action",
        "context_user",
        "status",
        "start_timestamp",
        "end_timestamp",
    }
    assert execution_document(row(), projection) == {
        "id": "6b0ada9bae430522e5172fb0",
        "action": {"ref": "default.login"},
        "context": {"user": "st2admin"},
        "status": "succeeded",
        "start_timestamp": "2026-11-28T10:00:00.000000Z",
        "end_timestamp": "2026-11-28T10:00:01.500000Z",
    }


def test_the_full_document_masks_secrets_and_leaves_out_falsy_fields() -> None:
    document = execution_document(row(), Projection.everything())
    assert document["parameters"] == {
        "token": "********",
        "sudo_password": "********",
        "user": "bob",
    }
    assert document["liveaction"]["parameters"] == document["parameters"]
    assert document["result"] == {
        "stdout": {"session": "********", "greeting": "hi"},
        "return_code": 0,
    }
    assert document["elapsed_seconds"] == 1.5
    assert document["action"] == ACTION
    assert document["runner"] == RUNNER
    for absent in ("parent", "children", "delay", "web_url", "rule", "trigger_instance"):
        assert absent not in document


@pytest.mark.parametrize("raw", [True, False])
def test_raw_and_decoded_columns_give_the_same_documents(raw: bool) -> None:
    for projection in (Projection.everything(), Projection.parse("result.stdout", None)):
        assert execution_document(row(raw=raw), projection) == execution_document(
            row(raw=not raw), projection
        )
    decoded_page = json.loads(encode_documents([row(raw=False)], Projection.everything()))
    assert decoded_page == [execution_document(row(), Projection.everything())]
    assert decoded_page[0]["parameters"]["token"] == "********"


def test_secrets_are_shown_when_asked_for() -> None:
    document = execution_document(row(), Projection.everything(), mask=False)
    assert document["parameters"]["token"] == "s3cret"
    assert document["result"]["stdout"]["session"] == "abc"


def test_an_execution_without_secrets_passes_stored_json_through() -> None:
    plain_action = {**ACTION, "parameters": {}, "output_schema": {}}
    plain_runner = {**RUNNER, "runner_parameters": {}}
    values = row(action_snapshot=plain_action, runner=plain_runner)
    projection = Projection.everything()
    fields = dict(projection.fields(values, mask=True))
    assert fields["parameters"] is values["parameters"]
    assert fields["result"] is values["result"]
    assert isinstance(fields["result"], Raw)


def test_encoded_pages_decode_to_the_same_documents() -> None:
    rows = [row(), row(id="6b0ada9bae430522e5172fb9", status="running", end_timestamp=None)]
    for projection in (
        Projection.everything(),
        Projection.parse(CLI_LIST, None),
        Projection.parse(None, "result,action,runner"),
        Projection.parse("result.stdout.greeting,parameters,log", None),
    ):
        encoded = json.loads(encode_documents(rows, projection))
        assert encoded == [execution_document(values, projection) for values in rows]
    running = json.loads(encode_documents(rows[1:], Projection.everything()))[0]
    assert "end_timestamp" not in running
    assert "elapsed_seconds" not in running


def test_dotted_names_project_like_mongodb() -> None:
    projection = Projection.parse("result.stdout.greeting,action.parameters,nothing.here", None)
    document = execution_document(row(), projection)
    assert document == {
        "id": "6b0ada9bae430522e5172fb0",
        "result": {"stdout": {"greeting": "hi"}},
        "action": {"parameters": ACTION["parameters"]},
    }
    whole_wins = Projection.parse("action.ref,action", None)
    assert execution_document(row(), whole_wins)["action"] == ACTION


def test_the_cli_get_list_with_duplicates_is_accepted() -> None:
    names = (
        "action.ref,action.runner_type,start_timestamp,end_timestamp,log,id,action.ref,"
        "context.user,parameters,status,start_timestamp,end_timestamp,log,result"
    )
    document = execution_document(row(), Projection.parse(names, None))
    assert document["action"] == {"ref": "default.login", "runner_type": "local-shell-cmd"}
    assert document["parameters"]["token"] == "********"
    assert set(document) == {
        "id",
        "action",
        "context",
        "parameters",
        "status",
        "start_timestamp",
        "end_timestamp",
        "log",
        "result",
    }


def test_exclusion_and_its_refusals() -> None:
    document = execution_document(row(), Projection.parse(None, "result,liveaction"))
    assert "result" not in document
    assert "liveaction" not in document
    assert "parameters" in document
    with pytest.raises(ValidationError, match="Invalid or unsupported exclude attribute"):
        Projection.parse(None, "nonsense")
    with pytest.raises(ValidationError, match="mutually exclusive"):
        Projection.parse("status", "result")


def test_raw_falsiness_matches_the_decoded_value() -> None:
    for text in ("{}", "[]", "null", '""', "0", "false", "{ }"):
        assert not Raw(text)
    for text in ('{"a": 1}', "[0]", '"x"', "1", "true"):
        assert Raw(text)
