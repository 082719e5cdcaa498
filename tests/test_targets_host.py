"""Target machinery without VMs: the agent protocol, fault classification, splat scanning, the host target and
map_targets' isolation of failing targets."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from typing import Any

import pytest

import bpfcert.targets as targets
from bpfcert.errors import TargetError
from bpfcert.targets import agent, vm


def run_agent(*requests: Any, faults: bool = False) -> list[dict[str, Any]]:
    lines = b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in requests)
    out = io.BytesIO()
    agent.serve(io.BytesIO(lines), out, faults=faults)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_agent_announces_ready_with_hello_then_answers_in_order() -> None:
    ready, first, second = run_agent({"id": 1, "op": "hello"}, {"id": 2, "op": "hello", "args": {}})
    assert ready["id"] == 0 and ready["ok"] and ready["result"]["ready"] is True
    assert ready["result"]["release"] == os.uname().release
    assert (first["id"], second["id"]) == (1, 2)
    assert first["result"] == {k: v for k, v in ready["result"].items() if k != "ready"}


def test_agent_reports_op_errors_and_carries_on() -> None:
    _, unknown, bad_args, bad_json, after = run_agent(
        {"id": 1, "op": "no-such-op"},
        {"id": 2, "op": "hello", "args": {"unexpected": 1}},
        b"{not json",
        {"id": 3, "op": "hello"},
    )
    assert unknown == {
        "id": 1,
        "ok": False,
        "error": {"type": "KeyError", "message": "\"unknown op 'no-such-op'\""},
    }
    assert bad_args["id"] == 2 and bad_args["error"]["type"] == "TypeError"
    assert (
        bad_json["id"] is None and bad_json["ok"] is False and "bad request" in bad_json["error"]["message"]
    )
    assert after["ok"] and after["id"] == 3


def test_agent_stops_at_shutdown() -> None:
    responses = run_agent({"id": 1, "op": "shutdown"}, {"id": 2, "op": "hello"})
    assert [r["id"] for r in responses] == [0, 1]


def test_fault_op_exists_only_with_the_test_flag() -> None:
    _, refused = run_agent({"id": 1, "op": "fault", "args": {"kind": "bogus"}})
    assert refused["error"]["type"] == "KeyError"
    _, unknown_kind = run_agent({"id": 1, "op": "fault", "args": {"kind": "bogus"}}, faults=True)
    assert unknown_kind["error"] == {"type": "ValueError", "message": "unknown fault kind 'bogus'"}


@pytest.mark.parametrize(
    ("console", "kind"),
    [
        ("Out of memory: Killed process 80 (python3)\nbpfcert-init: agent exited with status 137", "oom"),
        ("Kernel panic - not syncing: sysrq triggered crash", "panic"),
        ("bpfcert-init: agent exited with status 137", "agent-died"),
        ("nothing special", "timeout"),
    ],
)
def test_classify(console: str, kind: str) -> None:
    assert vm.classify(console, "timeout") == kind


def test_console_tail_reaches_back_to_the_fault_and_quotes_its_headline() -> None:
    boot = [f"[    0.{i:06d}] boot line {i}" for i in range(300)]
    panic = ["[    2.0] sysrq: Trigger a crash", "[    2.000001] Kernel panic - not syncing: sysrq triggered crash"]
    trace = [f"[    2.000002]  frame_{i}+0x1/0x2" for i in range(40)]
    tail, headline = vm.console_tail("\n".join([*boot, *panic, *trace, "[    2.1] ---[ end Kernel panic ]---"]))
    assert tail.splitlines()[0] == panic[1] and tail.splitlines()[-1].endswith("end Kernel panic ]---")
    assert headline == "Kernel panic - not syncing: sysrq triggered crash"
    oom = ["[ 3.0] Out of memory: Killed process 80 (python3)", "bpfcert-init: agent exited with status 137"]
    assert vm.console_tail("\n".join([*boot, *oom]))[1] == "Out of memory: Killed process 80 (python3)"
    tail, headline = vm.console_tail("\n".join(boot))
    assert tail.splitlines() == boot[-vm.CONSOLE_TAIL_LINES :] and headline == "boot line 299"
    assert vm.console_tail("") == ("", "")


def test_splat_lines_strip_prefixes_and_ignore_ordinary_lines() -> None:
    log = "\n".join(
        [
            "<4>[    1.234567] WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2",
            "[    2.000000] Call Trace:",
            "<6>[    2.1] virtio-pci 0000:00:02.0: DEBUG enabled",
            "BUG: KASAN: use-after-free in g",
            "Oops: 0000 [#1] SMP",
            "ordinary line",
        ]
    )
    assert vm.splat_lines(log) == [
        "WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2",
        "Call Trace:",
        "BUG: KASAN: use-after-free in g",
        "Oops: 0000 [#1] SMP",
    ]


def test_host_target_runs_ops_in_process() -> None:
    host = targets.open_target("host")
    try:
        assert host.info()["release"] == os.uname().release and host.info()["name"] == "host"
        assert host.call("hello")["release"] == os.uname().release
        with pytest.raises(TargetError) as err:
            host.call("no-such-op")
        assert err.value.kind == "op-failed"
        assert isinstance(host.splats(), list)
    finally:
        host.close()


class FakeTarget:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def info(self) -> dict[str, Any]:
        return {"name": self.name}

    def call(self, op: str, **args: Any) -> Any:
        return op

    def splats(self) -> list[str]:
        return []

    def close(self) -> None:
        self.log.append(f"closed {self.name}")


def test_map_targets_keeps_results_of_healthy_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    log: list[str] = []
    running = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def fake_open(name: str, accel: str = "auto", **options: Any) -> FakeTarget:
        if name == "6.1":
            raise TargetError("6.1: boot: agent not ready", "boot")
        return FakeTarget(name, log)

    def fn(target: targets.Target) -> str:
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        time.sleep(0.05)
        with lock:
            running["now"] -= 1
        if target.name == "6.12":
            raise TargetError("6.12: panic: guest panicked", "panic", "Kernel panic")
        return str(target.call("hello"))

    monkeypatch.setattr(targets, "open_target", fake_open)
    results = targets.map_targets(["host", "5.10", "6.1", "6.12", "7.2"], fn, jobs=2, progress=False)
    assert results["host"] == results["5.10"] == results["7.2"] == "hello"
    assert isinstance(results["6.1"], TargetError) and results["6.1"].kind == "boot"
    assert isinstance(results["6.12"], TargetError) and results["6.12"].console == "Kernel panic"
    assert sorted(log) == ["closed 5.10", "closed 6.12", "closed 7.2", "closed host"]
    assert running["peak"] <= 3  # two VM slots plus the host, which takes none


def test_default_jobs_is_at_least_two() -> None:
    assert targets.default_jobs() >= 2


def test_plugin_leaves_a_test_parametrizing_its_own_target_alone() -> None:
    from bpfcert.pytest_plugin import target_fixture

    own = [pytest.mark.parametrize(("section", "target"), [("a", "b")]).mark]
    own_list = [pytest.mark.parametrize(argnames=["x", "target"], argvalues=[(1, 2)]).mark]
    other = [pytest.mark.parametrize("kind", ["panic"]).mark]
    assert target_fixture(["section", "target"], own) is None
    assert target_fixture(["x", "target"], own_list) is None
    assert target_fixture(["target", "kind"], other) == "target"
    assert target_fixture(["target_outcome"], other) == "target_outcome"
    assert target_fixture(["kind"], other) is None
