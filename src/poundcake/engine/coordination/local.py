"""The coordinator without a backend: locks and groups that reach no further than this process.

StackStorm with no ``[coordination] url`` uses a no-op driver whose locks always succeed. Here the
locks are real but local: two threads of one process exclude each other, two processes do not.
Groups are kept in memory, so the service registry lists only what this process joined.
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar

from tooz import coordination, locking
from tooz.coordination import (
    CoordAsyncResult,
    GroupAlreadyExist,
    GroupNotCreated,
    MemberAlreadyExist,
    MemberNotJoined,
)

from poundcake.engine.coordination.results import done


class LocalLock(locking.Lock):
    """A named lock shared by every local coordinator of this process."""

    _locks: ClassVar[dict[bytes, threading.Lock]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: bytes) -> None:
        super().__init__(name)
        with self._guard:
            self._lock = self._locks.setdefault(name, threading.Lock())
        self._held = False

    def acquire(
        self, blocking: bool = True, shared: bool = False, timeout: int | None = None
    ) -> bool:
        """Take the lock; ``blocking=False`` answers at once, ``timeout`` waits that long."""
        if shared:
            raise coordination.ToozError("shared locks are not supported")
        wait = -1 if timeout is None else float(timeout)
        self._held = self._lock.acquire(blocking, wait if blocking else -1)
        return self._held

    def release(self) -> bool:
        """Release the lock if this object holds it."""
        if not self._held:
            return False
        self._held = False
        self._lock.release()
        return True


class LocalDriver(coordination.CoordinationDriver):
    """tooz's driver interface over in-process locks and groups."""

    def __init__(self, member_id: bytes) -> None:
        super().__init__(member_id, None, {})
        self._groups: dict[bytes, dict[bytes, Any]] = {}
        self._guard = threading.Lock()

    def get_lock(self, name: bytes) -> LocalLock:
        """A lock that excludes other threads of this process only."""
        return LocalLock(name)

    def create_group(self, group_id: bytes) -> CoordAsyncResult[None]:
        """Create an empty group."""
        with self._guard:
            if group_id in self._groups:
                raise GroupAlreadyExist(group_id)
            self._groups[group_id] = {}
        return done(None)

    def get_groups(self) -> CoordAsyncResult[list[bytes]]:
        """The groups created in this process."""
        with self._guard:
            return done(sorted(self._groups))

    def join_group(
        self, group_id: bytes, capabilities: Any | None = None
    ) -> CoordAsyncResult[None]:
        """Join a group as this member."""
        with self._guard:
            members = self._members(group_id)
            if self._member_id in members:
                raise MemberAlreadyExist(group_id, self._member_id)
            members[self._member_id] = capabilities
            self._joined_groups.add(group_id)
        return done(None)

    def leave_group(self, group_id: bytes) -> CoordAsyncResult[None]:
        """Leave a group this member joined."""
        with self._guard:
            members = self._members(group_id)
            if members.pop(self._member_id, None) is None:
                raise MemberNotJoined(group_id, self._member_id)
            self._joined_groups.discard(group_id)
        return done(None)

    def get_members(self, group_id: bytes) -> CoordAsyncResult[set[bytes]]:
        """The members of a group."""
        with self._guard:
            return done(set(self._members(group_id)))

    def get_member_capabilities(
        self, group_id: bytes, member_id: bytes
    ) -> CoordAsyncResult[Any | None]:
        """What a member said about itself when it joined."""
        with self._guard:
            members = self._members(group_id)
            if member_id not in members:
                raise MemberNotJoined(group_id, member_id)
            return done(members[member_id])

    def _members(self, group_id: bytes) -> dict[bytes, Any]:
        try:
            return self._groups[group_id]
        except KeyError:
            raise GroupNotCreated(group_id) from None
