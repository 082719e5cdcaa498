"""bpfcert.portability: whether a package's requires hold on a probed kernel, and exactly why not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bpfcert.portability import predict

ROOT = Path(__file__).resolve().parent.parent

FINDINGS: dict[str, Any] = {
    "system": {"release": "6.1.0-56-cloud-amd64", "machine": "x86_64", "btf": True},
    "prog_types": {
        "xdp": {"status": "available"},
        "kprobe": {"status": "available"},
        "netfilter": {"status": "unsupported", "evidence": "EINVAL"},
        "lsm": {"status": "inconclusive", "evidence": "EPERM"},
    },
    "map_types": {
        "hash": {"status": "available"},
        "arena": {"status": "unsupported", "evidence": "EINVAL"},
    },
    "helpers": {
        "probed_prog_types": ["xdp", "kprobe"],
        "by_prog_type": {
            "xdp": {
                "available": ["map_lookup_elem", "xdp_adjust_head"],
                "unsupported": ["probe_read_kernel"],
                "inconclusive": {},
            },
            "kprobe": {
                "available": ["map_lookup_elem", "probe_read_kernel"],
                "unsupported": ["xdp_adjust_head"],
                "inconclusive": {},
            },
        },
    },
    "kconfig": {
        "source": "/boot/config-6.1.0-56-cloud-amd64",
        "values": {"CONFIG_BPF_SYSCALL": "y", "CONFIG_NET_CLS_ACT": "m"},
    },
    "kfuncs": {
        "bpf_rcu_read_lock": {"status": "available"},
        "bpf_new_thing": {"status": "unsupported", "evidence": "no function of this name"},
    },
}


def manifest(**requires: Any) -> dict[str, Any]:
    return {"programs": [{"name": "p", "type": "xdp"}], "requires": {"kernel": ">=5.10", **requires}}


def test_all_requirements_met() -> None:
    got = predict(
        manifest(
            btf=True,
            prog_types=["xdp"],
            map_types=["hash"],
            helpers=["bpf_map_lookup_elem"],
            kfuncs=["bpf_rcu_read_lock"],
            kconfig={"CONFIG_BPF_SYSCALL": "y"},
        ),
        FINDINGS,
        "6.1",
    )
    assert got == {"target": "6.1", "meets": True, "reasons": [], "unknown": []}


def test_each_missing_feature_is_named() -> None:
    got = predict(
        manifest(
            kernel=">=6.6",
            prog_types=["netfilter"],
            map_types=["arena"],
            helpers=["bpf_probe_read_kernel"],
            kfuncs=["bpf_new_thing"],
            kconfig={"CONFIG_NET_CLS_ACT": "y", "CONFIG_DEBUG_INFO_BTF": "y"},
        ),
        FINDINGS,
    )
    assert got["meets"] is False
    assert got["target"] == "6.1.0-56-cloud-amd64"
    text = "\n".join(got["reasons"])
    assert "kernel 6.1.0-56-cloud-amd64 is outside requires.kernel '>=6.6'" in text
    assert "program type netfilter is not supported by this kernel (EINVAL)" in text
    assert "map type arena is not supported" in text
    assert "helper bpf_probe_read_kernel is not available to program type(s) xdp" in text
    assert "kfunc bpf_new_thing is not supported" in text
    assert "CONFIG_NET_CLS_ACT=y required, kernel has CONFIG_NET_CLS_ACT=m" in text
    assert "CONFIG_DEBUG_INFO_BTF=y required, kernel has CONFIG_DEBUG_INFO_BTF=not set" in text
    assert len(got["reasons"]) == 7


def test_btf_required_on_kernel_without_btf() -> None:
    findings = copy.deepcopy(FINDINGS)
    findings["system"]["btf"] = False
    got = predict(manifest(btf=True), findings)
    assert got["meets"] is False
    assert got["reasons"] == ["requires.btf is true but the kernel has no /sys/kernel/btf/vmlinux"]


def test_inconclusive_is_unknown_never_met_or_unmet() -> None:
    got = predict(manifest(prog_types=["lsm"], kconfig={}), FINDINGS)
    assert got["meets"] is True
    assert got["unknown"] == ["program type lsm: inconclusive (EPERM)"]


def test_helper_needs_only_one_program_type_that_has_it() -> None:
    m = manifest(helpers=["bpf_probe_read_kernel"])
    m["programs"].append({"name": "q", "type": "kprobe"})
    assert predict(m, FINDINGS)["meets"] is True


def test_helpers_of_unprobed_program_types_are_unknown() -> None:
    m = manifest(helpers=["bpf_map_lookup_elem"])
    m["programs"] = [{"name": "p", "type": "sched_cls"}]
    got = predict(m, FINDINGS)
    assert got["meets"] is True
    assert "none of the program types ['sched_cls'] had its helpers probed" in got["unknown"][0]


def test_unreadable_kconfig_is_unknown() -> None:
    findings = copy.deepcopy(FINDINGS)
    findings["kconfig"] = {"source": None, "values": {}}
    got = predict(manifest(kconfig={"CONFIG_BPF_SYSCALL": "y"}), findings)
    assert got["meets"] is True and got["unknown"]


def test_unreadable_kernel_range_is_unknown() -> None:
    got = predict(manifest(kernel="newest please"), FINDINGS)
    assert got["meets"] is True
    assert got["unknown"][0].startswith("requires.kernel: not a kernel version range")


def test_example_package_on_recorded_findings() -> None:
    example = json.loads((ROOT / "examples" / "xdp-counter-v1" / "bpfpkg.json").read_text())
    got = predict(example, FINDINGS, "6.1")
    assert got["meets"] is True, got


versions = st.tuples(st.integers(2, 9), st.integers(0, 30))


@given(versions, versions, st.sampled_from([">=", "<", "=="]))
def test_kernel_bound_agrees_with_version_order(kernel: tuple[int, int], bound: tuple[int, int], op: str) -> None:
    findings = copy.deepcopy(FINDINGS)
    findings["system"]["release"] = "{}.{}.7-1-cloud-amd64".format(*kernel)
    got = predict({"requires": {"kernel": "{}{}.{}".format(op, *bound)}}, findings)
    inside = {">=": kernel >= bound, "<": kernel < bound, "==": kernel == bound}[op]
    assert got["meets"] is inside
    assert bool(got["reasons"]) is not inside


def test_kernel_ranges_with_several_bounds() -> None:
    inside = predict({"requires": {"kernel": ">=5.10,<6.2"}}, FINDINGS)
    assert inside["meets"] is True
    outside = predict({"requires": {"kernel": ">=5.10, <6.1"}}, FINDINGS)
    assert outside["reasons"] == ["kernel 6.1.0-56-cloud-amd64 is outside requires.kernel '>=5.10, <6.1'"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
requires_fields = st.sampled_from(["kernel", "btf", "prog_types", "map_types", "helpers", "kfuncs", "kconfig"])


@given(st.dictionaries(requires_fields, json_values), json_values)
def test_any_json_manifest_gives_a_prediction(requires: dict[str, Any], programs: Any) -> None:
    """A manifest that failed schema validation still gets a prediction (or reasons), never an exception."""
    got = predict({"requires": requires, "programs": programs}, FINDINGS)
    assert got["meets"] is (not got["reasons"])
    assert all(isinstance(r, str) for r in got["reasons"] + got["unknown"])


@given(json_values)
def test_probe_request_accepts_any_json_manifest(manifest: Any) -> None:
    from bpfcert.probes import HELPER_PROG_TYPES, probe_request

    request = probe_request(manifest if isinstance(manifest, dict) else {"requires": manifest})
    assert request["helper_prog_types"][: len(HELPER_PROG_TYPES)] == list(HELPER_PROG_TYPES)
    assert all(isinstance(t, str) for t in request["helper_prog_types"])
