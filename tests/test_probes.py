"""bpfcert.targets.probes on the host kernel: real loads, checked against `bpftool feature probe -j` as an oracle."""

from __future__ import annotations

import functools
import json
import os
import shutil
import struct
import subprocess
import sys
from typing import Any

import pytest

from bpfcert import insn
from bpfcert.targets import bpf, probes

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="feature probes load programs: they need root")

BASIC_PROG_TYPES = ("socket_filter", "kprobe", "sched_cls", "xdp", "tracepoint", "cgroup_skb", "perf_event")
BASIC_MAP_TYPES = ("hash", "array", "percpu_array", "lru_hash", "prog_array", "perf_event_array", "ringbuf")
# bpftool 7.1 (libbpf 1.1) cannot probe these: they need a BTF attach target and it answers "no" without
# trying; bpfcert reaches the verifier and reports what it said. Compared for the other types only.
BPFTOOL_BLIND_PROG_TYPES = {"tracing", "ext", "lsm", "struct_ops"}


@functools.cache
def findings() -> dict[str, Any]:
    return probes.probe_kernel()


@functools.cache
def bpftool() -> dict[str, Any]:
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed")
    proc = subprocess.run(["bpftool", "feature", "probe", "-j"], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.skip(f"bpftool feature probe failed: {proc.stderr.strip()}")
    loaded: dict[str, Any] = json.loads(proc.stdout)
    return loaded


def test_basic_types_are_available_never_inconclusive() -> None:
    f = findings()
    for name in BASIC_PROG_TYPES:
        assert f["prog_types"][name]["status"] == "available", name
    for name in BASIC_MAP_TYPES:
        assert f["map_types"][name]["status"] == "available", name


def test_prog_types_agree_with_bpftool() -> None:
    ours = findings()["prog_types"]
    theirs = bpftool()["program_types"]
    compared = 0
    for key, has in theirs.items():
        name = key.removeprefix("have_").removesuffix("_prog_type")
        if name in BPFTOOL_BLIND_PROG_TYPES:
            continue
        assert (ours[name]["status"] == "available") == has, (name, ours[name], has)
        compared += 1
    assert compared >= 25


def test_map_types_agree_with_bpftool() -> None:
    ours = findings()["map_types"]
    theirs = bpftool()["map_types"]
    for key, has in theirs.items():
        name = key.removeprefix("have_").removesuffix("_map_type")
        assert (ours[name]["status"] == "available") == has, (name, ours[name], has)
    assert len(theirs) >= 25


def test_helpers_are_read_from_the_verifier_log_not_bpftool() -> None:
    """bpftool 7.1's per-type helper lists are not an oracle on kernels >= 6.1: libbpf 1.1 does not know the
    verifier message "program of this type cannot use helper", so it lists every helper for every type.
    Instead: helpers every kernel gives these types must be available, and ones reserved to other program
    types must be "not allowed", with nothing inconclusive; names are the manifests' (bpf_ prefix)."""
    helpers = findings()["helpers"]
    by_type = helpers["by_prog_type"]
    assert set(by_type) == set(probes.HELPER_PROG_TYPES)
    xdp, sched_cls, kprobe = by_type["xdp"], by_type["sched_cls"], by_type["kprobe"]
    known = len(bpf.HELPER_NAMES) - 1 - len(helpers["missing"])
    for group in (xdp, sched_cls, kprobe):
        assert {"bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_ktime_get_ns", "bpf_tail_call"} <= set(
            group["available"]
        )
        assert group["inconclusive"] == {}
        assert len(group["available"]) + len(group["not_allowed"]) == known
    assert "bpf_xdp_adjust_head" in xdp["available"] and "bpf_xdp_adjust_head" in sched_cls["not_allowed"]
    assert "bpf_skb_store_bytes" in sched_cls["available"] and "bpf_skb_store_bytes" in xdp["not_allowed"]
    assert "bpf_get_current_pid_tgid" in kprobe["available"] and "bpf_redirect" in kprobe["not_allowed"]
    assert "bpf_override_return" not in xdp["available"]


def test_not_allowed_for_the_type_is_told_apart_from_missing_from_the_kernel() -> None:
    prober = probes.Prober()
    adjust_head = bpf.HELPER_NAMES.index("xdp_adjust_head")
    not_allowed = prober.probe_helper("sched_cls", adjust_head)
    assert not_allowed.status == probes.NOT_ALLOWED
    assert "cannot use helper" in not_allowed.evidence or "unknown func" in not_allowed.evidence
    missing = prober.probe_helper("sched_cls", len(bpf.HELPER_NAMES) + 50)
    assert missing.status == probes.UNSUPPORTED and "invalid func" in missing.evidence


def test_missing_helpers_are_those_past_the_kernels_table() -> None:
    helpers = findings()["helpers"]
    count = probes.Prober().helper_count()
    assert helpers["missing"] == [f"bpf_{name}" for name in bpf.HELPER_NAMES[count:]]
    assert helpers["skipped_prog_types"] == {}


def test_program_types_the_kernel_lacks_are_skipped_for_helpers_with_the_reason() -> None:
    from bpfcert.targets import ops

    result = ops.OPS["probe"](helper_prog_types=["xdp", "no_such_type"])
    assert result["helpers"]["probed_prog_types"] == ["xdp"]
    assert result["helpers"]["skipped_prog_types"] == {
        "no_such_type": "program type unsupported: not a program type bpfcert knows"
    }


def test_bpftool_helper_lists_are_indeed_unreliable_here() -> None:
    """Guards the reason above: if bpftool ever tells xdp apart from sched_cls, use it as an oracle again."""
    helpers = bpftool()["helpers"]
    if set(helpers["xdp_available_helpers"]) != set(helpers["sched_cls_available_helpers"]):
        pytest.skip("this bpftool distinguishes per-type helpers; the comparison above could use it")
    assert "bpf_xdp_adjust_head" in helpers["sched_cls_available_helpers"]  # wrong, as documented


def test_isa_loops_and_large_programs_match_bpftool_misc() -> None:
    f = findings()
    misc = bpftool()["misc"]
    assert (f["isa"]["v2"]["status"] == "available") == misc["have_v2_isa_extension"]
    assert (f["isa"]["v3"]["status"] == "available") == misc["have_v3_isa_extension"]
    assert (f["bounded_loops"]["status"] == "available") == misc["have_bounded_loops"]
    assert (f["large_programs"]["status"] == "available") == misc["have_large_insn_limit"]
    assert f["isa"]["v1"]["status"] == "available"


def test_v4_isa_follows_the_kernel_version() -> None:
    release = findings()["system"]["release"]
    major, minor = (int(x) for x in release.split(".")[:2])
    expected = "available" if (major, minor) >= (6, 6) else "unsupported"
    assert findings()["isa"]["v4"]["status"] == expected


def test_extended_atomics_follow_the_kernel_version_and_a_refusal_is_unsupported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bpfcert.knowledge import features

    major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    expected = "available" if (major, minor) >= features.EXTENDED_ATOMICS else "unsupported"
    assert probes.Prober().probe_extended_atomics().status == expected
    prober = probes.Prober()  # a kernel whose verifier refuses the fetch-and-add (before 5.12)
    loaded: list[bytes] = []

    def refuse(prog_type: int, program: bytes, **kwargs: Any) -> tuple[int, int]:
        loaded.append(program)
        return -1, 22

    monkeypatch.setattr(bpf, "try_prog_load", refuse)
    monkeypatch.setattr(prober.log, "text", lambda: "0: (db) r0 = atomic64_fetch_add((u64 *)(r10 -8), r0)\ninvalid")
    assert prober.probe_extended_atomics().status == "unsupported"
    # what it loads is an atomic the v1 ISA lacks (BPF_FETCH), not the plain add every kernel takes
    atomics = [i for i in insn.decode(loaded[0], sys.byteorder) if i.cls == "STX" and i.mode == "ATOMIC"]
    assert atomics and all(i.imm & insn.ATOMIC_FETCH for i in atomics)


def test_system_facts_match_procfs() -> None:
    system = findings()["system"]
    assert system["release"] == os.uname().release
    assert system["btf"] == os.path.exists("/sys/kernel/btf/vmlinux")
    with open("/proc/sys/net/core/bpf_jit_enable") as f:
        assert system["bpf_jit_enable"] == int(f.read())
    assert system["unprivileged_bpf_disabled"] in (0, 1, 2)


def test_system_config_matches_bpftool() -> None:
    system, theirs = findings()["system"], bpftool()["system_config"]
    assert system["bpf_jit_enable"] == theirs["bpf_jit_enable"]
    assert system["unprivileged_bpf_disabled"] == theirs["unprivileged_bpf_disabled"]


def test_attach_types_checked_at_load_are_available() -> None:
    attach = findings()["attach_types"]
    assert attach["cgroup_skb"] == {"cgroup_inet_ingress": "available", "cgroup_inet_egress": "available"}
    assert attach["cgroup_sockopt"]["cgroup_setsockopt"] == "available"


def test_link_types_on_a_current_kernel() -> None:
    assert {k: v["status"] for k, v in findings()["link_types"].items()} == {
        "cgroup": "available",
        "perf_event": "available",
        "tcx": "available",
    }


def test_unknown_types_are_unsupported_not_guessed() -> None:
    prober = probes.Prober()
    assert prober.probe_map_type("hash").status == "available"
    # A helper id past every kernel's table: the verifier says "invalid func".
    finding = prober.probe_helper("socket_filter", 100000)
    assert finding.status == "unsupported"
    assert "invalid func" in finding.evidence


def test_helper_count_covers_the_table_on_a_current_kernel() -> None:
    assert probes.Prober().helper_count() == len(bpf.HELPER_NAMES)


def test_kfuncs_from_kernel_btf() -> None:
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("no kernel BTF")
    found = probes.probe_kfuncs(["bpf_rcu_read_lock", "vfs_read", "no_such_function_anywhere"])
    assert found["no_such_function_anywhere"].status == "unsupported"
    assert found["vfs_read"].status in ("unsupported", "inconclusive")  # a function, not a kfunc
    assert found["bpf_rcu_read_lock"].status in ("available", "inconclusive")


def test_kfuncs_without_btf_are_inconclusive(tmp_path: Any) -> None:
    found = probes.probe_kfuncs(["bpf_rcu_read_lock"], path=str(tmp_path / "missing"))
    assert found["bpf_rcu_read_lock"].status == "inconclusive"


def test_probe_is_fast_enough_for_the_vm_budget() -> None:
    stats = findings()["probe_stats"]
    assert stats["loads"] < 1000  # ~2.5 ms a load under TCG: the guest budget is a few seconds
    assert stats["seconds"] < 2.0


def test_probe_op_is_json_and_carries_requested_extras() -> None:
    from bpfcert.targets import ops

    result = ops.OPS["probe"](helper_prog_types=["socket_filter"], kconfig=["CONFIG_BPF"], kfuncs=["x_y_z"])
    assert json.loads(json.dumps(result)) == result
    assert result["helpers"]["probed_prog_types"] == ["socket_filter"]
    assert result["kfuncs"]["x_y_z"]["status"] in ("unsupported", "inconclusive")
    assert set(result["kconfig"]["values"]) == ({"CONFIG_BPF"} if result["kconfig"]["source"] else set())


def test_kfunc_scan_of_bad_btf_is_inconclusive(tmp_path: Any) -> None:
    path = tmp_path / "vmlinux"
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, 24, 24, 0)  # claims two types, holds one
    path.write_bytes(header + struct.pack("<III", 0, 12 << 24, 0))
    assert probes.probe_kfuncs(["bpf_x"], path=str(path))["bpf_x"] == probes.Finding(
        "inconclusive", f"{path}: truncated BTF"
    )
    path.write_bytes(b"not btf at all")
    assert probes.probe_kfuncs(["bpf_x"], path=str(path))["bpf_x"] == probes.Finding(
        "inconclusive", f"{path} is not BTF"
    )
