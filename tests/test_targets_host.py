"""Target machinery without VMs: the agent protocol, fault classification, splat scanning, the host target and
KRN-BOOT-001 (the scheduler: tests/test_targets_schedule.py)."""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pytest

import bpfcert.targets.target as targets
from bpfcert.errors import TargetError
from bpfcert.targets import agent, kernel_log
from bpfcert.targets.info import TargetInfo


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


def test_agent_reads_a_long_request_from_the_file_it_names(tmp_path: Any) -> None:
    """The host writes a request too long for the agent channel to a file the guest sees (vm.INLINE_REQUEST_BYTES);
    a file that cannot be read is a bad request, and the agent carries on."""
    from bpfcert.targets import vm

    cases = [["95" + "00" * 7, "ab" * 64]] * 40  # `exit`, with memory: longer than the channel should carry
    request = {"id": 1, "op": "isa_run", "args": {"cases": cases}}
    assert len(json.dumps(request)) > vm.INLINE_REQUEST_BYTES
    (tmp_path / "request-1.json").write_text(json.dumps(request))
    _, spilled, missing = run_agent({"id": 1, "op": "isa_run", "request_file": str(tmp_path / "request-1.json")},
                                    {"id": 2, "op": "hello", "request_file": str(tmp_path / "absent.json")})
    assert spilled["id"] == 1 and spilled["ok"] and len(spilled["result"]["outcomes"]) == 40, spilled
    assert missing["ok"] is False and "bad request" in missing["error"]["message"]


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
        ("BUG: kernel NULL pointer dereference\nOops: 0000 [#1] SMP\nbpfcert-init: agent exited (139)", "oops"),
        ("bpfcert-init: agent exited with status 137", "agent-died"),
        ("nothing special", "timeout"),
    ],
)
def test_diagnose_classifies(console: str, kind: str) -> None:
    assert kernel_log.diagnose(console, "timeout")[0] == kind


def test_diagnose_reaches_back_to_the_fault_and_quotes_its_line() -> None:
    boot = [f"[    0.{i:06d}] boot line {i}" for i in range(300)]
    panic = ["[    2.0] sysrq: Trigger a crash", "[    2.000001] Kernel panic - not syncing: sysrq triggered crash"]
    trace = [f"[    2.000002]  frame_{i}+0x1/0x2" for i in range(40)]
    end = "[    2.1] ---[ end Kernel panic ]---"
    _, headline, tail = kernel_log.diagnose("\n".join([*boot, *panic, *trace, end]), "x")
    assert tail.splitlines()[0] == panic[1] and tail.splitlines()[-1].endswith("end Kernel panic ]---")
    assert headline == "Kernel panic - not syncing: sysrq triggered crash"
    oom = ["[ 3.0] Out of memory: Killed process 80 (python3)", "bpfcert-init: agent exited with status 137"]
    assert kernel_log.diagnose("\n".join([*boot, *oom]), "x")[1] == "Out of memory: Killed process 80 (python3)"
    far = kernel_log.diagnose("\n".join(["Kernel panic - early", *boot]), "x")[2].splitlines()
    assert len(far) == kernel_log.CONSOLE_TAIL_MAX_LINES, "a fault line far back is not worth the whole console"
    kind, headline, tail = kernel_log.diagnose("\n".join(boot), "timeout")
    assert tail.splitlines() == boot[-kernel_log.CONSOLE_TAIL_LINES :] and headline == "boot line 299"
    assert kind == "timeout"
    assert kernel_log.diagnose("", "boot") == ("boot", "", "")


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
    assert kernel_log.splat_lines(log) == [
        "WARNING: CPU: 0 PID: 1 at mm/x.c:1 f+0x1/0x2",
        "Call Trace:",
        "BUG: KASAN: use-after-free in g",
        "Oops: 0000 [#1] SMP",
    ]


def test_host_target_runs_ops_in_process() -> None:
    host = targets.open_target("host")
    try:
        assert host.info().release == os.uname().release and host.info().name == "host"
        assert host.call("hello")["release"] == os.uname().release
        with pytest.raises(TargetError) as err:
            host.call("no-such-op")
        assert err.value.kind == "op-failed"
        assert isinstance(host.splats(), list)
    finally:
        host.close()


class FakeTarget:
    def __init__(self, name: str, log: list[str], release: str = "6.1.0-1-cloud-amd64") -> None:
        self.name = name
        self.log = log
        self.release = release

    def info(self) -> TargetInfo:
        return TargetInfo(self.name, "6.1.0-1-cloud-amd64", self.name, "6.1.1-1", None, "tcg", "x86_64", 2.5)

    def call(self, op: str, **args: Any) -> Any:
        if op == "hello" and self.release == "dead":
            raise TargetError(f"{self.name}: agent-died: agent channel closed during op 'hello'", "agent-died")
        return {"release": self.release} if op == "hello" else op

    def splats(self) -> list[str]:
        return []

    def close(self) -> None:
        self.log.append(f"closed {self.name}")


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


def test_krn_boot_001_fails_a_target_that_does_not_answer_as_itself() -> None:
    from bpfcert.checks.kernel import krn_boot_001
    from bpfcert.results import Status

    passed = krn_boot_001("6.1", FakeTarget("6.1", []))
    assert passed.status == Status.PASS and passed.message == "6.1.0-1-cloud-amd64 answers in 2.50 s (tcg)"
    assert passed.target == "6.1" and passed.evidence["boot_seconds"] == 2.5
    dead = krn_boot_001("6.1", FakeTarget("6.1", [], release="dead"))
    assert dead.status == Status.FAIL and dead.message.startswith("booted but its agent does not answer: 6.1: ")
    other = krn_boot_001("6.1", FakeTarget("6.1", [], release="5.10.0-46-cloud-amd64"))
    assert other.status == Status.FAIL
    assert other.message == "answers as 5.10.0-46-cloud-amd64, expected 6.1.0-1-cloud-amd64"
    failed = krn_boot_001("6.1", TargetError("6.1: panic: guest exited (console: Kernel panic)", "panic", "a\nb"))
    assert failed.status == Status.FAIL and failed.evidence == {"kind": "panic", "console_tail": ["a", "b"]}
