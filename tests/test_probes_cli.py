"""`bpfcert probe`: the report shape and schema, where it is saved, exit codes, --package predictions from the
code (fake targets) and progress on stderr."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest

import bpfcert.targets.target as targets
from bpfcert import __version__, probe_cmd, spec
from bpfcert.cli import main
from bpfcert.errors import TargetError
from bpfcert.targets import kernels, probes
from bpfcert.targets.info import TargetInfo
from bpfcert.targets.schedule import Scheduler

ROOT = Path(__file__).resolve().parent.parent

FINDINGS: dict[str, Any] = {
    "system": {
        "release": "5.10.0-46-cloud-amd64",
        "machine": "x86_64",
        "btf": True,
        "bpf_jit_enable": 1,
        "unprivileged_bpf_disabled": 2,
    },
    "prog_types": {"xdp": {"status": "available"}, "lsm": {"status": "inconclusive", "evidence": "EPERM"}},
    "map_types": {"hash": {"status": "available"}, "array": {"status": "available"}},
    "attach_types": {},
    "link_types": {"cgroup": {"status": "available"}, "tcx": {"status": "unsupported", "evidence": "EINVAL"}},
    "helpers": {
        "probed_prog_types": ["xdp"],
        "skipped_prog_types": {},
        "missing": ["bpf_loop", "bpf_strncmp"],
        "by_prog_type": {
            "xdp": {
                "available": ["bpf_map_lookup_elem", "bpf_map_update_elem"],
                "not_allowed": ["bpf_get_prandom_u32"],
                "inconclusive": {},
            }
        },
    },
    "isa": {v: {"status": "available"} for v in ("v1", "v2", "v3")} | {"v4": {"status": "unsupported"}},
    "bounded_loops": {"status": "available"},
    "large_programs": {"status": "available"},
    "kconfig": {"source": None, "values": {}},
    "probe_stats": {"loads": 1, "seconds": 0.1, "sections": {}},
}


# A newer kernel (host-like): bpf_loop exists and xdp may call it and bpf_get_prandom_u32.
NEWER: dict[str, Any] = copy.deepcopy(FINDINGS)
NEWER["system"]["release"] = "6.18.44-fc-v1045"
NEWER["helpers"]["missing"] = []
NEWER["helpers"]["by_prog_type"]["xdp"] = {
    "available": ["bpf_get_prandom_u32", "bpf_loop", "bpf_map_lookup_elem", "bpf_map_update_elem"],
    "not_allowed": [],
    "inconclusive": {},
}
FINDINGS_BY_TARGET = {"host": NEWER, "6.12": NEWER}


class FakeTarget:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.findings = FINDINGS_BY_TARGET.get(name, FINDINGS)

    def info(self) -> TargetInfo:
        release = self.findings["system"]["release"]
        return TargetInfo(self.name, release, self.name, "5.10.237-1", "ab" * 32, "tcg", "x86_64", 2.3)

    def call(self, op: str, **args: Any) -> Any:
        self.calls.append((op, args))
        return copy.deepcopy(self.findings)

    def close(self) -> None:
        pass


@pytest.fixture
def fake_targets(monkeypatch: pytest.MonkeyPatch) -> list[FakeTarget]:
    opened: list[FakeTarget] = []

    def run(self: Scheduler, names: list[str], fn: Callable[[Any], Any], summary: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            if name == "6.1":
                out[name] = TargetError("guest panicked", kind="panic", console="line1\nKernel panic - x")
                continue
            target = FakeTarget(name)
            opened.append(target)
            out[name] = fn(target)
        return out

    monkeypatch.setattr(kernels, "cached_kernels", dict)
    monkeypatch.setattr(targets, "resolve_names", lambda spec: (spec or "host").split(","), raising=False)
    monkeypatch.setattr(Scheduler, "run", run)
    return opened


def validate_report(report: dict[str, Any]) -> None:
    schema = spec.schema("probe")
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker()).validate(report)


LOOP_C = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
static long step(__u32 i, void *data) { return 0; }
SEC("xdp") int spin(struct xdp_md *ctx) {
    bpf_loop(4, step, 0, 0);
    return bpf_get_prandom_u32() & 1 ? XDP_PASS : XDP_DROP;
}
char LICENSE[] SEC("license") = "GPL";
"""


def loop_package(root: Path, requires: dict[str, Any] | None = None) -> Path:
    """A package whose XDP program calls bpf_loop (Linux 5.17) and whose manifest declares `requires`."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    root.mkdir()
    (root / "spin.c").write_text(LOOP_C)
    obj = root / "spin.bpf.o"
    cmd = ["clang", "-O2", "-g", "-target", "bpf", "-I", "/usr/include/x86_64-linux-gnu", "-c"]
    subprocess.run([*cmd, str(root / "spin.c"), "-o", str(obj)], check=True)
    manifest = {
        "specVersion": "1.0",
        "name": "spin",
        "version": "1.0.0",
        "license": "GPL-2.0-only",
        "artifacts": [
            {"path": obj.name, "sha256": hashlib.sha256(obj.read_bytes()).hexdigest(), "arch": "bpfel", "kind": "elf"}
        ],
        "programs": [{"name": "spin", "artifact": obj.name, "section": "xdp", "type": "xdp"}],
        "maps": [],
        "requires": requires if requires is not None else {},
    }
    (root / "bpfpkg.json").write_text(json.dumps(manifest))
    return root


def test_json_report_printed_with_metadata(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "--target", "5.10", "--format", "json", "-o", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["bpfcert"] == __version__ and printed["kind"] == "probe"
    assert printed["created"].endswith("Z")
    (entry,) = printed["targets"]
    assert entry["name"] == "5.10" and entry["release"] == "5.10.0-46-cloud-amd64" and entry["accel"] == "tcg"
    assert entry["arch"] == "x86_64" and entry["deb_sha256"] == "ab" * 32
    assert entry["findings"] == FINDINGS
    assert fake_targets[0].calls == [("probe", {"helper_prog_types": list(probes.HELPER_PROG_TYPES)})]
    validate_report(printed)


def test_failed_target_is_reported_and_exits_1(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "--target", "5.10,6.1", "-o", str(out)]) == 1
    text = capsys.readouterr().out
    assert "6.1: ERROR (panic) guest panicked" in text
    assert "5.10: 5.10.0-46-cloud-amd64" in text
    assert "inconclusive prog type lsm: EPERM" in text
    saved = json.loads(out.read_text())
    assert saved["targets"][1] == {
        "name": "6.1",
        "error": {"kind": "panic", "message": "guest panicked", "console_tail": "line1\nKernel panic - x"},
    }
    validate_report(saved)


def test_report_written_only_where_asked(
    fake_targets: list[FakeTarget], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["probe", "--target", "host"]) == 0
    assert main(["probe", "--target", "host", "--format", "json"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "saved" not in capsys.readouterr().out


def test_text_names_unsupported_types_and_the_two_kinds_of_missing_helper(
    fake_targets: list[FakeTarget], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "--target", "5.10"]) == 0
    text = capsys.readouterr().out
    assert "unsupported program types: none" in text
    assert "helpers for xdp: 2 available, 1 not allowed for this program type, 0 inconclusive" in text
    assert "helpers missing from this kernel (2): bpf_loop, bpf_strncmp" in text


def test_prediction_comes_from_the_code_not_the_manifest(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The package calls bpf_loop (5.17) and declares nothing: 5.10 does not run it, whatever requires says."""
    package = loop_package(tmp_path / "spin")
    out = tmp_path / "p.json"
    argv = ["probe", "--target", "host,5.10", "--package", str(package), "-o", str(out)]
    assert main(argv) == 1
    text = capsys.readouterr().out
    table = text[text.index("portability") :].splitlines()
    assert table[1].split() == ["package", "host", "5.10"]
    assert table[2].startswith("spin 1.0.0 ")
    assert "yes" in table[2] and "no — helper bpf_loop (5.17) missing from this kernel" in table[2]
    assert "the code uses helper bpf_get_prandom_u32, bpf_loop, which requires.helpers does not list" in text
    assert "requires.kernel is missing; the code needs >=5.17" in text
    (call,) = [c for t in fake_targets if t.name == "5.10" for c in t.calls]
    assert call[1]["helper_prog_types"] == list(probes.HELPER_PROG_TYPES)  # xdp is probed by default
    report = json.loads(out.read_text())
    validate_report(report)
    (pkg,) = report["packages"]
    assert pkg["name"] == "spin" and pkg["needs"]["helpers"] == {
        "bpf_get_prandom_u32": ["xdp"],
        "bpf_loop": ["xdp"],
    }
    by_target = {p["target"]: p for p in pkg["predictions"]}
    assert by_target["host"]["meets"] is True and by_target["host"]["limiting"] is None
    assert by_target["5.10"]["meets"] is False
    assert by_target["5.10"]["limiting"] == "helper bpf_loop (5.17) missing from this kernel"
    assert by_target["5.10"]["manifest"]["meets"] is True  # what believing `requires` got wrong


def test_all_targets_meeting_the_code_exit_0(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requires = {"kernel": ">=5.17", "prog_types": ["xdp"], "helpers": ["bpf_get_prandom_u32", "bpf_loop"]}
    package = loop_package(tmp_path / "spin", requires)
    assert main(["probe", "--target", "host,6.12", "--package", str(package)]) == 0
    text = capsys.readouterr().out
    assert "manifest disagrees" not in text
    assert text[text.index("portability") :].splitlines()[2].split()[2:] == ["yes", "yes"]


def test_helper_not_allowed_for_the_program_type_is_its_own_reason(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = ROOT / "examples" / "xdp-counter-v1"
    assert main(["probe", "--target", "5.10", "--package", str(package), "-o", str(tmp_path / "p.json")]) == 1
    text = capsys.readouterr().out
    assert "no — helper bpf_get_prandom_u32 not allowed for program type xdp" in text
    (call,) = fake_targets[0].calls
    assert "xdp" in call[1]["helper_prog_types"] and call[1]["kconfig"] == ["CONFIG_BPF_SYSCALL"]
    (pkg,) = json.loads((tmp_path / "p.json").read_text())["packages"]
    (prediction,) = pkg["predictions"]
    assert prediction["meets"] is False and prediction["target"] == "5.10"


def test_guest_kconfig_comes_from_the_cached_kernel_config(
    fake_targets: list[FakeTarget], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config-5.10.0-46-cloud-amd64"
    config.write_text("# comment\nCONFIG_BPF_SYSCALL=y\nCONFIG_NET_CLS_ACT=m\n")
    cached = SimpleNamespace(release="5.10.0-46-cloud-amd64", config=config)
    monkeypatch.setattr(kernels, "cached_kernels", lambda: {"5.10": cached})
    out = tmp_path / "p.json"
    package = ROOT / "examples" / "xdp-counter-v1"
    main(["probe", "--target", "5.10", "--package", str(package), "-o", str(out)])
    report = json.loads(out.read_text())
    (entry,) = report["targets"]
    assert entry["findings"]["kconfig"] == {"source": f"host:{config}", "values": {"CONFIG_BPF_SYSCALL": "y"}}
    (prediction,) = report["packages"][0]["predictions"]
    assert not any("kconfig" in u for u in prediction["unknown"])


def test_unreadable_package_is_a_one_line_error(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "--package", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpfcert probe: error: ") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("artifacts", "reason"),
    [
        ([], "lists no artifacts"),
        ([{"path": "nothing.o"}], "nothing.o"),
        ("not a list", "lists no artifacts"),
    ],
)
def test_package_without_loadable_code_is_unusable_input(
    fake_targets: list[FakeTarget],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    artifacts: Any,
    reason: str,
) -> None:
    (tmp_path / "bpfpkg.json").write_text(json.dumps({"name": "x", "artifacts": artifacts}))
    assert main(["probe", "--target", "5.10", "--package", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpfcert probe: error: ") and err.count("\n") == 1 and reason in err
    assert fake_targets == []  # nothing booted for a package that cannot be predicted


def test_probe_request_adds_the_code_needs() -> None:
    request = probe_cmd.probe_request(prog_types=["tracing", "xdp"], kfuncs=["bpf_b", "bpf_a"], kconfig=["CONFIG_X"])
    assert request == {
        "helper_prog_types": [*probes.HELPER_PROG_TYPES, "tracing"],
        "kconfig": ["CONFIG_X"],
        "kfuncs": ["bpf_a", "bpf_b"],
    }


class FakeVm(FakeTarget):
    """Opened through the real scheduler: its progress lines are what a VM's would be."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_vms(monkeypatch: pytest.MonkeyPatch) -> None:
    def prepare_target(name: str, accel: str = "auto", **_: Any) -> Callable[[], Any]:
        def boot() -> FakeVm:
            if name == "6.1":
                raise TargetError("6.1: the guest did not boot", "boot")
            return FakeVm(name)

        return boot

    monkeypatch.setattr(kernels, "cached_kernels", dict)
    monkeypatch.setattr(targets, "prepare_target", prepare_target)


def test_progress_one_line_per_state_change_without_a_terminal(
    fake_vms: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "--target", "5.10,6.1"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[err.index("probe: 5.10 booting") :].index("probe: 5.10 ready in 2.3 s") == 1
    assert "probe: 5.10 done (1 loads)" in err
    assert "probe: 6.1 failed (boot)" in err
    assert all(line.startswith("probe: ") and "\r" not in line and "\x1b" not in line for line in err)
    assert len(err) == len(set(err)) == 5  # booting, ready, done; booting, failed


def test_quiet_prints_no_progress(fake_vms: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--target", "5.10", "-q"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="probing the host kernel needs root")
def test_end_to_end_on_the_host(tmp_path: Path) -> None:
    out = tmp_path / "host.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "probe", "--target", "host", "--format", "json", "-o", str(out)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    (entry,) = report["targets"]
    assert entry["name"] == "host" and entry["release"] == os.uname().release
    assert entry["findings"]["prog_types"]["xdp"] == {"status": "available"}
    assert json.loads(out.read_text()) == report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["host.json"]
    loads = entry["findings"]["probe_stats"]["loads"]
    assert proc.stderr.splitlines() == ["probe: host opening", "probe: host ready", f"probe: host done ({loads} loads)"]
    validate_report(report)


@pytest.mark.skipif(os.geteuid() != 0, reason="probing the host kernel needs root")
def test_host_prediction_for_every_example_matches_its_check(tmp_path: Path) -> None:
    """Every bundled example runs on the host kernel, judged from its code: exit 0, a 'yes' per package."""
    packages = sorted(p.parent for p in (ROOT / "examples").glob("*/bpfpkg.json"))
    argv = [sys.executable, "-m", "bpfcert", "probe", "-q", "--target", "host", "-o", str(tmp_path / "p.json")]
    for package in packages:
        argv += ["--package", str(package)]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "p.json").read_text())
    validate_report(report)
    assert [p["predictions"][0]["meets"] for p in report["packages"]] == [True] * len(packages)
