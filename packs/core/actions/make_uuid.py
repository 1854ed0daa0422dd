"""``core.uuid``: return a new time-based (uuid1) or random (uuid4) UUID as a string."""

from __future__ import annotations

import uuid

from st2common.runners.base_action import Action

MAKERS = {"uuid1": uuid.uuid1, "uuid4": uuid.uuid4}


class GenerateUUID(Action):
    """Make one UUID of the requested kind."""

    def run(self, uuid_type: str = "uuid4") -> str:
        maker = MAKERS.get(uuid_type)
        if maker is None:
            raise ValueError(f"uuid_type must be uuid1 or uuid4, not {uuid_type!r}")
        return str(maker())
