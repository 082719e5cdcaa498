"""Runners started from a fork server (runner.json `preload`, bpfcert.targets.forkserver), on every target: each
start is a new process in its own session that runs the module as `-m` would, with the runner's arguments, cwd,
environment and interpreter options, sees only what importing `preload` did, and exits with its own status (an
exit code, an uncaught exception, a kill), its atexit handlers run; a preload that cannot be imported falls back to
a cold start."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bpfcert.errors import BpfcertError, TargetError
from bpfcert.runners.discovery import load
from bpfcert.targets.target import Target

PROBE = Path(__file__).resolve().parent / "data" / "runners" / "forkprobe"


def start(
    target: Target, preload: list[str] | None, *args: str, cwd: Path = PROBE, env: dict[str, str] | None = None
) -> dict[str, Any]:
    extra = {"preload": preload} if preload is not None else {}
    argv = [target.python, "-S", "-m", "forkprobe", *args]
    started: dict[str, Any] = target.call(
        "runner_start", argv=argv, cwd=str(cwd), env={"FORKPROBE": "yes", **(env or {})}, **extra
    )
    return started


def info(target: Target, handle: int) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(target.call("runner_exchange", handle=handle, line="info")["line"])
    return reply


def test_a_forked_runner_is_a_new_process_running_its_module_as_main(target: Target) -> None:
    cold = start(target, None, "one", "--two")
    assert cold["forked"] is False
    try:
        want = info(target, cold["handle"])
    finally:
        target.call("runner_stop", handle=cold["handle"])
    seen = []
    for _ in range(3):
        started = start(target, ["forkprobe.pre"], "one", "--two")
        assert started["forked"] is True
        if target.name == "host":  # in its session as soon as it is started: a kill right away takes it down
            assert os.getsid(started["pid"]) == started["pid"]
        try:
            got = info(target, started["handle"])
        finally:
            stopped = target.call("runner_stop", handle=started["handle"])
        assert stopped["returncode"] == 0 and "atexit ran" in stopped["stderr"]
        assert got["pid"] == started["handle"] == got["sid"]  # its own session, which a kill takes down
        assert got["starts"] == [got["pid"]]  # no state from another start
        for key in ("argv", "cwd", "path0", "path", "name", "no_site", "env", "stdio_seekable", "fds", "wakeup_fd",
                    "handlers", "blocked"):  # fmt: skip
            assert got[key] == want[key], key
        seen.append(got)
    assert want["imported_in"] == want["pid"]
    assert len({g["imported_in"] for g in seen}) == 1 and seen[0]["imported_in"] not in {g["pid"] for g in seen}
    assert len({g["pid"] for g in seen}) == 3


def test_a_forked_runner_exits_with_its_own_status(target: Target) -> None:
    """As a cold start does: exit N, an uncaught exception (exit 1, after its atexit handlers), a kill."""
    for line, status in (("exit 3", "3"), ("raise", "1")):
        messages = []
        for preload in (None, ["forkprobe.pre"]):
            started = start(target, preload)
            with pytest.raises(TargetError) as exited:
                target.call("runner_exchange", handle=started["handle"], line=line)
            messages.append(str(exited.value).replace(str(started["pid"]), "PID"))
        assert f"exited before answering; exit status {status}" in messages[1]
        assert messages[0] == messages[1]
    started = start(target, ["forkprobe.pre"])
    with pytest.raises(TargetError, match=r"did not answer within 0.5s; exit status -9"):
        target.call("runner_exchange", handle=started["handle"], line="sleep", timeout=0.5)
    if target.name == "host":
        with pytest.raises(ProcessLookupError):
            os.kill(started["pid"], 0)


def test_a_forked_runner_has_the_sys_path_of_a_cold_start_under_safe_path(target: Target) -> None:
    """PYTHONSAFEPATH (as -P and -I): `-m` puts no cwd first, so neither may the server (whose sys.path[0] is
    then no folder of its own). Pythons before 3.11 ignore it: both put cwd first."""
    env = {"PYTHONSAFEPATH": "1", "PYTHONPATH": str(PROBE)}
    paths = []
    for preload in (None, ["forkprobe.pre"]):
        started = start(target, preload, cwd=PROBE / "forkprobe", env=env)
        assert started["forked"] is (preload is not None)
        try:
            paths.append(info(target, started["handle"])["path"])
        finally:
            target.call("runner_stop", handle=started["handle"])
    assert paths[0] == paths[1]


def test_a_preload_that_does_not_import_falls_back_to_a_cold_start(target: Target) -> None:
    started = start(target, ["forkprobe.missing"])
    assert started["forked"] is False
    try:
        assert info(target, started["handle"])["env"] == "yes"
    finally:
        target.call("runner_stop", handle=started["handle"])


def test_preload_needs_a_python_module_argv(tmp_path: Path) -> None:
    reference = load(Path(__file__).resolve().parent.parent / "runners" / "reference")
    assert reference.preload  # the reference runtime restarts from its fork server
    folder = tmp_path / "bad"
    folder.mkdir()
    runner = {
        "name": "bad",
        "description": "a runner",
        "argv": ["./run.sh"],
        "needs": [],
        "preload": ["json"],
        "claims": {"profiles": ["runtime-core"], "capabilities": []},
    }
    (folder / "runner.json").write_text(json.dumps(runner))
    with pytest.raises(BpfcertError, match="preload needs argv"):
        load(folder)


def test_a_runner_outlives_its_dead_fork_server_and_the_next_start_is_cold() -> None:
    """Host only (it kills the harness's own fork server): a runner forked before the server died is still
    stopped and reported (killed, as nobody can tell its status), and the next start falls back to a new
    interpreter."""
    import signal

    from bpfcert.targets import runner
    from bpfcert.targets.host import HostTarget

    target = HostTarget()
    started = start(target, ["forkprobe.pre"])
    assert started["forked"] is True
    other = start(target, ["forkprobe.pre"])  # stopped after the next start has given up on (closed) its server
    assert other["forked"] is True
    servers = [s for k, s in runner._servers.items() if k[0][-1] == "forkprobe" and s is not None and not s.dead]
    for server in servers:
        os.killpg(server._proc.pid, signal.SIGKILL)
        server._proc.wait()
    assert info(target, started["handle"])["env"] == "yes"
    assert target.call("runner_stop", handle=started["handle"])["returncode"] == -signal.SIGKILL
    again = start(target, ["forkprobe.pre"])
    try:
        assert again["forked"] is False and info(target, again["handle"])["env"] == "yes"
        assert target.call("runner_stop", handle=other["handle"])["returncode"] == -signal.SIGKILL
    finally:
        target.call("runner_stop", handle=again["handle"])


def test_a_runner_is_stopped_when_its_fork_server_hangs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Host only (it stops the harness's own fork server): a runner whose exit the server never reports is
    killed and reported killed once the server has been silent for READY_TIMEOUT, and the next start, which
    finds the server hung, kills it and is cold."""
    import signal
    import time

    from bpfcert.targets import forkserver, runner
    from bpfcert.targets.host import HostTarget

    monkeypatch.setattr(forkserver, "READY_TIMEOUT", 0.5)
    target = HostTarget()
    started = start(target, ["forkprobe.pre"], "hung")
    assert started["forked"] is True
    servers = [
        s for k, s in runner._servers.items() if k[0][-1] == "forkprobe" and s is not None and s._proc.poll() is None
    ]
    for server in servers:
        os.kill(server._proc.pid, signal.SIGSTOP)
    begun = time.monotonic()
    assert target.call("runner_stop", handle=started["handle"], timeout=0.2)["returncode"] == -signal.SIGKILL
    again = start(target, ["forkprobe.pre"], "hung")
    try:
        assert again["forked"] is False
        assert time.monotonic() - begun < 3.0
        assert all(server._proc.returncode == -signal.SIGKILL for server in servers)
    finally:
        target.call("runner_stop", handle=again["handle"])


def test_runner_start_refuses_preload_without_a_module_argv(target: Target) -> None:
    """The op checks what it is sent, as the loader checks runner.json: preload needs PYTHON [OPTIONS] -m MODULE."""
    for argv in ([target.python, "-S", "forkprobe"], [target.python, "-m"]):
        with pytest.raises(TargetError, match="preload needs argv"):
            target.call("runner_start", argv=argv, cwd=str(PROBE), preload=["forkprobe.pre"])
