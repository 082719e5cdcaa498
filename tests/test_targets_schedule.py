"""The one target engine without VMs: the scheduler (fake targets), the one series list (tox, help texts), typed
target names, fault kinds and info, and the one answer to "can this VM target open here?"."""

from __future__ import annotations

import configparser
import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import bpfcert.targets.target as targets
from bpfcert import cli, pytest_plugin
from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets import kernels, machines, series, vm
from bpfcert.targets.host import HostTarget
from bpfcert.targets.info import TargetInfo
from bpfcert.targets.schedule import Progress, Scheduler
from bpfcert.targets.series import SERIES, TargetName

ROOT = Path(__file__).resolve().parent.parent


class FakeTarget:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log

    def info(self) -> TargetInfo:
        boot = None if self.name == "host" else 2.5
        return TargetInfo(self.name, "6.1.0-1-cloud-amd64", self.name, "6.1.1-1", None, "tcg", "x86_64", boot)

    def call(self, op: str, **args: Any) -> Any:
        return op

    def splats(self) -> list[str]:
        return []

    def close(self) -> None:
        self.log.append(self.name)


class FakeOpener:
    """Stands in for targets.prepare_target: counts preparations and boots, records how many boot at once."""

    def __init__(self, boot_seconds: float = 0.0, fail: dict[str, TargetError] | None = None) -> None:
        self.boot_seconds = boot_seconds
        self.fail = fail or {}
        self.prepared: list[str] = []
        self.booted: list[str] = []
        self.closed: list[str] = []
        self.booting = self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, name: str, accel: str = "auto", **options: Any) -> Callable[[], FakeTarget]:
        self.prepared.append(name)

        def boot() -> FakeTarget:
            with self._lock:
                self.booting += 1
                self.peak = max(self.peak, self.booting)
            time.sleep(self.boot_seconds)
            with self._lock:
                self.booting -= 1
                self.booted.append(name)
            if name in self.fail:
                raise self.fail[name]
            return FakeTarget(name, self.closed)

        return boot


@pytest.fixture
def opener(monkeypatch: pytest.MonkeyPatch) -> FakeOpener:
    fake = FakeOpener(boot_seconds=0.05, fail={"6.1": TargetError("6.1: boot: agent not ready", "boot")})
    monkeypatch.setattr(targets, "prepare_target", fake)
    return fake


def test_scheduler_opens_each_target_once_and_closes_all_at_the_end(opener: FakeOpener) -> None:
    scheduler = Scheduler("tcg")
    scheduler.start(["5.10", "6.12"])
    first = scheduler.get("5.10")
    assert scheduler.get("5.10") is first and scheduler.get("host") is scheduler.get("host")
    assert isinstance(scheduler.outcome("6.1"), TargetError) and scheduler.outcome("6.1").kind == "boot"
    with pytest.raises(TargetError, match="agent not ready"):
        scheduler.get("6.1")
    assert sorted(opener.prepared) == sorted(opener.booted) == ["5.10", "6.1", "6.12", "host"]
    assert opener.closed == []
    scheduler.close()
    assert sorted(opener.closed) == ["5.10", "6.12", "host"]


def test_scheduler_boots_at_most_jobs_vms_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOpener(boot_seconds=0.1)
    monkeypatch.setattr(targets, "prepare_target", fake)
    with Scheduler(jobs=2) as scheduler:
        scheduler.start(["host", *SERIES])
        assert all(not isinstance(scheduler.outcome(n), TargetError) for n in SERIES)
    assert fake.peak == 2
    assert sorted(fake.closed) == sorted(["host", *SERIES])


def test_run_keeps_results_of_healthy_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeOpener(fail={"6.1": TargetError("6.1: boot: agent not ready", "boot")})
    monkeypatch.setattr(targets, "prepare_target", fake)
    running = {"now": 0, "peak": 0}
    lock = threading.Lock()

    def fn(target: targets.Target) -> str:
        with lock:
            running["now"] += 1
            running["peak"] = max(running["peak"], running["now"])
        time.sleep(0.05)
        with lock:
            running["now"] -= 1
        if target.name == "6.12":
            raise TargetError("6.12: panic: guest panicked", "panic", "Kernel panic")
        return str(target.call("dmesg"))

    with Scheduler(jobs=2) as scheduler:
        results = scheduler.run(["host", "5.10", "6.1", "6.12", "7.2"], fn)
        assert sorted(fake.closed) == ["5.10", "6.12", "7.2", "host"], "each closed once its work is done"
    assert results["host"] == results["5.10"] == results["7.2"] == "dmesg"
    assert isinstance(results["6.1"], TargetError) and results["6.1"].kind == "boot"
    assert isinstance(results["6.12"], TargetError) and results["6.12"].console == "Kernel panic"
    assert sorted(fake.closed) == ["5.10", "6.12", "7.2", "host"], "closing the scheduler closes nothing twice"
    assert running["peak"] <= 3  # two VM slots plus the host, which takes none


def test_run_reports_each_state_change(opener: FakeOpener, capsys: pytest.CaptureFixture[str]) -> None:
    with Scheduler(progress=Progress("probe")) as scheduler:
        scheduler.run(["host", "5.10", "6.1"], lambda t: 7, summary=lambda n: f"{n} loads")
    err = capsys.readouterr().err.splitlines()
    for name, states in {
        "host": ["opening", "ready", "done (7 loads)"],
        "5.10": ["booting", "ready in 2.5 s", "done (7 loads)"],
        "6.1": ["booting", "failed (boot)"],
    }.items():
        assert [line for line in err if line.startswith(f"probe: {name} ")] == [f"probe: {name} {s}" for s in states]
    assert len(err) == 8


def test_a_target_that_cannot_be_prepared_fails_without_booting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFCERT_CACHE", "/nonexistent")
    with Scheduler() as scheduler:
        failed = scheduler.run(["7.2"], lambda t: t.name)["7.2"]
    assert isinstance(failed, TargetError) and failed.kind == TargetErrorKind.MISSING_KERNEL


def test_plugin_hands_out_a_failed_open_and_summarises_it(opener: FakeOpener, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the `target` and `target_outcome` fixtures get for a target that could not open, or cannot here."""
    scheduler = Scheduler("tcg")
    config: Any = SimpleNamespace(stash={pytest_plugin.SCHEDULER: scheduler})
    monkeypatch.setattr(vm, "unavailable", lambda series: None)
    scheduler.start(["6.1"])
    failure = pytest_plugin.opened(config, "6.1")
    assert isinstance(failure, TargetError) and scheduler.outcome("6.1") is failure
    with pytest.raises(TargetError, match="agent not ready"):
        scheduler.get("6.1")
    pytest_plugin.opened(config, "host")
    assert scheduler.summary() == ["host: 6.1.0-1-cloud-amd64", f"6.1: failed: {failure}"]
    monkeypatch.setattr(vm, "unavailable", lambda series: TargetError(f"kernel {series} is not cached", "boot"))
    with pytest.raises(pytest.skip.Exception, match=r"kernel 7\.2 is not cached"):
        pytest_plugin.opened(config, "7.2")
    assert "7.2" not in opener.prepared
    scheduler.close()


def test_vm_unavailable_is_the_one_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path))
    missing = vm.unavailable("6.1")
    assert missing is not None and missing.kind == "missing-kernel" and "bpfcert kernels fetch 6.1" in str(missing)
    root = tmp_path / "kernels" / "6.1.1-1"
    root.mkdir(parents=True)
    meta = {"series": "6.1", "version": "6.1.1-1", "release": "6.1.0-1-cloud-amd64", "package": "p", "deb_sha256": ""}
    (root / "kernel.json").write_text(json.dumps(meta))
    row = machines.MACHINES[("6.1", "x86_64")]
    no_qemu_row = row._replace(arch=row.arch._replace(qemu="qemu-system-none"))
    monkeypatch.setitem(machines.MACHINES, ("6.1", "x86_64"), no_qemu_row)
    no_qemu = vm.unavailable("6.1")
    assert no_qemu is not None and no_qemu.kind == "boot" and str(no_qemu).startswith("6.1: qemu-system-none is not")
    with pytest.raises(TargetError, match="qemu-system-none is not installed"):
        vm.prepare("6.1")
    monkeypatch.setattr(vm, "missing_tools", lambda machine: None)
    assert vm.unavailable("6.1") is None


def test_target_names_are_typed() -> None:
    name = TargetName.parse("6.1")
    assert (name.series, name.arch, str(name), name.is_host) == ("6.1", "x86_64", "6.1", False)
    host = TargetName.parse("host")
    assert host.is_host and str(host) == "host" and host.arch == os.uname().machine
    with pytest.raises(TargetError, match=r"unknown target '4\.19' \(known: host, 5\.10, ") as err:
        TargetName.parse("4.19")
    assert err.value.kind == TargetErrorKind.MISSING_KERNEL


def test_target_error_kind_is_an_enum_that_reads_as_its_string() -> None:
    error = TargetError("6.1: panic: x", "panic")
    assert error.kind is TargetErrorKind.PANIC and error.kind == "panic" and f"{error.kind}" == "panic"
    assert json.dumps({"kind": error.kind}) == '{"kind": "panic"}'
    assert TargetError("x").kind is TargetErrorKind.ERROR
    with pytest.raises(ValueError):
        TargetError("x", "no-such-kind")


def test_target_info_is_a_frozen_value_with_the_eight_json_keys() -> None:
    host = HostTarget()
    try:
        info = host.info()
    finally:
        host.close()
    assert list(info.to_json()) == [
        "name", "release", "series", "version", "deb_sha256", "accel", "arch", "boot_seconds"
    ]  # fmt: skip
    assert info.to_json()["release"] == os.uname().release and info.boot_seconds is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.accel = "kvm"  # type: ignore[misc]


def test_tox_kernel_envs_are_the_series_list() -> None:
    """tox cannot import Python: its kernel-{...} factors and their BPFCERT_SERIES must follow SERIES by hand."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    (section,) = [s for s in config.sections() if s.startswith("testenv:kernel-")]
    factors = re.fullmatch(r"testenv:kernel-\{(.+)\}", section)
    assert factors is not None and factors.group(1).split(",") == list(SERIES)
    setenv = re.findall(r"^(\S+): BPFCERT_SERIES = (\S+)$", config[section]["setenv"], re.MULTILINE)
    assert setenv == [(s, s) for s in SERIES]


def test_series_list_is_one_list() -> None:
    assert kernels.SERIES_SPECS is series.SERIES_SPECS and targets.resolve_names("all") == ["host", *SERIES]


def test_help_texts_follow_the_series_list(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(series, "SERIES", (*SERIES, "9.9"))
    with pytest.raises(SystemExit):
        cli.main(["probe", "--help"])
    assert "9.9" in capsys.readouterr().out
    options: dict[str, str] = {}

    class Parser:
        def addoption(self, name: str, **kwargs: Any) -> None:
            options[name] = kwargs.get("help", "")

    pytest_plugin.pytest_addoption(Parser())  # type: ignore[arg-type]
    assert "host, 5.10, 6.1, 6.12, 7.2, 9.9," in options["--target"]


def test_minus_m_not_vm_deselects_the_tests_that_take_a_target(tmp_path: Path) -> None:
    """The plugin marks them `vm` before -m selects (it used to mark them after, so they ran and booted VMs)."""
    (tmp_path / "test_t.py").write_text("def test_t(target):\n    pass\n\ndef test_u():\n    pass\n")
    argv = ["-p", "bpfcert.pytest_plugin", "-p", "no:cacheprovider", "--target", "host", "--collect-only", "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = functools.partial(subprocess.run, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    base = [sys.executable, "-m", "pytest", *argv, "--rootdir", str(tmp_path), "-c", os.devnull]
    assert "1/2 tests collected (1 deselected)" in run([*base, "-m", "not vm"]).stdout
    assert "1/2 tests collected (1 deselected)" in run([*base, "-m", "vm"]).stdout


def test_collect_only_boots_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []
    item = SimpleNamespace(callspec=SimpleNamespace(params={"target": "6.1"}), fixturenames=["target"])
    item.iter_markers = lambda name: iter(())
    monkeypatch.setattr(vm, "unavailable", lambda series: None)
    monkeypatch.setattr(Scheduler, "start", lambda self, names: started.extend(names))
    for collect_only, expected in ((True, []), (False, ["6.1"])):
        config = SimpleNamespace(stash={pytest_plugin.SCHEDULER: Scheduler()}, option=SimpleNamespace())
        config.option.collectonly = collect_only
        pytest_plugin.pytest_collection_finish(SimpleNamespace(items=[item], config=config))  # type: ignore[arg-type]
        assert started == expected
