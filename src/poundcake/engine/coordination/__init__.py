"""Coordination between engine processes: locks for singletons and the service registry.

StackStorm's ``[coordination]``: tooz's MySQL driver (``GET_LOCK``) with the group membership
tooz's driver lacks (:mod:`.mysql`), or, with no url, local-only locks and groups (:mod:`.local`).
:mod:`.service` builds the coordinator a process uses.
"""

import warnings

# futurist, under tooz, imports eventlet when it is installed, as it is for pack code; the
# deprecation warnings of that import (eventlet's own, and cryptography's about the DSA keys of
# the dnspython module eventlet loads) say nothing about the engine.
warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
warnings.filterwarnings("ignore", message="DSA is deprecated", module="dns")
