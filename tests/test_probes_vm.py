"""Probes and the prog_test_run op on every kernel target (host and booted Debian kernels)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from bpfcert import insn
from bpfcert.knowledge.kernel import parse_version
from bpfcert.targets import Target

pytestmark = pytest.mark.vm

BASIC_PROG_TYPES = ("socket_filter", "kprobe", "sched_cls", "xdp", "tracepoint", "cgroup_skb")
BASIC_MAP_TYPES = ("hash", "array", "percpu_array", "lru_hash", "prog_array", "perf_event_array", "ringbuf")


@functools.cache
def _findings(name: str, target: Target) -> dict[str, Any]:
    result: dict[str, Any] = target.call("probe")
    return result


def findings(target: Target) -> dict[str, Any]:
    return _findings(target.name, target)


def test_probe_reports_the_target_release(target: Target) -> None:
    assert findings(target)["system"]["release"] == target.info().release


def test_basic_types_are_available_on_every_kernel(target: Target) -> None:
    f = findings(target)
    for name in BASIC_PROG_TYPES:
        assert f["prog_types"][name]["status"] == "available", (name, f["prog_types"][name])
    for name in BASIC_MAP_TYPES:
        assert f["map_types"][name]["status"] == "available", (name, f["map_types"][name])


def test_helpers_have_no_inconclusive_answers(target: Target) -> None:
    for prog_type, helpers in findings(target)["helpers"]["by_prog_type"].items():
        assert helpers["inconclusive"] == {}, prog_type
        assert "bpf_map_lookup_elem" in helpers["available"], prog_type


def test_missing_helpers_are_told_apart_from_helpers_not_allowed(target: Target) -> None:
    """bpf_loop (5.17) is missing from older kernels for every program type; bpf_xdp_adjust_head is in every
    kernel but not allowed for sched_cls ("unknown func" before 6.2, "cannot use helper" since)."""
    helpers = findings(target)["helpers"]
    version = parse_version(findings(target)["system"]["release"])
    assert ("bpf_loop" in helpers["missing"]) == (version < (5, 17))
    assert "bpf_xdp_adjust_head" in helpers["by_prog_type"]["sched_cls"]["not_allowed"]
    assert "bpf_xdp_adjust_head" in helpers["by_prog_type"]["xdp"]["available"]


def test_version_dependent_features_follow_the_release(target: Target) -> None:
    """Features with a known first release: v4 ISA (6.6), arena maps (6.9), bloom filter maps (5.16)."""
    f = findings(target)
    version = parse_version(f["system"]["release"])
    assert (f["isa"]["v4"]["status"] == "available") == (version >= (6, 6))
    assert (f["map_types"]["bloom_filter"]["status"] == "available") == (version >= (5, 16))
    if f["map_types"]["arena"]["status"] == "available":
        assert version >= (6, 9)
    assert f["bounded_loops"]["status"] == "available" and f["large_programs"]["status"] == "available"
    links = {k: v["status"] for k, v in f["link_types"].items()}
    assert links["cgroup"] == "available"
    assert (links["perf_event"] == "available") == (version >= (5, 15))
    assert (links["tcx"] == "available") == (version >= (6, 6))
    assert "inconclusive" not in links.values()
    unix_connect = f["attach_types"]["cgroup_sock_addr"]["cgroup_unix_connect"]
    assert (unix_connect == "available") == (version >= (6, 7))


def test_prog_test_run_op_on_every_kernel(target: Target) -> None:
    code = insn.assemble([insn.mov64_imm(0, 3), insn.exit_()]).hex()  # XDP_TX
    result = target.call("prog_test_run", prog_type="xdp", insns_hex=code, data_hex="ab" * 60)
    assert result["retval"] == 3
    assert result["data_out_hex"] == "ab" * 60
