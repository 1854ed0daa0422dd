"""Bearer tokens for the Alertmanager webhook.

Alertmanager sends what its ``http_config.authorization`` holds as ``Authorization: Bearer
<token>``. The tokens it may send come from ``POUNDCAKE_WEBHOOK_TOKENS`` (comma-separated) and
``POUNDCAKE_WEBHOOK_TOKEN_FILE`` (one per line, blank lines and ``#`` comments skipped), both
if both are set. With neither, one token is generated once into
``<data_dir>/secrets/webhook-token`` (mode 0600) and reused; ``poundcake`` commands print it with
:func:`ensure_webhook_token`. Tokens are read when the application is built: a change needs a
restart. Presented tokens are compared in constant time and never logged nor stored.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from poundcake.config import PLACEHOLDER_SECRETS, Settings
from poundcake.exceptions import ConfigurationError

SECRETS_DIR = "secrets"
TOKEN_FILE_NAME = "webhook-token"  # noqa: S105 - a file name
MISSING_TOKEN = "a bearer token is required (Authorization: Bearer <token>)"  # noqa: S105
INVALID_TOKEN = "the bearer token is not valid"  # noqa: S105 - messages, not secrets


def generated_token_path(settings: Settings) -> Path:
    """Where the generated token lives: ``<data_dir>/secrets/webhook-token``."""
    return settings.data_dir / SECRETS_DIR / TOKEN_FILE_NAME


def configured_tokens(settings: Settings) -> list[str]:
    """The tokens set by ``POUNDCAKE_WEBHOOK_TOKENS`` and ``POUNDCAKE_WEBHOOK_TOKEN_FILE``."""
    tokens: list[str] = []
    if settings.webhook_tokens is not None:
        raw = settings.webhook_tokens.get_secret_value()
        tokens.extend(token.strip() for token in raw.split(",") if token.strip())
    if settings.webhook_token_file is not None:
        path = settings.webhook_token_file.expanduser()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise ConfigurationError(
                "POUNDCAKE_WEBHOOK_TOKEN_FILE", f"cannot read {path} ({error.strerror})"
            ) from None
        from_file = [line.strip() for line in lines]
        tokens.extend(line for line in from_file if line and not line.startswith("#"))
        if not any(line and not line.startswith("#") for line in from_file):
            raise ConfigurationError("POUNDCAKE_WEBHOOK_TOKEN_FILE", f"{path} holds no token")
    if settings.environment == "production":
        for token in tokens:
            if token.lower() in PLACEHOLDER_SECRETS:
                raise ConfigurationError(
                    "POUNDCAKE_WEBHOOK_TOKENS", "a webhook token is a placeholder"
                )
    return tokens


def webhook_tokens(settings: Settings) -> frozenset[str]:
    """Every token the webhook accepts (generating one when none is configured)."""
    tokens = configured_tokens(settings)
    if tokens:
        return frozenset(tokens)
    return frozenset({ensure_webhook_token(settings)})


def ensure_webhook_token(settings: Settings) -> str:
    """A token Alertmanager can use: the first configured one, else the generated one (made
    on first use)."""
    tokens = configured_tokens(settings)
    if tokens:
        return tokens[0]
    return _generated_token(generated_token_path(settings))


def _read_token(path: Path) -> str:
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ConfigurationError(
            "POUNDCAKE_DATA_DIR", f"{path} is empty; delete it to generate a new webhook token"
        )
    return token


def _generated_token(path: Path) -> str:
    try:
        return _read_token(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise ConfigurationError(
            "POUNDCAKE_DATA_DIR", f"cannot read {path} ({error.strerror})"
        ) from None
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        # Written whole under a temporary name, then linked into place: a concurrent starter
        # either wins the link or reads the winner's complete file.
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
            os.link(draft, path)
        except FileExistsError:
            return _read_token(path)
        finally:
            draft.unlink(missing_ok=True)
    except OSError as error:
        raise ConfigurationError(
            "POUNDCAKE_DATA_DIR", f"cannot create {path} ({error.strerror})"
        ) from None
    return token


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


class TokenChecker:
    """Checks an ``Authorization`` header against the accepted tokens in constant time."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self._tokens = tuple(token.encode("utf-8") for token in tokens)

    def problem(self, authorization: str | None) -> str | None:
        """Why the header does not authenticate (a message without the token), or None."""
        presented = bearer_token(authorization)
        if presented is None:
            return MISSING_TOKEN
        candidate = presented.encode("utf-8")
        matched = False
        for token in self._tokens:
            matched |= hmac.compare_digest(candidate, token)
        return None if matched else INVALID_TOKEN
