"""What the ``[rbac]`` settings may be.

``enable`` (with ``backend = default``, st2-rbac-backend's name) turns enforcement on: every
st2api route checks StackStorm's permission, and st2stream serves administrators only.
``permission_isolation`` and ``sync_remote_groups`` are not built: a service must not pretend to
isolate or sync what it does not, so with either on every engine service refuses to start,
naming the setting."""

from __future__ import annotations

from poundcake.config import St2Config
from poundcake.exceptions import ConfigurationError

NOT_BUILT = {
    "permission_isolation": (
        "True is not supported yet: executions and rules are not isolated per user (every "
        "user with the permission sees every one); set it to False"
    ),
    "sync_remote_groups": (
        "True is not supported yet: no authentication backend here reports remote groups, so "
        "group-to-role mappings would never apply; set it to False"
    ),
}


NOOP_BACKEND = (
    "enable = True needs backend = default: StackStorm's noop backend would check nothing, "
    "so every user could still do everything"
)


def refuse_unenforced_rbac(config: St2Config) -> None:
    """Raise :class:`ConfigurationError` if st2.conf asks for an RBAC feature not built, or
    turns RBAC on with the backend that enforces nothing."""
    rbac = config.rbac
    if rbac.enable and rbac.backend != "default":
        raise ConfigurationError(f"[rbac] backend in {config.source}", NOOP_BACKEND)
    for name, value in (
        ("permission_isolation", rbac.permission_isolation),
        ("sync_remote_groups", rbac.sync_remote_groups),
    ):
        if value:
            raise ConfigurationError(f"[rbac] {name} in {config.source}", NOT_BUILT[name])
