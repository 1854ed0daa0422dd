"""API tokens for the code an action runs, as StackStorm's runner container issues them.

StackStorm gives every action run a service token of the user who ran it
(``ST2_ACTION_AUTH_TOKEN``, with ``ST2_ACTION_API_URL``), so pack code can call the API with
st2client, and deletes it when the run ends. :class:`ExecutionTokens` issues such a token: a
service token of the execution's user whose metadata names the action and execution, living
no longer than the run may (its timeout and a minute, at most ``[auth] service_token_ttl``), so
one left behind by a runner that died expires soon. The runner revokes it when the run ends
(:func:`poundcake.engine.runners.base.action_api_access`).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.db.retry import in_transaction
from poundcake.engine.auth.models import TokenDB
from poundcake.engine.auth.service import hash_token, issue_token

logger = logging.getLogger(__name__)

# What a run may take beyond its timeout: killing it, then storing its result.
GRACE_SECONDS = 60


class ExecutionTokens:
    """Issues and revokes the tokens of action runs (the runners' ``ActionTokens``)."""

    def __init__(
        self, sessions: sessionmaker[Session], *, api_url: str, service_token_ttl: int
    ) -> None:
        self._sessions = sessions
        self._api_url = api_url
        self._service_token_ttl = service_token_ttl

    @property
    def api_url(self) -> str:
        """The API address the tokens are for."""
        return self._api_url

    def issue(self, *, user: str, execution_id: str, action_ref: str, ttl: float | None) -> str:
        """A new token of ``user`` for the run of ``execution_id``, which may take ``ttl``
        seconds (None: no limit, so the token lives ``service_token_ttl``)."""
        lifetime = self._service_token_ttl
        if ttl is not None:
            lifetime = min(int(ttl) + GRACE_SECONDS, lifetime)
        metadata = {
            "service": "actions_container",
            "action_name": action_ref,
            "execution_id": execution_id,
        }
        issued = in_transaction(
            self._sessions,
            lambda session: issue_token(
                session,
                user=user,
                ttl=lifetime,
                max_ttl=self._service_token_ttl,
                service=True,
                metadata=metadata,
            ),
        )
        return issued.token

    def revoke(self, token: str) -> None:
        """Delete the token; the run that held it has ended."""
        in_transaction(
            self._sessions,
            lambda session: session.execute(
                sa.delete(TokenDB).where(TokenDB.token_hash == hash_token(token))
            ),
        )
