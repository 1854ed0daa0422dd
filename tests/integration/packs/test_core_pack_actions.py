"""The bundled core pack's own scripts, run by the real runners as an execution would run them."""

from __future__ import annotations

import email
import email.policy
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml

from poundcake.engine.executions.states import ExecutionStatus
from poundcake.engine.packs.locations import BUNDLED_PACKS_DIR
from poundcake.engine.runners.base import RunnerOutcome, RunnerRequest
from poundcake.engine.runners.registry import runner_class
from poundcake.ids import new_id

CORE = BUNDLED_PACKS_DIR / "core"
FAKE_SENDMAIL = """\
#!/bin/sh
printf '%s\\n' "$@" > "$(dirname "$0")/arguments"
cat > "$(dirname "$0")/message.eml"
"""


def action_metadata(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((CORE / "actions" / f"{name}.yaml").read_text())
    return document


def run_core_action(name: str, **parameters: Any) -> RunnerOutcome:
    """Run a core action through its runner with the action's defaults filled in."""
    metadata = action_metadata(name)
    schema = metadata["parameters"]
    values = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    values.update(parameters)
    entry_point = CORE / "actions" / metadata["entry_point"]
    request = RunnerRequest(
        execution_id=new_id(),
        action_ref=f"core.{name}",
        pack="core",
        runner_type=metadata["runner_type"],
        entry_point=metadata["entry_point"],
        entry_point_path=entry_point,
        pack_path=CORE,
        action_parameters=values,
        parameter_schema=schema,
        timeout=60,
    )
    runner = runner_class(metadata["runner_type"])(request, lambda _kind, _data: None)
    runner.pre_run()
    outcome = runner.run()
    runner.post_run(outcome)
    return outcome


@pytest.fixture
def fake_sendmail(tmp_path: Path) -> Path:
    program = tmp_path / "fake-sendmail"
    program.write_text(FAKE_SENDMAIL)
    program.chmod(0o755)
    return program


def sent_message(fake_sendmail: Path) -> EmailMessage:
    raw = (fake_sendmail.parent / "message.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_sendmail_builds_a_mime_message_for_the_sendmail_binary(fake_sendmail: Path) -> None:
    outcome = run_core_action(
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="ops@example.com, dev@example.com",
        subject="Disk full on web-1: 95 % ✓",
        body="<p>Disk <b>full</b></p>\nSecond line ünïcode",
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert (fake_sendmail.parent / "arguments").read_text() == "-t\n"
    message = sent_message(fake_sendmail)
    assert message["From"] == "stanley"
    assert message["To"] == "ops@example.com, dev@example.com"
    assert message["Subject"] == "Disk full on web-1: 95 % ✓"
    assert message["Date"]
    assert message["MIME-Version"] == "1.0"
    assert message.get_content_type() == "text/html"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content() == "<p>Disk <b>full</b></p>\nSecond line ünïcode"


def test_sendmail_attaches_files(fake_sendmail: Path, tmp_path: Path) -> None:
    report = tmp_path / "daily report.txt"
    report.write_text("all good\n")
    binary = tmp_path / "dump.bin"
    binary.write_bytes(bytes(range(256)))
    outcome = run_core_action(
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="ops@example.com",
        subject="Reports",
        body="See attached.",
        content_type="text/plain",
        attachments=f"{report} , {binary}",
        **{"from": "robot@example.com"},
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    message = sent_message(fake_sendmail)
    assert message["From"] == "robot@example.com"
    assert message.get_content_type() == "multipart/mixed"
    body, text, data = list(message.iter_parts())
    assert body.get_content_type() == "text/plain"
    assert body.get_content() == "See attached."
    assert (text.get_filename(), text.get_content()) == ("daily report.txt", b"all good\n")
    assert (data.get_filename(), data.get_content()) == ("dump.bin", bytes(range(256)))


def test_sendmail_refuses_unreadable_attachments_and_header_injection(
    fake_sendmail: Path, tmp_path: Path
) -> None:
    missing = run_core_action(
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="ops@example.com",
        subject="s",
        body="b",
        attachments=str(tmp_path / "nope.txt"),
    )
    assert missing.status is ExecutionStatus.FAILED
    assert "cannot read the attachment" in missing.result["stderr"]
    injected = run_core_action(
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="ops@example.com",
        subject="hello\nBcc: everyone@example.com",
        body="b",
    )
    assert injected.status is ExecutionStatus.FAILED
    assert injected.result["return_code"] == 2
    assert not (fake_sendmail.parent / "message.eml").exists()


def test_sendmail_skips_an_empty_body_when_asked(fake_sendmail: Path) -> None:
    outcome = run_core_action(
        "sendmail",
        sendmail_binary=str(fake_sendmail),
        to="ops@example.com",
        subject="nothing",
        body="",
        send_empty_body=False,
    )
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert "no mail sent" in outcome.result["stdout"]
    assert not (fake_sendmail.parent / "message.eml").exists()


def test_sendmail_reports_a_missing_sendmail_binary(tmp_path: Path) -> None:
    outcome = run_core_action(
        "sendmail",
        sendmail_binary=str(tmp_path / "no-sendmail"),
        to="ops@example.com",
        subject="s",
        body="b",
    )
    assert outcome.status is ExecutionStatus.FAILED
    assert "is not an executable program" in outcome.result["stderr"]


@pytest.mark.parametrize(("kind", "version"), [("uuid1", 1), ("uuid4", 4)])
def test_uuid_returns_the_requested_kind(kind: str, version: int) -> None:
    outcome = run_core_action("uuid", uuid_type=kind)
    assert outcome.status is ExecutionStatus.SUCCEEDED, outcome.result
    assert uuid.UUID(outcome.result["result"]).version == version


def test_uuid_defaults_to_uuid4_and_refuses_other_kinds() -> None:
    outcome = run_core_action("uuid")
    assert uuid.UUID(outcome.result["result"]).version == 4
    refused = run_core_action("uuid", uuid_type="uuid5")
    assert refused.status is ExecutionStatus.FAILED
    assert "uuid_type must be uuid1 or uuid4" in str(refused.result)


def test_pause_sleeps_for_max_pause_or_a_random_part_of_it() -> None:
    fixed = run_core_action("pause", max_pause=1)
    assert fixed.status is ExecutionStatus.SUCCEEDED, fixed.result
    assert fixed.result["result"] == 1
    randomly = run_core_action("pause", max_pause=1, random=True)
    assert randomly.status is ExecutionStatus.SUCCEEDED, randomly.result
    assert randomly.result["result"] in (0, 1)
    negative = run_core_action("pause", max_pause=-1)
    assert negative.status is ExecutionStatus.FAILED
