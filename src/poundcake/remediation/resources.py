"""What a worker process uses: sessions on the database and the engine's API, made on first use.

Celery-free, so the pipeline's stages can take it; the Celery app
(:mod:`poundcake.remediation.tasks.app`) makes one per worker.
"""

from __future__ import annotations

import os
import threading

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from poundcake.config import PoundCakeConfig, Settings
from poundcake.db.engine import make_poundcake_engine
from poundcake.db.session import make_session_factory
from poundcake.exceptions import DatabaseUnavailableError
from poundcake.remediation.alertmanager_api import (
    AlertmanagerClient,
    AlertmanagerUnavailableError,
)
from poundcake.remediation.engine_api import EngineApi, EngineClient, EngineUnavailableError

# Errors after which the same work may succeed later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    EngineUnavailableError,
    AlertmanagerUnavailableError,
    DatabaseUnavailableError,
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
)


class WorkerResources:
    """The database sessions and engine client tasks use, made on first use in each process.

    A prefork worker forks its children after the app is built, and a connection must not cross
    a fork: nothing is opened before a task needs it, and it is made again in a new process.
    Tests pass their own ``sessions`` and ``engine_api``.
    """

    def __init__(
        self,
        config: PoundCakeConfig,
        *,
        sessions: sessionmaker[Session] | None = None,
        engine_api: EngineApi | None = None,
        pool_size: int = 4,
    ) -> None:
        self.config = config
        self._given_sessions = sessions
        self._given_engine_api = engine_api
        self._pool_size = pool_size
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._engine_api: EngineApi | None = None
        self._alertmanager: AlertmanagerClient | None = None
        self._alertmanager_pid: int | None = None

    @property
    def settings(self) -> Settings:
        """PoundCake's settings."""
        return self.config.settings

    def _ensure(self) -> tuple[sessionmaker[Session], EngineApi]:
        with self._lock:
            if self._pid != os.getpid() or self._sessions is None or self._engine_api is None:
                self._sessions = self._given_sessions or make_session_factory(
                    make_poundcake_engine(self.config, pool_size=self._pool_size, service=True)
                )
                self._engine_api = self._given_engine_api or EngineClient.from_settings(
                    self.settings
                )
                self._pid = os.getpid()
            return self._sessions, self._engine_api

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Sessions on PoundCake's database (which reaches the engine's tables too)."""
        return self._ensure()[0]

    @property
    def engine_api(self) -> EngineApi:
        """The engine's API."""
        return self._ensure()[1]

    @property
    def alertmanager(self) -> AlertmanagerClient | None:
        """Alertmanager's API (``POUNDCAKE_ALERTMANAGER_URL``), or None when not configured."""
        url = self.settings.alertmanager_url
        if url is None:
            return None
        with self._lock:
            if self._alertmanager is None or self._alertmanager_pid != os.getpid():
                self._alertmanager = AlertmanagerClient(url)
                self._alertmanager_pid = os.getpid()
            return self._alertmanager

    def close(self) -> None:
        """Close what this process opened."""
        with self._lock:
            if self._alertmanager is not None and self._alertmanager_pid == os.getpid():
                self._alertmanager.close()
            self._alertmanager = self._alertmanager_pid = None
            if self._pid != os.getpid():
                return
            if self._engine_api is not None and self._given_engine_api is None:
                self._engine_api.close()
            if self._sessions is not None and self._given_sessions is None:
                bind = self._sessions.kw.get("bind")
                if isinstance(bind, sa.Engine):
                    bind.dispose()
            self._pid = self._sessions = self._engine_api = None
