"""Probes and the prog_test_run op on every kernel target (host and booted Debian kernels)."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from bpfcert import insn
from bpfcert.feature_since import contradictions
from bpfcert.knowledge import map_types
from bpfcert.knowledge.prog_types import KCONFIG
from bpfcert.probe_cmd import kconfig_from_kernel_cache
from bpfcert.targets.target import Target

pytestmark = pytest.mark.vm

BASIC_PROG_TYPES = ("socket_filter", "kprobe", "sched_cls", "xdp", "tracepoint", "cgroup_skb")
BASIC_MAP_TYPES = ("hash", "array", "percpu_array", "lru_hash", "prog_array", "perf_event_array", "ringbuf")


@functools.cache
def _findings(name: str, target: Target) -> dict[str, Any]:
    """The probe's findings, with the kernel options the version test needs (from the kernel cache for a VM)."""
    keys = sorted({*KCONFIG.values(), *map_types.KCONFIG.values()})
    entry = {"name": name, "findings": target.call("probe", kconfig=keys)}
    kconfig_from_kernel_cache(entry, keys)
    result: dict[str, Any] = entry["findings"]
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


def test_features_follow_their_first_kernel_version(target: Target) -> None:
    """cilium/ebpf's rule, for every probed feature and the first version bpfcert.knowledge gives it: reported
    unsupported at or after that version is a false skip, reported available before it means the knowledge
    row is wrong. Either fails (bpfcert.feature_since)."""
    found = contradictions(findings(target))
    assert found == [], "\n".join(found)


def test_helpers_and_links_have_no_inconclusive_answers(target: Target) -> None:
    f = findings(target)
    for prog_type, helpers in f["helpers"]["by_prog_type"].items():
        assert helpers["inconclusive"] == {}, prog_type
        assert "bpf_map_lookup_elem" in helpers["available"], prog_type
    assert "inconclusive" not in {v["status"] for v in f["link_types"].values()}


def test_helpers_not_allowed_are_told_apart_from_missing_helpers(target: Target) -> None:
    """bpf_xdp_adjust_head is in every kernel but not allowed for sched_cls ("unknown func" before 6.2, "cannot
    use helper" since); helpers missing from a kernel are test_features_follow_their_first_kernel_version's."""
    helpers = findings(target)["helpers"]
    assert "bpf_xdp_adjust_head" in helpers["by_prog_type"]["sched_cls"]["not_allowed"]
    assert "bpf_xdp_adjust_head" in helpers["by_prog_type"]["xdp"]["available"]
    assert "bpf_xdp_adjust_head" not in helpers["missing"]


def test_prog_test_run_op_on_every_kernel(target: Target) -> None:
    code = insn.assemble([insn.mov64_imm(0, 3), insn.exit_()]).hex()  # XDP_TX
    result = target.call("prog_test_run", prog_type="xdp", insns_hex=code, data_hex="ab" * 60)
    assert result["retval"] == 3
    assert result["data_out_hex"] == "ab" * 60
