"""Preloaded by the fork server: records which process imported it."""

import os

IMPORTED_IN = os.getpid()
STARTS: list[int] = []  # appended to by each run of __main__: a fresh process sees only its own
