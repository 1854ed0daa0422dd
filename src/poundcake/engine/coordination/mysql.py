"""tooz's MySQL driver with group membership, for MariaDB as StackStorm's coordination backend.

tooz's own MySQL driver offers locks only (``GET_LOCK``, held by a connection, so a process that
dies releases its locks with its connection), opening a connection for every lock; ours keep a
few released connections for the next locks. StackStorm's service registry also needs groups,
so this driver keeps them in two tables of the coordination database, created when the driver
starts if they are missing: ``coordination_groups`` and ``coordination_members`` (the url's
user needs CREATE once; afterwards SELECT, INSERT, UPDATE and DELETE suffice). A member stays
listed while it heartbeats (tooz's heart thread, every few seconds); one that stops for
``membership_ttl`` seconds (a process killed with SIGKILL) drops out of the listing. Times are
the database server's, so hosts' clocks need not agree.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pymysql
from pymysql.cursors import Cursor
from tooz import ToozError, locking
from tooz.coordination import (
    CoordAsyncResult,
    GroupAlreadyExist,
    GroupNotCreated,
    MemberAlreadyExist,
    MemberNotJoined,
)
from tooz.drivers.mysql import MySQLDriver

from poundcake.engine.coordination.results import done

logger = logging.getLogger(__name__)

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS coordination_groups ("
    " group_id VARBINARY(255) NOT NULL PRIMARY KEY"
    ") ENGINE=InnoDB",
    "CREATE TABLE IF NOT EXISTS coordination_members ("
    " group_id VARBINARY(255) NOT NULL,"
    " member_id VARBINARY(255) NOT NULL,"
    " capabilities MEDIUMTEXT NOT NULL,"
    " expires_at DATETIME(6) NOT NULL,"
    " PRIMARY KEY (group_id, member_id)"
    ") ENGINE=InnoDB",
)
_DUPLICATE_KEY = 1062
_IDLE_LOCK_CONNECTIONS = 4


class PooledMySQLLock(locking.Lock):
    """MySQL's ``GET_LOCK`` on a connection of its driver's pool.

    The lock belongs to the connection, so a process that dies releases it; a released lock's
    connection serves the next lock instead of being closed, as tooz's own lock does.
    """

    def __init__(self, name: bytes, driver: MySQLGroupsDriver) -> None:
        super().__init__(name)
        self._driver = driver
        self._connection: pymysql.Connection[Cursor] | None = None

    def acquire(
        self, blocking: bool = True, shared: bool = False, timeout: int | None = None
    ) -> bool:
        """Take the lock; ``blocking`` waits (up to ``timeout`` seconds when given)."""
        if shared:
            raise ToozError("shared locks are not supported")
        if self._connection is not None:
            return False
        wait = (-1 if timeout is None else timeout) if blocking else 0
        connection = self._driver.lock_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT GET_LOCK(%s, %s)", (self.name, wait))
                row = cursor.fetchone()
        except pymysql.Error as error:
            connection.close()
            raise ToozError(f"taking lock {self.name!r} failed: {error}") from error
        if row is None or row[0] != 1:
            self._driver.lock_connection_done(connection)
            return False
        self._connection = connection
        return True

    def release(self) -> bool:
        """Release the lock and hand its connection back."""
        connection, self._connection = self._connection, None
        if connection is None:
            return False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (self.name,))
                cursor.fetchone()
        except pymysql.Error as error:
            connection.close()  # closing the connection releases the lock all the same
            raise ToozError(f"releasing lock {self.name!r} failed: {error}") from error
        self._driver.lock_connection_done(connection)
        return True


class MySQLGroupsDriver(MySQLDriver):
    """Locks from tooz's MySQL driver; groups and members in the coordination database."""

    def __init__(
        self, member_id: bytes, parsed_url: Any, options: Any, *, membership_ttl: float
    ) -> None:
        super().__init__(member_id, parsed_url, options)
        self.membership_ttl = membership_ttl
        self._guard = threading.Lock()
        self._idle: list[pymysql.Connection[Cursor]] = []
        self._idle_guard = threading.Lock()

    # tooz types the MySQL driver's locks as its own class; ours keeps their contract.
    def get_lock(self, name: bytes) -> PooledMySQLLock:  # type: ignore[override]
        """A ``GET_LOCK`` lock held on a connection kept for the next lock once released."""
        return PooledMySQLLock(name, self)

    def lock_connection(self) -> pymysql.Connection[Cursor]:
        """An idle lock connection, or a new one (connecting costs more than the lock)."""
        with self._idle_guard:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return MySQLDriver.get_connection(self._parsed_url, self._options)
        try:
            connection.ping(False)
        except pymysql.Error:
            connection.connect()
        return connection

    def lock_connection_done(self, connection: pymysql.Connection[Cursor]) -> None:
        """Keep a connection that holds no lock for the next one (a few at most)."""
        with self._idle_guard:
            if len(self._idle) < _IDLE_LOCK_CONNECTIONS:
                self._idle.append(connection)
                return
        connection.close()

    def _start(self) -> None:
        super()._start()
        self._conn.autocommit(True)
        with self._cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE()"
                " AND table_name IN ('coordination_groups', 'coordination_members')"
            )
            row = cursor.fetchone()
            if row is not None and row[0] == len(SCHEMA):
                return
            try:
                for statement in SCHEMA:
                    cursor.execute(statement)
            except pymysql.Error as error:
                raise ToozError(
                    "the tables coordination_groups and coordination_members are missing and "
                    f"this user cannot create them ({error.args[-1]}); start one engine process "
                    "once with a user that may, or grant CREATE on the coordination database"
                ) from None

    @contextmanager
    def _cursor(self) -> Iterator[Cursor]:
        with self._guard:
            try:
                self._conn.ping(False)
            except pymysql.Error:
                self._conn.connect()  # the server went away: open the connection again
            with self._conn.cursor() as cursor:
                yield cursor

    def _query(self, statement: str, arguments: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._cursor() as cursor:
            cursor.execute(statement, arguments)
            return list(cursor.fetchall())

    @contextmanager
    def _in_group(self, group_id: bytes) -> Iterator[Cursor]:
        """A cursor, once the group is known to exist (GroupNotCreated otherwise)."""
        with self._cursor() as cursor:
            cursor.execute("SELECT 1 FROM coordination_groups WHERE group_id = %s", (group_id,))
            if cursor.fetchone() is None:
                raise GroupNotCreated(group_id)
            yield cursor

    def create_group(self, group_id: bytes) -> CoordAsyncResult[None]:
        """Create an empty group; GroupAlreadyExist if it exists."""
        try:
            self._query("INSERT INTO coordination_groups (group_id) VALUES (%s)", (group_id,))
        except pymysql.IntegrityError as error:
            if error.args[0] == _DUPLICATE_KEY:
                raise GroupAlreadyExist(group_id) from None
            raise
        return done(None)

    def get_groups(self) -> CoordAsyncResult[list[bytes]]:
        """Every group, by id."""
        rows = self._query("SELECT group_id FROM coordination_groups ORDER BY group_id")
        return done([bytes(row[0]) for row in rows])

    def join_group(
        self, group_id: bytes, capabilities: Any | None = None
    ) -> CoordAsyncResult[None]:
        """Join as this member with ``capabilities`` (JSON); a lapsed membership is replaced."""
        text = json.dumps(capabilities if capabilities is not None else {}, default=str)
        with self._in_group(group_id) as cursor:
            cursor.execute(
                "DELETE FROM coordination_members WHERE group_id = %s AND member_id = %s"
                " AND expires_at <= NOW(6)",
                (group_id, self._member_id),
            )
            try:
                cursor.execute(
                    "INSERT INTO coordination_members"
                    " (group_id, member_id, capabilities, expires_at)"
                    " VALUES (%s, %s, %s, NOW(6) + INTERVAL %s MICROSECOND)",
                    (group_id, self._member_id, text, self._ttl_microseconds),
                )
            except pymysql.IntegrityError as error:
                if error.args[0] == _DUPLICATE_KEY:
                    raise MemberAlreadyExist(group_id, self._member_id) from None
                raise
        self._joined_groups.add(group_id)
        return done(None)

    def leave_group(self, group_id: bytes) -> CoordAsyncResult[None]:
        """Leave a group this member joined."""
        with self._in_group(group_id) as cursor:
            cursor.execute(
                "DELETE FROM coordination_members WHERE group_id = %s AND member_id = %s",
                (group_id, self._member_id),
            )
            left = cursor.rowcount
        self._joined_groups.discard(group_id)
        if not left:
            raise MemberNotJoined(group_id, self._member_id)
        return done(None)

    def get_members(self, group_id: bytes) -> CoordAsyncResult[set[bytes]]:
        """The members of a group whose heartbeat has not lapsed."""
        with self._in_group(group_id) as cursor:
            cursor.execute(
                "SELECT member_id FROM coordination_members"
                " WHERE group_id = %s AND expires_at > NOW(6)",
                (group_id,),
            )
            return done({bytes(row[0]) for row in cursor.fetchall()})

    def get_member_capabilities(
        self, group_id: bytes, member_id: bytes
    ) -> CoordAsyncResult[Any | None]:
        """What a live member said about itself when it joined."""
        with self._in_group(group_id) as cursor:
            cursor.execute(
                "SELECT capabilities FROM coordination_members"
                " WHERE group_id = %s AND member_id = %s AND expires_at > NOW(6)",
                (group_id, member_id),
            )
            row = cursor.fetchone()
        if row is None:
            raise MemberNotJoined(group_id, member_id)
        return done(json.loads(row[0]))

    def heartbeat(self) -> float:
        """Extend this member's memberships; drop members that lapsed long ago."""
        if self._joined_groups:
            self._query(
                "UPDATE coordination_members"
                " SET expires_at = NOW(6) + INTERVAL %s MICROSECOND WHERE member_id = %s",
                (self._ttl_microseconds, self._member_id),
            )
            self._query(
                "DELETE FROM coordination_members"
                " WHERE expires_at < NOW(6) - INTERVAL %s MICROSECOND",
                (self._ttl_microseconds * 10,),
            )
        # tooz's heart waits half of this before the next beat.
        return self.membership_ttl / 3

    @property
    def _ttl_microseconds(self) -> int:
        return int(self.membership_ttl * 1_000_000)

    def _stop(self) -> None:
        with self._idle_guard:
            idle, self._idle = self._idle, []
        for connection in idle:
            with suppress(pymysql.Error):
                connection.close()
        try:
            super()._stop()
        except pymysql.Error:
            logger.debug("Closing the coordination connection failed", exc_info=True)
