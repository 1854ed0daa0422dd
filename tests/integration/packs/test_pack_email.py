"""The bundled ``email`` pack through the real engine and ``st2`` CLI, sending to local SMTP
servers (aiosmtpd) over STARTTLS, implicit TLS and plain connections, with and without login."""

from __future__ import annotations

import email
import email.policy
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.integration.support.pack_actions import engine_api, run
from tests.integration.support.st2cli import (
    RunningEngine,
    St2,
    free_port,
    logged_in,
    running_engine,
)

USER_NAME, PASSWORD = "alerts@example.com", "smtp-pa55word"


@dataclass
class Mailbox:
    """The SMTP handler: keeps every envelope the server accepted."""

    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_DATA(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        assert isinstance(envelope.content, bytes)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def authenticate(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
) -> AuthResult:
    expected = (USER_NAME.encode(), PASSWORD.encode())
    valid = isinstance(data, LoginPassword) and (data.login, data.password) == expected
    return AuthResult(success=valid, handled=False)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@contextmanager
def smtp_server(mailbox: Mailbox, **options: Any) -> Iterator[int]:
    """Run an aiosmtpd server on a free loopback port; yield the port."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEngine]:
    with running_engine(tmp_path_factory.mktemp("pack-email")) as running:
        yield running


@pytest.fixture(scope="module")
def st2(engine: RunningEngine, tmp_path_factory: pytest.TempPathFactory) -> St2:
    return logged_in(engine, tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def api(engine: RunningEngine, st2: St2) -> Iterator[httpx.Client]:
    with engine_api(engine, st2) as client:
        yield client


def configure(api: httpx.Client, **values: Any) -> None:
    stored = api.put("/configs/email", json={"smtp_host": "localhost", **values})
    assert stored.status_code == 200, stored.text
    if "password" in values:
        assert stored.json()["values"]["password"] == "********"


def send(st2: St2, *parameters: str) -> dict[str, Any]:
    """Run email.send_email; the password never shows in what the CLI prints or the API returns."""
    return run(st2, "email.send_email", *parameters, secrets=[PASSWORD])


MESSAGE = (
    "to=ops@example.com,dev@example.com",
    "subject=Disk full on web-1 ✓",
    "body=Disk usage is 97 %.\nCleaned /var/tmp.",
    "cc=lead@example.com",
    "bcc=audit@example.com",
)


def test_starttls_with_login(
    st2: St2, api: httpx.Client, certificate: tuple[Path, Path], mailbox: Mailbox
) -> None:
    options = {"tls_context": server_context(certificate), "require_starttls": True}
    with smtp_server(mailbox, authenticator=authenticate, **options) as port:
        configure(
            api,
            smtp_port=port,
            security="starttls",
            username=USER_NAME,
            password=PASSWORD,
            sender="poundcake@example.com",
            ca_file=str(certificate[0]),
        )
        sent = send(st2, *MESSAGE)
        assert sent["status"] == "succeeded", sent["result"]
        assert sent["result"]["result"]["recipients"] == [
            "ops@example.com",
            "dev@example.com",
            "lead@example.com",
            "audit@example.com",
        ]
        [envelope] = mailbox.envelopes
        assert envelope.mail_from == "poundcake@example.com"
        assert envelope.rcpt_tos == sent["result"]["result"]["recipients"]
        message = mailbox.message()
        assert message["To"] == "ops@example.com, dev@example.com"
        assert message["Cc"] == "lead@example.com"
        assert message["Bcc"] is None
        assert message["Subject"] == "Disk full on web-1 ✓"
        assert message["Message-ID"] == sent["result"]["result"]["message_id"]
        # SMTP carries CRLF line ends.
        body = message.get_content().replace("\r\n", "\n")
        assert body == "Disk usage is 97 %.\nCleaned /var/tmp.\n"

        configure(
            api,
            smtp_port=port,
            security="starttls",
            username=USER_NAME,
            password="wrong-password",
            ca_file=str(certificate[0]),
        )
        refused = send(st2, "to=ops@example.com", "subject=x")
        assert refused["status"] == "failed"
        assert "The SMTP server refused the login: 535" in refused["result"]["stderr"]
        assert len(mailbox.envelopes) == 1


def test_implicit_tls_and_certificate_checks(
    st2: St2, api: httpx.Client, certificate: tuple[Path, Path], mailbox: Mailbox
) -> None:
    context = server_context(certificate)
    # aiosmtpd does not see that an implicit-TLS connection is encrypted: offer AUTH anyway.
    options = {"ssl_context": context, "auth_require_tls": False}
    with smtp_server(mailbox, authenticator=authenticate, **options) as port:
        configure(
            api,
            smtp_port=port,
            security="ssl",
            username=USER_NAME,
            password=PASSWORD,
            ca_file=str(certificate[0]),
        )
        sent = send(
            st2, "to=ops@example.com", "subject=Over TLS", "content_type=html", "body=<b>hi</b>"
        )
        assert sent["status"] == "succeeded", sent["result"]
        message = mailbox.message()
        assert message.get_content_type() == "text/html"
        assert message["From"] == "stanley@localhost"

        configure(api, smtp_port=port, security="ssl")
        untrusted = send(st2, "to=ops@example.com", "subject=x")
        assert untrusted["status"] == "failed"
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted["result"]["stderr"]
        assert len(mailbox.envelopes) == 1


def test_plain_smtp_and_unreachable_server(st2: St2, api: httpx.Client, mailbox: Mailbox) -> None:
    with smtp_server(mailbox) as port:
        configure(api, smtp_port=port)
        sent = send(st2, "to=ops@example.com", "subject=Plain", "sender=robot@example.com")
        assert sent["status"] == "succeeded", sent["result"]
        assert mailbox.envelopes[0].mail_from == "robot@example.com"
    configure(api, smtp_port=free_port())
    down = send(st2, "to=ops@example.com", "subject=x")
    assert down["status"] == "failed"
    assert "Sending mail failed: ConnectionRefusedError" in down["result"]["stderr"]


def test_no_secret_reached_the_engine_logs(engine: RunningEngine) -> None:
    """Runs last: the SMTP password configured above is in no service's log."""
    for service in engine.processes:
        assert PASSWORD not in engine.log(service), f"the password is in the {service} log"
