"""A Python runner for the fork server's tests (tests/test_forkserver.py): `python -S -m forkprobe ARGS`."""
