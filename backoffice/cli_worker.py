"""What every long-running `carebox … --loop` worker shares: its log on stderr, and
SIGTERM / Ctrl-C that let it finish the work in hand and stop."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator


def log_to_stderr() -> None:
    """A worker's log is its output: retries, failures and, in development with no
    MAIL_SERVER, the mail itself (logged at INFO, which Python hides by default)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


@contextlib.contextmanager
def stop_on_signal() -> Iterator[threading.Event]:
    """Log to stderr; SIGTERM or Ctrl-C set the yielded event (the worker finishes what
    it holds, then stops) and a second Ctrl-C interrupts at once (KeyboardInterrupt).
    The previous handlers come back on the way out."""
    log_to_stderr()
    stop = threading.Event()

    def graceful(signum, frame):
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, graceful) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
