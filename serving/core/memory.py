"""Give freed memory back to the system once a burst is over.

Decoding a burst of uploads allocates and frees many large buffers from several threads; glibc
keeps freed memory in per-thread arenas, so the process's resident size stays at its peak long
after the burst (the overload benchmark saw +60 % that never came back). ``malloc_trim`` returns
the free pages. It is called only when the server has gone idle after work, never under load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


_TRIM = _load_trim()


class IdleTrimmer:
    """``tick(busy)`` once a second: trims after the first idle tick that follows work."""

    def __init__(self, trim: Callable[[int], int] | None = _TRIM) -> None:
        self._trim = trim
        self._worked = False

    def tick(self, busy: bool) -> bool:
        """Returns whether it trimmed."""
        if busy:
            self._worked = True
            return False
        if not self._worked or self._trim is None:
            return False
        self._worked = False
        self._trim(0)
        return True
