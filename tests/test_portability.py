"""bpfcert.portability: whether a package's code (and its declared requires) holds on a probed kernel, and exactly
why not."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bpfcert.portability import CodeNeeds, manifest_disagreements, predict, predict_code

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
        "skipped_prog_types": {},
        "missing": ["bpf_loop"],
        "by_prog_type": {
            "xdp": {
                "available": ["bpf_map_lookup_elem", "bpf_xdp_adjust_head"],
                "not_allowed": ["bpf_probe_read_kernel"],
                "inconclusive": {"bpf_get_prandom_u32": "EPERM"},
            },
            "kprobe": {
                "available": ["bpf_map_lookup_elem", "bpf_probe_read_kernel"],
                "not_allowed": ["bpf_xdp_adjust_head"],
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
    assert "helper bpf_probe_read_kernel is not allowed for program type(s) xdp" in text
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




def test_helper_missing_from_the_kernel_is_told_apart() -> None:
    got = predict(manifest(helpers=["bpf_loop"]), FINDINGS)
    assert got["reasons"] == ["helper bpf_loop is missing from this kernel"]


def needs(**fields: Any) -> CodeNeeds:
    base: dict[str, Any] = {
        "source": "pkg",
        "name": "pkg",
        "version": "1.0.0",
        "prog_types": ("xdp",),
        "map_types": ("hash",),
        "helpers": {"bpf_map_lookup_elem": ("xdp",)},
        "kfuncs": (),
        "btf": (),
        "min_kernel": (4, 18),
        "min_kernel_reasons": ("program type xdp needs 4.8",),
    }
    return CodeNeeds(**{**base, **fields})


def test_code_that_the_kernel_offers_meets() -> None:
    got = predict_code(needs(), FINDINGS, "6.1")
    assert got == {"target": "6.1", "meets": True, "limiting": None, "reasons": [], "unknown": []}


def test_each_missing_feature_of_the_code_is_named_newest_first() -> None:
    got = predict_code(
        needs(
            prog_types=("xdp", "netfilter"),
            map_types=("hash", "arena"),
            helpers={"bpf_loop": ("xdp",), "bpf_probe_read_kernel": ("xdp", "kprobe"), "bpf_xdp_adjust_head": ("xdp",)},
            kfuncs=("bpf_new_thing",),
            min_kernel=(6, 9),
            min_kernel_reasons=("map type arena needs 6.9",),
        ),
        {**FINDINGS, "kfuncs": {"bpf_new_thing": {"status": "unsupported", "evidence": "no function of this name"}}},
        "6.1",
    )
    assert got["meets"] is False
    assert got["reasons"] == [
        "map type arena (6.9) missing from this kernel (EINVAL)",
        "program type netfilter (6.4) missing from this kernel (EINVAL)",
        "helper bpf_loop (5.17) missing from this kernel",
        "helper bpf_probe_read_kernel not allowed for program type xdp",
        "kfunc bpf_new_thing missing from this kernel (no function of this name)",
    ]
    assert got["limiting"] == got["reasons"][0]


def test_helper_of_a_program_type_not_probed_is_unknown_unless_missing_everywhere() -> None:
    got = predict_code(needs(helpers={"bpf_map_lookup_elem": ("sched_cls",), "bpf_loop": ("sched_cls",)}), FINDINGS)
    assert got["reasons"] == ["helper bpf_loop (5.17) missing from this kernel"]
    assert got["unknown"] == ["helper bpf_map_lookup_elem: not probed for program type sched_cls"]


def test_inconclusive_answers_are_unknown_never_met_or_unmet() -> None:
    got = predict_code(
        needs(prog_types=("xdp", "lsm"), helpers={"bpf_get_prandom_u32": ("xdp",)}, kfuncs=("btf_id:77",)),
        FINDINGS,
    )
    assert got["meets"] is True and got["limiting"] is None
    assert got["unknown"] == [
        "program type lsm: inconclusive (EPERM)",
        "helper bpf_get_prandom_u32 for program type xdp: inconclusive (EPERM)",
        "kfunc btf_id:77: not probed",
    ]


def test_code_needing_btf_on_a_kernel_without_it() -> None:
    findings = copy.deepcopy(FINDINGS)
    findings["system"]["btf"] = False
    got = predict_code(needs(btf=("kfunc calls",)), findings)
    assert got["reasons"] == ["kernel BTF (/sys/kernel/btf/vmlinux) missing, needed for kfunc calls"]


def test_floor_set_by_what_no_probe_sees_is_compared_with_the_release() -> None:
    floor = needs(min_kernel=(6, 6), min_kernel_reasons=("BPF CPU v4 instructions needs 6.6",))
    got = predict_code(floor, FINDINGS, "6.1")
    assert got["reasons"] == ["kernel 6.1 is older than 6.6: BPF CPU v4 instructions needs 6.6"]
    findings = copy.deepcopy(FINDINGS)
    findings["system"]["release"] = "6.6.1-amd64"
    assert predict_code(floor, findings)["meets"] is True


def test_floor_set_by_probed_features_trusts_the_probes() -> None:
    """A helper the probes found (a distribution backport) counts as there, whatever its first release."""
    findings = copy.deepcopy(FINDINGS)
    findings["helpers"]["missing"] = []
    findings["helpers"]["by_prog_type"]["xdp"]["available"].append("bpf_loop")
    floor = needs(helpers={"bpf_loop": ("xdp",)}, min_kernel=(5, 17), min_kernel_reasons=("helper bpf_loop",))
    assert predict_code(floor, findings)["meets"] is True


def test_declared_kconfig_is_checked_since_code_cannot_show_it() -> None:
    got = predict_code(needs(), FINDINGS, kconfig={"CONFIG_NET_CLS_ACT": "y"})
    assert got["reasons"] == ["CONFIG_NET_CLS_ACT=y required, kernel has CONFIG_NET_CLS_ACT=m"]


def test_manifest_disagreements_with_the_code() -> None:
    code = needs(
        helpers={"bpf_loop": ("xdp",), "bpf_map_lookup_elem": ("xdp",)},
        kfuncs=("bpf_rcu_read_lock",),
        btf=("kfunc calls",),
        min_kernel=(5, 17),
        min_kernel_reasons=("helper bpf_loop needs 5.17",),
    )
    declared = {
        "requires": {
            "kernel": ">=5.10",
            "btf": False,
            "prog_types": ["xdp", "kprobe"],
            "map_types": ["hash"],
            "helpers": ["bpf_map_lookup_elem"],
        }
    }
    assert manifest_disagreements(code, declared) == [
        "the code uses helper bpf_loop, which requires.helpers does not list",
        "the code uses kfunc bpf_rcu_read_lock, which requires.kfuncs does not list",
        "requires.prog_types lists kprobe, which the code does not use",
        "requires.kernel '>=5.10' admits 5.10, older than the 5.17 the code needs (helper bpf_loop needs 5.17)",
        "requires.btf is not true, but the code needs the kernel's BTF (kfunc calls)",
    ]
    assert manifest_disagreements(needs(), {"requires": {"kernel": ">=4.18", "prog_types": ["xdp"],
        "map_types": ["hash"], "helpers": ["bpf_map_lookup_elem"]}}) == []  # fmt: skip
    assert manifest_disagreements(needs(), {}) == [
        "the code uses program type xdp, which requires.prog_types does not list",
        "the code uses map type hash, which requires.map_types does not list",
        "the code uses helper bpf_map_lookup_elem, which requires.helpers does not list",
        "requires.kernel is missing; the code needs >=4.18",
    ]


@given(json_values, st.dictionaries(st.sampled_from(["helpers", "prog_types", "map_types", "kfuncs", "system"]),
    json_values))  # fmt: skip
def test_any_json_findings_give_a_code_prediction(release: Any, findings: dict[str, Any]) -> None:
    """Findings from an older bpfcert or a broken guest still give a prediction, never an exception."""
    code = needs(helpers={"bpf_loop": ("xdp",)}, kfuncs=("bpf_x",), btf=("kfunc calls",))
    got = predict_code(code, {**findings, "system": {"release": release}})
    assert got["meets"] is (not got["reasons"])
    assert all(isinstance(r, str) for r in got["reasons"] + got["unknown"])


def test_code_needs_of_an_example_package() -> None:
    from bpfcert.package import open_package
    from bpfcert.portability import code_needs

    with open_package(ROOT / "examples" / "xdp-counter-v1") as pkg:
        got = code_needs(pkg)
    assert got.name == "xdp-counter" and got.version == "1.0.0"
    assert got.prog_types == ("xdp",) and "hash" in got.map_types
    assert set(got.helpers) == {"bpf_get_prandom_u32", "bpf_map_lookup_elem", "bpf_map_update_elem"}
    assert set(got.helpers["bpf_map_lookup_elem"]) == {"xdp"}
    assert got.btf == () and got.kfuncs == ()
    assert json.loads(json.dumps(got.to_json()))["helpers"]["bpf_map_lookup_elem"] == ["xdp"]


def _on(machine: str) -> dict[str, Any]:
    return {**FINDINGS, "system": {**FINDINGS["system"], "machine": machine}}


def test_an_object_of_the_other_byte_order_does_not_port() -> None:
    elf = {"path": "p.bpf.o", "kind": "elf", "arch": "bpfel"}
    little = {**manifest(), "artifacts": [elf]}
    big = {**manifest(), "artifacts": [{**elf, "arch": "bpfeb"}]}
    assert predict(little, _on("x86_64"))["meets"] and predict(big, _on("s390x"))["meets"]
    assert predict(little, _on("aarch64"))["meets"]
    reasons = predict(little, _on("s390x"))["reasons"]
    assert reasons == ["bpfel objects do not load on a s390x kernel, which takes bpfeb"]
    assert not predict(big, _on("x86_64"))["meets"]
    assert predict_code(needs(arches=("bpfeb",)), _on("s390x"))["meets"]
    code = predict_code(needs(), _on("s390x"))
    assert not code["meets"] and "bpfel objects do not load on a s390x kernel" in code["limiting"]


def test_the_bpfeb_builds_of_the_examples_are_big_endian_objects() -> None:
    from bpfcert.package import open_package
    from bpfcert.portability import code_needs

    for example in ("xdp-counter-v1", "socket-filter"):
        with open_package(ROOT / "examples" / "bpfeb" / example) as pkg:
            assert code_needs(pkg).arches == ("bpfeb",)
            assert {a["arch"] for a in pkg.manifest["artifacts"]} == {"bpfeb"}
        with open_package(ROOT / "examples" / example) as pkg:
            assert code_needs(pkg).arches == ("bpfel",)
