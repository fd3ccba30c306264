"""Problems the user can fix (bad option, unreachable server, unknown model).

The CLI prints them on one line and exits with status 2, never with a traceback.
"""

from __future__ import annotations


class LoadTestError(Exception):
    pass


class Unreachable(LoadTestError):
    """Nothing answered at the server's address."""
