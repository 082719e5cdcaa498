"""RT-UPG-002 (bpfcert.checks.runtime_traffic) on the host kernel: the reference runtime upgrades xdp-counter under
traffic without losing a frame; a runtime that detaches the old program before attaching the new one
(tests/data/runners/gap_upgrade) lets the frames sent in the gap pass unattached and fails; traffic the kernel did
not deliver voids the verdict (ERROR). Also the target ops it stands on: traffic_interface/traffic_interface_del,
traffic_start/traffic_stop and map_element; on a VM, the same with the guest kernel's own pktgen. The sender runs
at SENDER_NICE (in a one-CPU guest it keeps its rate while the runtime upgrades).

Each test has its own bpffs mount as the runtime's pin root, its own state directory and its own veth pair."""

from __future__ import annotations

import dataclasses
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from bpfcert.checks.runtime_traffic import kernel_modules, rt_upg_002
from bpfcert.results import Status
from bpfcert.runners import discovery
from bpfcert.runners.client import RunnerClient
from bpfcert.targets import bpf
from bpfcert.targets.host import HostTarget
from bpfcert.targets.info import TargetInfo
from bpfcert.targets.target import Target
from bpfcert.targets.traffic import SENDER_NICE, receiving_end

REPO = Path(__file__).resolve().parents[1]
V1, V2 = str(REPO / "examples" / "xdp-counter-v1"), str(REPO / "examples" / "xdp-counter-v2")
GAP_UPGRADE = REPO / "tests" / "data" / "runners" / "gap_upgrade"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root (bpf, veth, bpffs mounts) and iproute2"
)


@pytest.fixture
def host(reference_bpffs: Path) -> Iterator[HostTarget]:
    """The host target, the reference runtime's pin root and state the test's own (`reference_bpffs`)."""
    target = HostTarget()
    try:
        yield target
    finally:
        target.close()


def _upgrade_under_traffic(target: Target, folder: Path) -> tuple[Status, dict[str, object], str]:
    with RunnerClient.start(target, discovery.load(folder)) as client:
        result = rt_upg_002(client, target, V1, V2, pps=50_000, around=0.4)
        assert client.list() == ()  # the check uninstalls what it installed
    return result.status, result.evidence, result.message


def test_reference_runtime_upgrades_under_traffic_without_losing_a_frame(host: HostTarget) -> None:
    status, evidence, message = _upgrade_under_traffic(host, REPO / "runners" / "reference")
    assert status is Status.PASS, message
    assert evidence["sender"] == "socket" and evidence["protocol"] == 253
    assert evidence["sent"] == evidence["counted"] and evidence["lost"] == evidence["unattached"] == 0
    assert evidence["rx_packets"] == evidence["tx_packets"] == evidence["sent"]  # the kernel's interface counters
    during = evidence["during_upgrade"]
    assert isinstance(during, dict) and 0 < during["frames"] < evidence["sent"] and during["seconds"] > 0
    assert isinstance(evidence["sent"], int) and evidence["sent"] > 20_000  # ~0.8 s at 50k/s
    # both versions counted part of the traffic: the upgrade did happen while frames flowed
    assert isinstance(evidence["counted_by_new"], int) and evidence["counted_by_new"] > 0
    assert isinstance(evidence["counted_by_old"], int) and evidence["counted_by_old"] > 0
    assert evidence["attachments"] == [{"program": "count_packets", "method": "link-update"}]


def test_detach_then_attach_upgrade_loses_frames_and_fails(host: HostTarget) -> None:
    status, evidence, message = _upgrade_under_traffic(host, GAP_UPGRADE)
    assert status is Status.FAIL, message
    assert isinstance(evidence["unattached"], int) and evidence["unattached"] > 0
    assert evidence["counted"] == evidence["rx_packets"] - evidence["unattached"]  # the kernel saw them arrive
    assert evidence["lost"] == evidence["unattached"]
    assert "uncounted" in message


class Tampered:
    """The host target, except that op `op`'s result is changed by `change`: traffic the runtime is not to blame for."""

    def __init__(self, target: HostTarget, op: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.target, self.name, self.op, self.change = target, target.name, op, change
        self.python = target.python

    def info(self) -> TargetInfo:
        return self.target.info()

    def call(self, op: str, **args: object) -> Any:
        result = self.target.call(op, **args)
        return self.change(result) if op == self.op else result


@pytest.mark.parametrize(
    ("op", "change", "says"),
    [
        ("traffic_stop", lambda r: {**r, "sent": r["sent"] + 5}, "5 of"),  # 5 frames sent never arrived
        ("traffic_progress", lambda r: {**r, "tx_packets": 0}, "did not flow through the upgrade"),  # none during it
    ],
)
def test_traffic_the_kernel_did_not_deliver_is_not_judged(
    host: HostTarget, op: str, change: Callable[[dict[str, Any]], dict[str, Any]], says: str
) -> None:
    tampered = cast(Target, Tampered(host, op, change))
    status, evidence, message = _upgrade_under_traffic(tampered, REPO / "runners" / "reference")
    assert status is Status.ERROR, message
    assert evidence["unattached"] == 0 and "not judged" in message and says in message


def test_traffic_ops_send_frames_the_peer_receives(host: HostTarget) -> None:
    veth = host.call("traffic_interface", name="bcops0")
    try:
        received = Path(f"/sys/class/net/{veth['interface']}/statistics/rx_packets")
        before = int(received.read_text())
        sender = host.call("traffic_start", ifname=veth["peer"], pps=20_000, seconds=0.3)
        assert sender["nice"] == SENDER_NICE == _socket_sender_nice(veth["peer"]) == -10  # it keeps its CPU share
        time.sleep(0.4)  # the sender stops by itself after `seconds`
        traffic = host.call("traffic_stop", handle=sender["handle"])
        assert sender["sender"] == "socket" and sender["frame_len"] == 52  # the host has no pktgen
        assert 4_000 < traffic["sent"] <= 6_100 and traffic["failed"] == 0
        assert int(received.read_text()) - before == traffic["sent"] == traffic["rx_packets"] == traffic["tx_packets"]
        assert receiving_end(veth["peer"]) == veth["interface"] and receiving_end("lo") == "lo"
        flood = host.call("traffic_start", ifname=veth["peer"], pps=10_000_000, seconds=0.2)
        time.sleep(0.3)
        flooded = host.call("traffic_stop", handle=flood["handle"])
        assert flooded["sent"] > 64 * flooded["syscalls"]  # sendmmsg takes batches (up to 256), not one frame each
    finally:
        host.call("traffic_interface_del", interface=veth["interface"])
    assert not Path(f"/sys/class/net/{veth['interface']}").exists()
    assert kernel_modules(host) is None  # the host loads no module


def _socket_sender_nice(ifname: str) -> int:
    """The nice value of the socket sender sending out of `ifname`."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            if b"bpfcert.targets.traffic" in argv and ifname.encode() in argv:
                return int((cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()[16])
        except OSError:  # gone meanwhile
            continue
    raise LookupError(f"no socket sender on {ifname}")


def test_map_element_reads_a_value_by_map_id() -> None:
    fd = bpf.map_create(1, 4, 16, 4)  # BPF_MAP_TYPE_HASH
    try:
        bpf.map_update(fd, struct.pack("<I", 253), struct.pack("<QQ", 7, 9))
        map_id = bpf.map_info(fd)["id"]
        target = HostTarget()
        assert target.call("map_element", map_id=map_id, key_hex="fd000000") == {
            "value_hex": (7).to_bytes(8, "little").hex() + (9).to_bytes(8, "little").hex()
        }
        assert target.call("map_element", map_id=map_id, key_hex="01000000") == {"value_hex": None}
    finally:
        bpf.close(fd)


@dataclasses.dataclass(frozen=True)
class GuestRunner(discovery.Runner):
    """A runner started with the reference runtime's state on the guest's tmpfs (the guest's root is read-only)."""

    def launch(self, python: str) -> tuple[list[str], str, dict[str, str]]:
        argv, cwd, env = super().launch(python)
        return argv, cwd, {**env, "BPFCERT_REFERENCE_STATE": "/run/tmp/bpfcert-reference"}


@pytest.mark.vm
def test_upgrade_under_traffic_on_a_vm() -> None:
    """On a 6.1 guest, with its own veth and pktgen modules loaded: the reference runtime passes at the rate pktgen
    reaches, the gap_upgrade one fails; pktgen's thread sends at SENDER_NICE and gets its own nice back after."""
    from bpfcert.targets import target as targets

    target = targets.open_target("6.1")
    try:
        for folder, want in ((REPO / "runners" / "reference", Status.PASS), (GAP_UPGRADE, Status.FAIL)):
            loaded = discovery.load(folder)
            runner = GuestRunner(**{f.name: getattr(loaded, f.name) for f in dataclasses.fields(loaded)})
            with RunnerClient.start(target, runner) as client:
                result = rt_upg_002(client, target, V1, V2, pps=100_000, around=1.0)
            assert result.status is want, result.message
            evidence = result.evidence
            assert evidence["sender"] == "pktgen" and evidence["protocol"] == 17 and evidence["frame_len"] == 60
            assert evidence["sender_nice"] == SENDER_NICE
            assert isinstance(evidence["sent"], int) and evidence["sent"] > 10_000
            assert evidence["rx_packets"] == evidence["tx_packets"] == evidence["sent"]
            assert isinstance(evidence["bytes"], int) and evidence["bytes"] == 60 * evidence["counted_by_new"]
        veth = target.call("traffic_interface", name="bcnice0", modules=kernel_modules(target))
        try:
            sending = target.call("traffic_start", ifname=veth["peer"], pps=1_000, seconds=30)
            during = _guest_nice(target, "kpktgend_0")
            target.call("traffic_stop", handle=sending["handle"])
        finally:
            target.call("traffic_interface_del", interface=veth["interface"])
        assert sending["sender"] == "pktgen" and during == SENDER_NICE and _guest_nice(target, "kpktgend_0") == 0
        assert target.splats() == []
    finally:
        target.close()


def _guest_nice(target: Target, thread: str) -> int:
    """The nice value of the guest's kernel thread `thread`."""
    script = f'for p in /proc/[0-9]*; do [ "$(cat $p/comm)" = {thread} ] && cut -d" " -f19 $p/stat; done; read x'
    started = target.call("runner_start", argv=["/bin/sh", "-c", script], cwd="/")
    try:
        return int(target.call("runner_exchange", handle=started["handle"], line="")["line"])
    finally:
        target.call("runner_stop", handle=started["handle"])


class BigEndianKernel:
    """A big-endian (s390x) kernel's answers about one attached xdp-counter: its counter under protocol 253 holds
    7 packets and 9 bytes, key and value in the kernel's byte order."""

    name = "6.1/s390x"

    def info(self) -> TargetInfo:
        return TargetInfo(self.name, "6.1.0-50-s390x", "6.1", "6.1.176-1", None, "tcg", "s390x", 12.0)

    def call(self, op: str, **args: Any) -> Any:
        if op == "kernel_state":
            return {
                "links": [{"type": "xdp", "ifindex": 3, "prog_id": 10}],
                "programs": [{"id": 10, "map_ids": [20]}],
                "maps": [{"id": 20, "name": "proto_counters"}],
            }
        assert op == "map_element" and args["map_id"] == 20
        found = args["key_hex"] == struct.pack(">I", 253).hex()
        return {"value_hex": struct.pack(">QQ", 7, 9).hex() if found else None}


def test_counters_are_read_in_the_kernels_byte_order() -> None:
    from bpfcert.checks.runtime_traffic import _counted

    got = _counted(cast(Target, BigEndianKernel()), 3, 253)
    assert got == {"prog_id": 10, "map_id": 20, "counted": 7, "bytes": 9}


class _Booted:
    """A booted VM's info, as kernel_modules reads it."""

    def __init__(self, name: str, release: str) -> None:
        self.name, self.release = name, release

    def info(self) -> TargetInfo:
        return TargetInfo(self.name, self.release, "6.1", "6.1.1-1", None, "tcg", "x", 1.0)


def test_a_guests_module_tree_is_its_own_kernels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache is keyed by target name: a 6.1/s390x guest gets its own modules, not the x86_64 6.1 kernel's
    (same series); a guest booted from a kernel the cache no longer holds gets none (lo, the socket sender)."""
    import json

    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path))
    for arch, release in (("x86_64", "6.1.0-1-cloud-amd64"), ("s390x", "6.1.0-1-s390x")):
        meta = {"series": "6.1", "version": "6.1.1-1", "release": release, "package": "p", "deb_sha256": "0" * 64,
                "arch": arch, "modules_dir": f"lib/modules/{release}"}  # fmt: skip
        (tmp_path / "kernels" / release).mkdir(parents=True)
        (tmp_path / "kernels" / release / "kernel.json").write_text(json.dumps(meta))
    modules = kernel_modules(cast(Target, _Booted("6.1/s390x", "6.1.0-1-s390x")))
    assert modules == str(tmp_path / "kernels" / "6.1.0-1-s390x" / "lib/modules/6.1.0-1-s390x")
    assert kernel_modules(cast(Target, _Booted("6.1", "6.1.0-1-cloud-amd64"))) is not None
    assert kernel_modules(cast(Target, _Booted("6.1", "6.1.0-0-cloud-amd64"))) is None  # replaced since the boot


@pytest.mark.parametrize("fails", ["add_device", "report"])
def test_pktgen_gets_its_own_nice_back_when_a_run_fails(fails: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """pktgen's thread is reniced for a run and given its own nice back (its device removed) however the run ends:
    a refused command while setting up, or a stop whose report cannot be read."""
    from bpfcert.targets import traffic

    nice = {4242: 0}
    written: list[str] = []

    def write(name: str, command: str) -> None:
        written.append(command)
        if fails in command:
            raise OSError(f"pktgen refused {command}")

    monkeypatch.setattr(traffic, "_kernel_thread", lambda name: 4242)
    monkeypatch.setattr(os, "getpriority", lambda which, pid: nice[pid])
    monkeypatch.setattr(os, "setpriority", lambda which, pid, value: nice.__setitem__(pid, value))
    monkeypatch.setattr(traffic, "_pktgen_write", write)
    monkeypatch.setattr(traffic, "PKTGEN", "/nonexistent-pktgen")  # the report cannot be read
    with pytest.raises(OSError):
        sender = traffic._Pktgen("veth0", 1000, 1.0, SENDER_NICE)
        assert nice[4242] == SENDER_NICE  # while it runs
        sender.stop()
    assert nice[4242] == 0 and written[-1] == "rem_device_all"
