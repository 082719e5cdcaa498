"""A fork server for Python runners: a runner whose runner.json names `preload` modules and starts as
`{python} [options] -m MODULE ARGS` is started by forking a Python process that imported those modules once,
instead of a new interpreter each time (multiprocessing's forkserver, for runner starts). In a 6.1 TCG guest a new
interpreter that imports the reference runtime starts in ~0.5 s, a fork in ~0.05 s (bench/bench_runner_start.py);
RT-CRS-001 restarts the runtime after each of its kills.

Each start is still a new process in a session of its own, with the runner's stdin, stdout and stderr, cwd,
environment and interpreter options, running MODULE as `__main__` as `-m` does; it exits through the interpreter's
own shutdown (atexit, flushing), and its exit status comes back from the server. Only what importing `preload` did
is shared: a runner names modules whose import defines things and does nothing else.

The agent side (`ForkServer`, one per interpreter, options, cwd, environment and preload) talks to the server over a
Unix socket pair: a request carries the child's three descriptors (SCM_RIGHTS) and its arguments, the reply its
pid; the server reports each child's exit. Run as a script (`python [options] forkserver.py FD PRELOAD MODULE`),
this module is the server. Stdlib only: it runs inside the guest.
"""

from __future__ import annotations

import contextlib
import os
import sys

# the server: its own folder is no place to import from; -m puts cwd first, unless -I, -P or PYTHONSAFEPATH (then
# neither is there)
if __name__ == "__main__" and not (sys.flags.isolated or getattr(sys.flags, "safe_path", False)):
    sys.path[0] = os.getcwd()

import json
import select
import signal
import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

READY_TIMEOUT = 60.0  # seconds for the server to import `preload` (a cold start's imports, under TCG)


class ForkServerError(Exception):
    """The server could not be started or stopped answering: the caller starts the runner the usual way."""


class Forked:
    """A runner forked by a ForkServer, as much of subprocess.Popen as bpfcert.targets.runner uses."""

    def __init__(self, server: ForkServer, pid: int, stdin: int, stdout: int) -> None:
        self.server, self.pid = server, pid
        self.stdin = os.fdopen(stdin, "wb")
        self.stdout = os.fdopen(stdout, "rb", buffering=0)
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        """The exit status (negative: the signal that killed it); subprocess.TimeoutExpired after `timeout` s.
        Without a timeout (a wait after a kill), a server silent for READY_TIMEOUT s is taken for hung."""
        import subprocess
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while self.returncode is None:
            self.returncode = self.server.exited.pop(self.pid, None)
            if self.returncode is not None:
                break
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0.0)
            if not self.server.receive(READY_TIMEOUT if left is None else left):
                if left is None:
                    self.server.dead = True
                continue
            if self.server.dead:  # nobody left to tell its status: make sure it is gone
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.returncode = -signal.SIGKILL
        return self.returncode


class ForkServer:
    """A server process that imported `preload` under `prefix` (the interpreter and its options), `cwd` and `env`;
    `start` forks runners from it."""

    def __init__(self, prefix: list[str], module: str, cwd: str | None, env: dict[str, str] | None,
                 preload: list[str]) -> None:  # fmt: skip
        import subprocess

        self.exited: dict[int, int] = {}
        self.dead = False
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        argv = [*prefix, os.path.abspath(__file__), str(theirs.fileno()), json.dumps(preload), module]
        try:  # stdin and stdout pipes, as a runner's: a child keeps the sys.stdin and sys.stdout made for them
            self._proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=cwd,
                env=env, pass_fds=[theirs.fileno()], start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise ForkServerError(f"cannot start {prefix[0]}: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        for pipe in (self._proc.stdin, self._proc.stdout):
            assert pipe is not None
            pipe.close()  # the server reads nothing and has no one to write to
        try:
            ready = self._reply(READY_TIMEOUT)
            if "error" in ready:
                raise ForkServerError(ready["error"])
        except ForkServerError:
            self.close()  # a server stuck importing is killed
            raise

    def start(self, args: list[str], stderr: int) -> Forked:
        """A runner forked with `args` after the module name, `stderr` its stderr; ForkServerError if the server
        is gone."""
        stdin_r, stdin_w = os.pipe()
        stdout_r, stdout_w = os.pipe()
        try:
            try:
                socket.send_fds(self._sock, [json.dumps(args).encode()], [stdin_r, stdout_w, stderr])
            except OSError as exc:
                self.dead = True
                raise ForkServerError(f"the fork server is gone: {exc.strerror or exc}") from None
            pid = self._reply(READY_TIMEOUT).get("pid")
            if not isinstance(pid, int):
                raise ForkServerError("the fork server did not fork")
        except BaseException:
            for fd in (stdin_w, stdout_r):
                os.close(fd)
            raise
        finally:
            os.close(stdin_r)
            os.close(stdout_w)
        return Forked(self, pid, stdin_w, stdout_r)

    def receive(self, timeout: float | None) -> dict[str, Any] | None:
        """The server's next message within `timeout` s (an exit is also filed under `exited`); None on timeout."""
        if self.dead:  # it exited, stopped answering or was closed: no more news of its runners
            return {"error": "the fork server is gone"}
        if not select.select([self._sock], [], [], timeout)[0]:
            return None
        data = self._sock.recv(1 << 16)
        if not data:
            self.dead = True
            return {"error": "the fork server exited"}
        message: dict[str, Any] = json.loads(data)
        if "exited" in message:
            self.exited[message["exited"]] = message["returncode"]
        return message

    def close(self) -> None:
        """Stop the server (its runners are stopped by their owner)."""
        import subprocess

        hung_or_gone, self.dead = self.dead, True
        self._sock.close()
        try:
            self._proc.wait(0.0 if hung_or_gone else 5.0)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait()

    def _reply(self, timeout: float) -> dict[str, Any]:
        """The next message that is not an exit report; ForkServerError if none comes in `timeout` s."""
        while True:
            message = self.receive(timeout)
            if message is None:
                self.dead = True
                raise ForkServerError(f"the fork server did not answer within {timeout:g}s")
            if message.get("error") and self.dead:
                raise ForkServerError(message["error"])
            if "exited" not in message:
                return message


# --- the server ---------------------------------------------------------------------------------------------


def serve(sock: socket.socket, preload: list[str]) -> list[str]:
    """Import `preload`, then fork a child per request and report each child's exit. Returns only in a child: the
    arguments it runs the module with (the server itself exits when its socket closes)."""
    import importlib

    try:
        for name in preload:
            importlib.import_module(name)
    except BaseException as exc:  # whatever a preload raises, the runner starts the usual way
        sock.send(json.dumps({"error": f"preload {name}: {type(exc).__name__}: {exc}"}).encode())
        raise SystemExit(1) from None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sock.send(b'{"ready": true}')
    while True:
        readable = select.select([sock.fileno(), wake_r], [], [])[0]
        if wake_r in readable:
            os.read(wake_r, 512)
            _report_exits(sock)
        if sock.fileno() not in readable:
            continue
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 3)
        if not data:
            raise SystemExit(0)
        in_session_r, in_session_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for fd in (wake_r, wake_w, in_session_r):
                os.close(fd)
            sock.close()
            os.setsid()
            os.close(in_session_w)  # now a kill of its session reaches it
            for target, fd in enumerate(fds):
                os.dup2(fd, target)
                os.close(fd)
            args: list[str] = json.loads(data)
            return args
        for fd in (*fds, in_session_w):
            os.close(fd)
        os.read(in_session_r, 1)  # end of file once the child has its session (or is gone): then its pid is killable
        os.close(in_session_r)
        sock.send(json.dumps({"pid": pid}).encode())


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)}).encode())


if __name__ == "__main__":
    import runpy

    _module = sys.argv[3]
    sys.argv = ["-m", *serve(socket.socket(fileno=int(sys.argv[1])), json.loads(sys.argv[2]))]
    runpy.run_module(_module, run_name="__main__", alter_sys=True)
