"""``email.send_email``: build a MIME message and send it through the configured SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid
from typing import Any

from st2common.runners.base_action import Action

SECURITY = ("none", "starttls", "ssl")


def addresses(value: str | list[str] | None) -> list[str]:
    """Return the addresses of a comma-separated string or a list."""
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [address for _, address in getaddresses(items) if address]


class SendEmail(Action):
    """Send one message; any SMTP error fails the execution with the server's answer."""

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.config.get("ca_file") or None)
        if not self.config.get("verify_tls", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        host = str(self.config.get("smtp_host") or "localhost")
        port = int(self.config.get("smtp_port") or 25)
        security = str(self.config.get("security") or "none")
        timeout = float(self.config.get("timeout") or 30)
        if security not in SECURITY:
            raise ValueError(f"security must be one of {', '.join(SECURITY)}, not {security!r}.")
        if security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=self._tls_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        if security == "starttls":
            client.starttls(context=self._tls_context())
            client.ehlo()
        username = self.config.get("username")
        if username:
            client.login(str(username), str(self.config.get("password") or ""))
        return client

    def run(
        self,
        to: str | list[str],
        subject: str,
        body: str = "",
        content_type: str = "plain",
        cc: str | list[str] | None = None,
        bcc: str | list[str] | None = None,
        sender: str | None = None,
    ) -> dict[str, Any]:
        recipients, copies, hidden = addresses(to), addresses(cc), addresses(bcc)
        if not recipients:
            raise ValueError("Give at least one recipient in to.")
        if content_type not in ("plain", "html"):
            raise ValueError(f"content_type must be plain or html, not {content_type!r}.")
        message = EmailMessage()
        message["From"] = sender or str(self.config.get("sender") or "stanley@localhost")
        message["To"] = ", ".join(recipients)
        if copies:
            message["Cc"] = ", ".join(copies)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid()
        message.set_content(body, subtype=content_type)
        everyone = recipients + copies + hidden
        try:
            with self._connect() as client:
                refused = client.send_message(message, to_addrs=everyone)
        except smtplib.SMTPAuthenticationError as error:
            raise RuntimeError(
                f"The SMTP server refused the login: {error.smtp_code} {error.smtp_error!r}"
            ) from None
        except (smtplib.SMTPException, OSError) as error:
            raise RuntimeError(f"Sending mail failed: {type(error).__name__}: {error}") from None
        if refused:
            raise RuntimeError(f"The SMTP server refused some recipients: {sorted(refused)}")
        return {"message_id": message["Message-ID"], "recipients": everyone, "subject": subject}
