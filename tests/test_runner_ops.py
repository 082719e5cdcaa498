"""The runner ops on every target: a runner process started on the target's kernel, spoken to line by line,
and stopped; a runner that hangs, exits or prints garbage is reported as such and the target carries on."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bpfcert.errors import TargetError
from bpfcert.targets.target import Target

RUNNER = str(Path(__file__).resolve().parent / "data" / "runners" / "line_runner.sh")


def test_runner_answers_from_the_targets_kernel_and_stops_cleanly(target: Target) -> None:
    started = target.call("runner_start", argv=[RUNNER])
    handle = started["handle"]
    try:
        assert target.call("runner_exchange", handle=handle, line="release")["line"] == (
            f'{{"release": "{target.info().release}"}}'
        )
        assert target.call("runner_exchange", handle=handle, line="ping")["line"] == '{"echo": "ping"}'
        garbage = target.call("runner_exchange", handle=handle, line="garbage")["line"]
        assert garbage == "this is not JSON \x01"  # relayed as it came: judging lines is the protocol's job
    finally:
        stopped = target.call("runner_stop", handle=handle)
    assert stopped == {"returncode": 0, "stderr": ""}
    with pytest.raises(TargetError, match=f"no running runner {handle}"):
        target.call("runner_exchange", handle=handle, line="ping")


def test_runner_faults_are_reported_and_the_target_carries_on(target: Target) -> None:
    handle = target.call("runner_start", argv=[RUNNER])["handle"]
    with pytest.raises(TargetError) as exited:
        target.call("runner_exchange", handle=handle, line="exit 3")
    assert exited.value.kind == "op-failed"
    message = str(exited.value)
    assert "exited before answering; exit status 3" in message and "asked to exit with 3" in message

    handle = target.call("runner_start", argv=[RUNNER])["handle"]
    started = time.monotonic()
    with pytest.raises(TargetError, match=r"did not answer within 1s; exit status -9"):
        target.call("runner_exchange", handle=handle, line="hang", timeout=1)
    assert time.monotonic() - started < 10

    with pytest.raises(TargetError, match="cannot start /nonexistent/runner"):
        target.call("runner_start", argv=["/nonexistent/runner"])
    assert target.call("hello")["release"] == target.info().release


def test_runner_writing_an_endless_line_is_stopped(tmp_path: Path) -> None:
    """Host only (16 MiB through an emulated guest is slow): no newline after MAX_LINE bytes is a fault."""
    from bpfcert.targets.runner import MAX_LINE, RunnerError, runner_exchange, runner_start

    script = tmp_path / "endless.sh"
    script.write_text("#!/bin/sh\nread -r _\nexec tr '\\0' x < /dev/zero\n")
    script.chmod(0o755)
    handle = runner_start([str(script)])["handle"]
    with pytest.raises(RunnerError, match=f"wrote more than {MAX_LINE} bytes without a newline; exit status"):
        runner_exchange(handle, "go", timeout=30)


def _alive(pid: int) -> bool:
    """`pid` exists and is not a zombie (a killed orphan may wait a moment for its new parent to reap it)."""
    try:
        return not Path(f"/proc/{pid}/stat").read_text().rpartition(") ")[2].startswith("Z")
    except OSError:
        return False


def test_runner_stop_kills_a_runner_that_ignores_end_of_input(tmp_path: Path) -> None:
    """Host only: a runner that outlives its input is killed, with the children it left, after the timeout."""
    from bpfcert.targets.runner import runner_start, runner_stop

    pidfile = tmp_path / "child"
    script = tmp_path / "stubborn.sh"
    script.write_text(
        f"#!/bin/sh\nsleep 3600 &\necho $! > {pidfile}.tmp && mv {pidfile}.tmp {pidfile}\nexec sleep 3600\n"
    )
    script.chmod(0o755)
    handle = runner_start([str(script)])["handle"]
    deadline = time.monotonic() + 10
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    child = int(pidfile.read_text())
    started = time.monotonic()
    assert runner_stop(handle, timeout=0.2)["returncode"] == -9
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the runner's child outlived runner_stop"
