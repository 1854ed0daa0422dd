"""What the ``[rbac]`` settings may be while enforcement is not built.

Definitions load and read back with any settings, but a service that answers requests or runs
work must not pretend to enforce what it does not: with ``enable`` (or the two switches that act
only with it) on, every engine service refuses to start, naming the setting.
"""

from __future__ import annotations

from poundcake.config import St2Config
from poundcake.exceptions import ConfigurationError

NOT_BUILT = (
    "True is not supported yet: the engine's routes do not enforce RBAC permissions yet, so "
    "running with it would grant every user everything; set it to False (roles, assignments "
    "and st2-apply-rbac-definitions work without it)"
)


def refuse_unenforced_rbac(config: St2Config) -> None:
    """Raise :class:`ConfigurationError` if st2.conf asks for RBAC enforcement."""
    rbac = config.rbac
    for name, value in (
        ("enable", rbac.enable),
        ("permission_isolation", rbac.permission_isolation),
        ("sync_remote_groups", rbac.sync_remote_groups),
    ):
        if value:
            raise ConfigurationError(f"[rbac] {name} in {config.source}", NOT_BUILT)
