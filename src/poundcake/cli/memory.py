"""How a long-running process's C allocator hands large blocks back.

glibc serves a block of at least ``M_MMAP_THRESHOLD`` bytes with its own mapping, unmapped when
freed, but raises that threshold to the size of each such block freed (up to 32 MiB). After one
8 MB result, the next ones come from the heap of the thread that asked, and a thread's heap
keeps what was freed: each thread that ever held a copy of a large result keeps its pages, so
a process's resident memory grows with the number of threads that touched large results, not
with what it holds at once. Fixing the threshold keeps large blocks in their own mappings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 1024 * 1024
"""Blocks at least this large get a mapping of their own, returned to the system when freed."""


def return_large_blocks() -> bool:
    """Fix glibc's mmap threshold at :data:`LARGE_BLOCK_BYTES`; False where there is no glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))
    if not done:
        logger.debug("mallopt(M_MMAP_THRESHOLD) was refused")
    return done
