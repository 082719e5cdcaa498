"""Runner processes on a target: an executable started on the target's kernel, spoken to one line at a time
over its stdin and stdout (the runner protocol is JSON lines; this layer relays lines and judges nothing).

The ops runner_start, runner_exchange and runner_stop run these functions in the guest agent or, for the
host, in the harness. A runner that names `preload` modules is forked from a fork server that imported them
(bpfcert.targets.forkserver). Stdlib only; subprocess, tempfile and the fork server are imported on first use
(guest start-up time).
"""

from __future__ import annotations

import atexit
import os
import select
import signal
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from typing import Any

    from bpfcert.targets.forkserver import Forked, ForkServer

MAX_LINE = 16 << 20  # a longer line without a newline is a runner fault, not something to buffer forever
STDERR_TAIL = 4000


class RunnerError(Exception):
    """A runner that did not answer: timed out, exited, or wrote an over-long line. It is stopped by then."""


class _Runner:
    def __init__(self, name: str, proc: subprocess.Popen[bytes] | Forked, stderr: Any) -> None:
        self.name = name
        self.proc = proc
        self.stderr = stderr
        self.buf = b""


_running: dict[int, _Runner] = {}
# fork servers by (interpreter and options, module, cwd, environment, preload); None: that one could not start
_servers: dict[tuple[Any, ...], ForkServer | None] = {}


def runner_start(
    argv: list[str], cwd: str | None = None, env: dict[str, str] | None = None, preload: list[str] | None = None
) -> dict[str, Any]:
    """Start `argv` in a session of its own (stderr to a temporary file); {"handle", "pid", "forked"}. With
    `preload` (argv `python [options] -m MODULE ARGS`), forked from a fork server that imported those modules, or
    started the usual way when that server cannot start (the runner then shows why, as it would anyway)."""
    import subprocess
    import tempfile

    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("argv must be a non-empty list of strings")
    if preload and ("-m" not in argv[1:-1] or not all(isinstance(m, str) for m in preload)):
        raise ValueError("preload needs argv PYTHON [OPTIONS] -m MODULE [ARGS] and module names")
    stderr = tempfile.TemporaryFile()  # noqa: SIM115 -- lives as long as the runner; closed in _finish
    full_env = None if env is None else {**os.environ, **env}
    proc: subprocess.Popen[bytes] | Forked | None = _forked(argv, cwd, full_env, preload, stderr) if preload else None
    forked = proc is not None
    try:
        if proc is None:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
            )
    except OSError as exc:
        stderr.close()
        raise RunnerError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
    _running[proc.pid] = _Runner(os.path.basename(argv[0]), proc, stderr)
    return {"handle": proc.pid, "pid": proc.pid, "forked": forked}


def _forked(
    argv: list[str], cwd: str | None, env: dict[str, str] | None, preload: list[str], stderr: Any
) -> Forked | None:
    """`argv` forked from its fork server (started on first use), or None if that server cannot start."""
    from bpfcert.targets.forkserver import ForkServer, ForkServerError

    at = argv.index("-m", 1)
    key = (tuple(argv[: at + 2]), cwd, tuple(sorted((env or {}).items())), tuple(preload))
    if key not in _servers:
        try:
            _servers[key] = ForkServer(argv[:at], argv[at + 1], cwd, env, preload)
        except ForkServerError:
            _servers[key] = None
    server = _servers[key]
    if server is None:
        return None
    try:
        return server.start(argv[at + 2 :], stderr.fileno())
    except ForkServerError:
        server.close()
        _servers[key] = None
        return None


def runner_exchange(handle: int, line: str, timeout: float = 30.0) -> dict[str, Any]:
    """Write `line` (a newline is added) and read the runner's next line within `timeout` s; {"line"}.

    A runner that exits, times out or writes more than MAX_LINE bytes without a newline is stopped and
    RunnerError says which, with its exit status and the tail of its stderr."""
    runner = _get(handle)
    assert runner.proc.stdin is not None and runner.proc.stdout is not None
    try:
        runner.proc.stdin.write(line.encode() + b"\n")
        runner.proc.stdin.flush()
    except BrokenPipeError:
        raise _fault(handle, "closed its input") from None
    fd = runner.proc.stdout.fileno()
    deadline = time.monotonic() + timeout
    while True:
        head, newline, rest = runner.buf.partition(b"\n")
        if newline:
            runner.buf = rest
            return {"line": head.decode("utf-8", "replace")}
        if len(runner.buf) > MAX_LINE:
            raise _fault(handle, f"wrote more than {MAX_LINE} bytes without a newline")
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise _fault(handle, f"did not answer within {timeout:g}s", grace=0.0)  # killed at the deadline
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise _fault(handle, "exited before answering")
        runner.buf += chunk


def runner_stop(handle: int, timeout: float = 5.0) -> dict[str, Any]:
    """Close the runner's stdin and wait `timeout` s for it to exit (then kill it); {"returncode", "stderr"}."""
    return _finish(_get(handle, take=True), timeout)


def _get(handle: int, *, take: bool = False) -> _Runner:
    """The running runner `handle`; with `take`, no longer listed as running."""
    runner = _running.pop(handle, None) if take else _running.get(handle)
    if runner is None:
        raise RunnerError(f"no running runner {handle}")
    return runner


def _fault(handle: int, what: str, grace: float = 0.5) -> RunnerError:
    """Stop the runner `handle` (given `grace` s to exit after its pipes close) and say what it did."""
    runner = _get(handle, take=True)
    outcome = _finish(runner, grace)
    tail = outcome["stderr"].strip().splitlines()[-1:] or ["nothing"]
    return RunnerError(
        f"runner {runner.name} (pid {handle}) {what}; exit status {outcome['returncode']}, stderr: {tail[0][:300]}"
    )


def _finish(runner: _Runner, timeout: float) -> dict[str, Any]:
    """Stop a runner: close its pipes, wait up to `timeout` s, kill what is left of its session, collect the
    tail of its stderr."""
    import contextlib
    import subprocess

    proc = runner.proc
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(BrokenPipeError):
                stream.close()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # the runner if it is still there, and any children it left
    proc.wait()
    runner.stderr.seek(0, os.SEEK_END)
    size = runner.stderr.tell()
    runner.stderr.seek(max(0, size - STDERR_TAIL))
    stderr = runner.stderr.read().decode("utf-8", "replace")
    runner.stderr.close()
    return {"returncode": proc.returncode, "stderr": stderr}


@atexit.register
def _stop_all() -> None:
    for handle in list(_running):
        _finish(_running.pop(handle), 0.0)
    for server in _servers.values():
        if server is not None:
            server.close()
    _servers.clear()
