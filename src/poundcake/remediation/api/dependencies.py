"""What poundcake-api routes receive: the application's state, a database session, the request id.

A route that writes commits before answering, so a 2xx always means committed; the session is
rolled back and closed when the request ends. Routes doing blocking database work are plain
``def`` functions (FastAPI runs them in its thread pool).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import PoundCakeConfig, Settings
from poundcake.remediation.api.auth import TokenChecker
from poundcake.remediation.api.background import DeliveryHandoff
from poundcake.remediation.api.calls import ApiCallRecorder, request_info
from poundcake.remediation.api.slots import TransactionSlots


@dataclass(frozen=True)
class ApiState:
    """Everything the routes share, built once by ``create_app``."""

    config: PoundCakeConfig
    sessions: sessionmaker[Session]
    webhook_auth: TokenChecker
    handoff: DeliveryHandoff
    recorder: ApiCallRecorder
    intake_slots: TransactionSlots

    @property
    def settings(self) -> Settings:
        """PoundCake's settings."""
        return self.config.settings


def get_api(request: Request) -> ApiState:
    """The application's :class:`ApiState`."""
    state: ApiState = request.app.state.poundcake
    return state


def get_session(request: Request) -> Iterator[Session]:
    """A session for this request; uncommitted work is rolled back at the end."""
    session = get_api(request).sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def get_request_id(request: Request) -> str:
    """This request's id (also in the ``X-Request-ID`` response header)."""
    return request_info(request).request_id


Api = Annotated[ApiState, Depends(get_api)]
Db = Annotated[Session, Depends(get_session)]
RequestId = Annotated[str, Depends(get_request_id)]
