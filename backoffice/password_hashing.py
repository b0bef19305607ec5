"""At most CAREBOX_PASSWORD_HASHES_AT_ONCE argon2 computations at a time in one process.

Each argon2 hash or verification holds its memory cost (7 MiB, backoffice/config.py; it was
19 MiB) while it runs, and glibc then keeps a block of that size in the thread's arena (its
mmap threshold rises to the largest block freed). A gthread worker whose 4 threads signed
people in so stayed 4 × 19 MiB larger, about 200 MB. One hash at a time, with blocks over
4 MiB mapped and unmapped on their own (`return_large_blocks`), it peaks one hash above its
resting size and goes back to it (issue 16 item 9, docs/deploy.md "Memory"). A sign-in
costs about 20 ms of CPU, so a queued one waits that long per sign-in ahead of it; the
login rate limit bounds how many can queue.

Hand-written because neither Flask-Security nor passlib bounds concurrent hashing: this
wraps the CryptContext Flask-Security built (security.pwd_context) and passes every other
call (identify, needs_update, …) through unchanged.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

M_MMAP_THRESHOLD = -3  # glibc's malloc.h
LARGE_BLOCK = 4 * 1024 * 1024


def return_large_blocks(threshold: int = LARGE_BLOCK) -> bool:
    """Have malloc map blocks over `threshold` on their own, so freeing one returns it to the
    system (a fixed threshold also stops glibc raising it). False where there is no glibc
    mallopt (musl's does nothing): memory then behaves as before, nothing breaks."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, threshold))


class OneHashAtATime:
    """`context` with its hash and verify calls behind a semaphore of `at_once` permits."""

    def __init__(self, context: Any, at_once: int) -> None:
        self.context = context
        self.gate = threading.BoundedSemaphore(max(1, at_once))

    def hash(self, *args, **kwargs):
        with self.gate:
            return self.context.hash(*args, **kwargs)

    def verify(self, *args, **kwargs):
        with self.gate:
            return self.context.verify(*args, **kwargs)

    def verify_and_update(self, *args, **kwargs):
        with self.gate:
            return self.context.verify_and_update(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.context, name)
