"""`bpfcert probe`: the report shape, the saved JSON, exit codes and --package predictions (fake targets)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bpfcert import probes, targets
from bpfcert.cli import main
from bpfcert.errors import TargetError
from bpfcert.targets import kernels

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
    "helpers": {
        "probed_prog_types": ["xdp"],
        "by_prog_type": {
            "xdp": {
                "available": ["map_lookup_elem", "map_update_elem"],
                "unsupported": ["get_prandom_u32"],
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


class FakeTarget:
    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "release": FINDINGS["system"]["release"], "series": "5.10", "accel": "tcg"}

    def call(self, op: str, **args: Any) -> Any:
        self.calls.append((op, args))
        return copy.deepcopy(FINDINGS)


@pytest.fixture
def fake_targets(monkeypatch: pytest.MonkeyPatch) -> list[FakeTarget]:
    opened: list[FakeTarget] = []

    def map_targets(names: list[str], fn: Callable[[Any], Any], **_: Any) -> dict[str, Any]:
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
    monkeypatch.setattr(targets, "map_targets", map_targets, raising=False)
    return opened


def test_json_report_saved_and_printed(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "--target", "5.10", "--format", "json", "-o", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    (entry,) = printed["targets"]
    assert entry["name"] == "5.10" and entry["release"] == "5.10.0-46-cloud-amd64" and entry["accel"] == "tcg"
    assert entry["findings"] == FINDINGS
    assert fake_targets[0].calls == [("probe", {"helper_prog_types": list(probes.HELPER_PROG_TYPES)})]


def test_failed_target_is_reported_and_exits_1(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "--target", "5.10,6.1", "-o", str(out)]) == 1
    text = capsys.readouterr().out
    assert "6.1: ERROR (panic) guest panicked" in text
    assert "5.10: 5.10.0-46-cloud-amd64" in text
    assert "inconclusive prog type lsm: EPERM" in text
    saved = json.loads(out.read_text())["targets"]
    assert saved[1] == {
        "name": "6.1",
        "error": {"kind": "panic", "message": "guest panicked", "console_tail": "line1\nKernel panic - x"},
    }


def test_default_report_path_under_reports_probe(
    fake_targets: list[FakeTarget], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["probe", "--target", "host"]) == 0
    (saved,) = (tmp_path / "reports" / "probe").glob("*.json")
    assert json.loads(saved.read_text())["targets"][0]["name"] == "host"


def test_package_prediction_names_the_missing_helper(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = ROOT / "examples" / "xdp-counter-v1"
    assert main(["probe", "--target", "5.10", "--package", str(package), "-o", str(tmp_path / "p.json")]) == 0
    text = capsys.readouterr().out
    assert "package does NOT meet its requires" in text
    assert "helper bpf_get_prandom_u32 is not available to program type(s) xdp" in text
    (call,) = fake_targets[0].calls
    assert "xdp" in call[1]["helper_prog_types"] and call[1]["kconfig"] == ["CONFIG_BPF_SYSCALL"]
    prediction = json.loads((tmp_path / "p.json").read_text())["targets"][0]["portability"]
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
    assert main(["probe", "--target", "5.10", "--package", str(package), "-o", str(out)]) == 0
    (entry,) = json.loads(out.read_text())["targets"]
    assert entry["findings"]["kconfig"] == {"source": f"host:{config}", "values": {"CONFIG_BPF_SYSCALL": "y"}}
    assert not any("kconfig" in u for u in entry["portability"]["unknown"])


def test_unreadable_package_is_a_one_line_error(
    fake_targets: list[FakeTarget], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["probe", "--package", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bpfcert probe: error: ") and err.count("\n") == 1


def test_probe_request_adds_the_package_needs() -> None:
    request = probes.probe_request(
        {
            "programs": [{"type": "tracing"}],
            "requires": {"kfuncs": ["bpf_b", "bpf_a"], "kconfig": {"CONFIG_X": "y"}},
        }
    )
    assert request == {
        "helper_prog_types": [*probes.HELPER_PROG_TYPES, "tracing"],
        "kconfig": ["CONFIG_X"],
        "kfuncs": ["bpf_a", "bpf_b"],
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="probing the host kernel needs root")
def test_end_to_end_on_the_host(tmp_path: Path) -> None:
    out = tmp_path / "host.json"
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "probe", "--target", "host", "--format", "json", "-o", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)["targets"]
    assert entry["name"] == "host" and entry["release"] == os.uname().release
    assert entry["findings"]["prog_types"]["xdp"] == {"status": "available"}
    assert json.loads(out.read_text()) == json.loads(proc.stdout)
