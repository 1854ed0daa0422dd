"""The coordinator of an engine process, the singleton locks and the service registry.

``[coordination] url`` picks the backend, as in StackStorm: ``mysql://user:password@host/db``
(MariaDB: tooz's MySQL driver plus our group tables, :mod:`.mysql`), or none, which logs
StackStorm's warning and uses local-only locks and groups (:mod:`.local`). Any other scheme is
refused when the configuration is read (:func:`poundcake.config.load_st2_config`). With
``service_registry = True`` each process joins the group of its service (StackStorm's names:
``api``, ``actionrunner``, ``rulesengine`` ...) with StackStorm's capabilities, which
``st2 service-registry group list`` and ``member list`` show.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, urlsplit

import tooz
from tooz.coordination import CoordinationDriver, GroupAlreadyExist, GroupNotCreated

from poundcake.config import mysql_socket
from poundcake.config_sections import CoordinationSection
from poundcake.engine.coordination.local import LocalDriver
from poundcake.engine.coordination.mysql import MySQLGroupsDriver
from poundcake.exceptions import ConfigurationError, NotFoundError

logger = logging.getLogger(__name__)

URL_SETTING = "[coordination] url"
NO_BACKEND_WARNING = (
    "Coordination backend is not configured ([coordination] url). Code paths which use "
    "coordination service will use best effort approach and race conditions are possible: "
    "locks are local to this process and the service registry lists this process only."
)


def member_id() -> bytes:
    """This process's member id, as StackStorm forms it: ``<hostname>_<pid>``."""
    return f"{socket.gethostname()}_{os.getpid()}".encode()


def make_coordinator(section: CoordinationSection, *, member: bytes | None = None) -> Any:
    """Build (not start) the coordinator ``section`` configures."""
    member = member or member_id()
    if not section.url:
        logger.warning(NO_BACKEND_WARNING)
        return LocalDriver(member)
    scheme, _, rest = section.url.partition("://")
    # SQLAlchemy's spelling of the same database is accepted as well.
    parsed = urlsplit(f"mysql://{rest}" if scheme.lower() == "mysql+pymysql" else section.url)
    options = parse_qs(parsed.query)
    # As for [database] host: localhost is the server's Unix socket, as the mysql client takes it
    # (an account made @'localhost' does not match TCP when the server skips name resolution).
    if parsed.hostname in (None, "localhost") and "unix_socket" not in options:
        local = mysql_socket()
        if local:
            options["unix_socket"] = [local]
    return MySQLGroupsDriver(member, parsed, options, membership_ttl=float(section.lock_timeout))


def start_coordinator(section: CoordinationSection, *, member: bytes | None = None) -> Any:
    """Build and start the coordinator, with its heartbeat; refuse a backend that is down."""
    coordinator = make_coordinator(section, member=member)
    try:
        coordinator.start(start_heart=True)
    except tooz.ToozError as error:
        raise ConfigurationError(
            URL_SETTING, f"cannot reach the coordination backend: {_first_line(error)}"
        ) from None
    return coordinator


def stop_coordinator(coordinator: CoordinationDriver) -> None:
    """Leave every group and close the backend's connections."""
    try:
        coordinator.stop()
    except tooz.ToozError:
        logger.warning("Stopping the coordinator failed", exc_info=True)


def register_service(
    coordinator: CoordinationDriver, service: str, capabilities: Mapping[str, Any]
) -> None:
    """Join the service registry group ``service`` with StackStorm's capabilities."""
    group = service.encode()
    with suppress(GroupAlreadyExist):
        coordinator.create_group(group).get()
    described = {**capabilities, "hostname": socket.gethostname(), "pid": os.getpid()}
    coordinator.join_group(group, capabilities=described).get()
    logger.info("Joined service registry group %s", service)


@contextmanager
def singleton(coordinator: CoordinationDriver, name: str) -> Iterator[bool]:
    """Hold the lock ``name`` while the block runs if no other process holds it.

    Yields True when this process holds it and False when another one does (the block should
    then skip its work); never waits.
    """
    lock = coordinator.get_lock(name.encode())
    held = lock.acquire(blocking=False)
    try:
        yield bool(held)
    finally:
        if held:
            lock.release()


# MySQL's GET_LOCK takes names of at most 64 characters (MariaDB's more); longer ones are hashed.
_MAX_LOCK_NAME = 64


@contextmanager
def locked(coordinator: CoordinationDriver, name: str) -> Iterator[None]:
    """Hold the lock ``name`` while the block runs, waiting for it if another process holds it."""
    if len(name.encode()) > _MAX_LOCK_NAME:
        name = f"sha256:{hashlib.sha256(name.encode()).hexdigest()[:48]}"
    lock = coordinator.get_lock(name.encode())
    lock.acquire(blocking=True)
    try:
        yield
    finally:
        lock.release()


def registry_groups(coordinator: CoordinationDriver) -> list[str]:
    """The service registry's groups."""
    return [group.decode() for group in coordinator.get_groups().get()]


def registry_members(coordinator: CoordinationDriver, group: str) -> list[dict[str, Any]]:
    """The live members of a group with their capabilities, in StackStorm's shape."""
    group_id = group.encode()
    try:
        members = sorted(coordinator.get_members(group_id).get())
    except GroupNotCreated:
        raise NotFoundError(f'Group with ID "{group}" not found.') from None
    listed = []
    for member in members:
        try:
            capabilities = coordinator.get_member_capabilities(group_id, member).get()
        except tooz.coordination.MemberNotJoined:
            continue  # it left between the two questions
        listed.append(
            {"group_id": group, "member_id": member.decode(), "capabilities": capabilities}
        )
    return listed


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
