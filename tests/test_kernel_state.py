"""Kernel BPF state seen independently of any runtime: the `kernel_state` op (bpf.objects, bpf.pins) against
objects this test makes and against bpftool, snapshot diffs, and waiting for objects to go."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfcert import insn, kernel_state, uapi
from bpfcert.targets import bpf, ops
from bpfcert.targets.host import HostTarget
from bpfcert.targets.target import Target

ROOT = Path(__file__).resolve().parent.parent
HOLDER = str(ROOT / "tests" / "data" / "kernel_state_holder.py")
HEADER = Path("/usr/include/linux/bpf.h")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="enumerating BPF objects needs CAP_SYS_ADMIN")


# --- decoding info structs (no kernel needed) ---


def link_info(link_type: str, union: bytes, link_id: int = 9, prog_id: int = 4) -> bytes:
    return struct.pack("=IIII", uapi.LINK_TYPES.index(link_type), link_id, prog_id, 0) + union.ljust(48, b"\0")


@pytest.mark.parametrize(
    ("link_type", "union", "details"),
    [
        ("xdp", struct.pack("=I", 7), {"ifindex": 7}),
        ("tcx", struct.pack("=II", 3, 47), {"ifindex": 3, "attach_type": "tcx_egress"}),
        ("cgroup", struct.pack("=QI", 1 << 40, 1), {"cgroup_id": 1 << 40, "attach_type": "cgroup_inet_egress"}),
        ("netns", struct.pack("=II", 4026531840, 36), {"netns_ino": 4026531840, "attach_type": "sk_lookup"}),
        (
            "tracing",
            struct.pack("=III", 24, 1, 5120),
            {"attach_type": "trace_fentry", "target_obj_id": 1, "target_btf_id": 5120},
        ),
        ("perf_event", struct.pack("=I", 1), {}),
    ],
)
def test_link_info_decodes_each_link_types_attach_point(link_type: str, union: bytes, details: dict[str, Any]) -> None:
    assert bpf.decode_link_info(link_info(link_type, union)) == {"id": 9, "type": link_type, "prog_id": 4, **details}


def test_raw_tracepoint_link_info_carries_the_name_read_separately() -> None:
    raw = link_info("raw_tracepoint", struct.pack("=QI", 0xFFFF0000, 10))  # the buffer pointer, not decoded
    assert bpf.decode_link_info(raw, "sys_enter") == {
        "id": 9,
        "type": "raw_tracepoint",
        "prog_id": 4,
        "tp_name": "sys_enter",
    }


def test_info_from_an_older_kernels_shorter_struct_reads_missing_fields_as_zero() -> None:
    """The kernel fills only the bytes its struct has: a cgroup link info cut before attach_type, a map info
    cut before its name, a link type newer than the table."""
    cut = link_info("cgroup", struct.pack("=QI", 77, 1))[:24]
    assert bpf.decode_link_info(cut)["attach_type"] == "cgroup_inet_ingress"  # value 0, not garbage
    assert bpf.decode_link_info(cut)["cgroup_id"] == 77
    assert bpf.decode_link_info(struct.pack("=III", 99, 1, 2))["type"] == "99"
    short_map = struct.pack("=IIIIII", uapi.MAP_TYPES.index("array"), 5, 4, 8, 16, 0x400)
    assert bpf.decode_map_info(short_map) == {
        "id": 5,
        "type": "array",
        "name": "",
        "key_size": 4,
        "value_size": 8,
        "max_entries": 16,
        "flags": 0x400,
    }
    prog = struct.pack("=II8s", uapi.PROG_TYPES.index("xdp"), 3, bytes(range(8))).ljust(64, b"\0") + b"ks\0junk"
    assert bpf.decode_prog_info(prog, [1, 2]) == {
        "id": 3,
        "type": "xdp",
        "name": "ks",
        "tag": "0001020304050607",
        "map_ids": [1, 2],
    }


@pytest.mark.skipif(not HEADER.exists(), reason=f"no kernel UAPI header at {HEADER}")
def test_link_types_follow_the_installed_header() -> None:
    found = re.findall(r"BPF_LINK_TYPE_(\w+) = (\d+)", HEADER.read_text())
    assert len(found) > 8
    assert [(int(value), name.lower()) for name, value in found] == [
        (int(value), uapi.LINK_TYPES[int(value)]) for _, value in found
    ]


# --- snapshots compared (no kernel needed) ---


def snapshot(progs: list[int], maps: list[int], pins: tuple[tuple[str, int], ...] = ()) -> dict[str, Any]:
    return {
        "programs": [{"id": i, "type": "xdp"} for i in progs],
        "maps": [{"id": i, "type": "hash"} for i in maps],
        "links": [],
        "pins": [{"path": path, "kind": "map", "id": i} for path, i in pins],
        "unsupported": [],
    }


def test_diff_tells_what_appeared_and_what_vanished() -> None:
    before = snapshot([1, 2], [10], (("/b/m", 10),))
    after = snapshot([2, 3], [10], (("/b/m", 11),))  # the same path now holds another map: re-pinned
    change = kernel_state.diff(before, after)
    assert change.appeared == {
        "programs": [{"id": 3, "type": "xdp"}],
        "maps": [],
        "links": [],
        "pins": [{"path": "/b/m", "kind": "map", "id": 11}],
    }
    assert change.vanished["programs"] == [{"id": 1, "type": "xdp"}]
    assert change.vanished["pins"] == [{"path": "/b/m", "kind": "map", "id": 10}]
    assert change and not kernel_state.diff(after, after)


def test_wait_vanished_polls_until_the_ids_are_gone() -> None:
    states = iter([snapshot([1, 2], [10]), snapshot([1], [10]), snapshot([1], []), snapshot([1], [])])
    calls = []

    def take() -> dict[str, Any]:
        calls.append(1)
        return next(states)

    assert kernel_state.wait_vanished(take, {"programs": [2], "maps": [10]}) == {"programs": set(), "maps": set()}
    assert len(calls) == 3  # stopped at the first snapshot without them


def test_wait_vanished_gives_up_after_the_timeout_with_what_is_left() -> None:
    import time

    started = time.monotonic()
    left = kernel_state.wait_vanished(lambda: snapshot([1, 2], [10]), {"programs": [2, 5], "maps": [10]}, 0.3)
    assert left == {"programs": {2}, "maps": {10}}
    assert 0.3 <= time.monotonic() - started < 1.0


# --- the op on kernels that cannot enumerate links ---


def test_kernel_state_reports_links_unsupported_on_einval(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Before Linux 5.8 BPF_LINK_GET_NEXT_ID is EINVAL: links are reported unsupported, the rest still read;
    any other failure (EPERM without CAP_SYS_ADMIN) is not hidden."""

    def objects(kind: str, failure: int = errno.EINVAL) -> list[dict[str, Any]]:
        if kind == "link":
            raise bpf.BpfSyscallError("BPF_LINK_GET_NEXT_ID", failure)
        return [{"id": 1, "kind": kind}]

    monkeypatch.setattr(bpf, "objects", objects)
    state = ops.kernel_state(bpffs=str(tmp_path))
    assert state == {
        "programs": [{"id": 1, "kind": "prog"}],
        "maps": [{"id": 1, "kind": "map"}],
        "links": [],
        "pins": [],
        "unsupported": ["links"],
    }
    monkeypatch.setattr(bpf, "objects", lambda kind: objects(kind, errno.EPERM))
    with pytest.raises(bpf.BpfSyscallError, match="BPF_LINK_GET_NEXT_ID failed: Operation not permitted"):
        ops.kernel_state(bpffs=str(tmp_path))


def test_pins_of_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotADirectoryError, match=f"bpffs directory {tmp_path}/nope does not exist"):
        bpf.pins(str(tmp_path / "nope"))


# --- on the host kernel (root) ---


@contextlib.contextmanager
def bpffs_mount() -> Iterator[str]:
    """A private bpffs mounted on a fresh temporary directory, unmounted and removed afterwards."""
    where = tempfile.mkdtemp(prefix="bpfcert-bpffs-")
    mounted = subprocess.run(["mount", "-t", "bpf", "bpf", where], capture_output=True, text=True)
    try:
        if mounted.returncode:
            pytest.skip(f"cannot mount a bpffs here: {mounted.stderr.strip()}")
        yield where
    finally:
        if not mounted.returncode:
            subprocess.run(["umount", where], check=True)
        os.rmdir(where)


@pytest.fixture
def private_bpffs() -> Iterator[str]:
    with bpffs_mount() as where:
        yield where


def bpftool(kind: str, object_id: int) -> dict[str, Any]:
    """`bpftool KIND show id ID -j`: the independent oracle."""
    run = subprocess.run(["bpftool", kind, "show", "id", str(object_id), "-j"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def agrees_with_bpftool(kind: str, record: dict[str, Any]) -> None:
    """The fields bpftool shows too are equal (bpftool names some differently, and omits empty map_ids)."""
    oracle = bpftool(kind, record["id"])
    renamed = {"key_size": "bytes_key", "value_size": "bytes_value"}
    shown = {key: oracle[renamed.get(key, key)] for key in record if renamed.get(key, key) in oracle}
    if kind == "prog":
        shown.setdefault("map_ids", [])
    assert shown == {key: record[key] for key in shown}
    assert set(record) - set(shown) <= {"ifindex"}  # bpftool 7.1 does not show an XDP link's


def state(bpffs: str) -> dict[str, Any]:
    found: dict[str, Any] = ops.OPS["kernel_state"](bpffs=bpffs)
    return found


def map_using_program(map_fd: int, name: str) -> int:
    code = [
        insn.st_mem("W", 10, -4, 0),
        insn.mov64_reg(2, 10),
        insn.alu64_imm("add", 2, -4),
        insn.ld_map_fd(1, map_fd),
        insn.call(bpf.HELPER_NAMES.index("map_lookup_elem")),
        insn.mov64_imm(0, 2),
        insn.exit_(),
    ]
    return bpf.prog_load(bpf.PROG_TYPES.index("xdp"), insn.assemble(code), name=name)


@needs_root
def test_snapshot_shows_a_pinned_program_and_map_and_the_diff_shows_them_gone(private_bpffs: str) -> None:
    before = state(private_bpffs)
    map_fd = bpf.map_create(bpf.MAP_TYPES.index("lru_hash"), 4, 16, 32, 0, name="ks_host_map")
    prog_fd = map_using_program(map_fd, "ks_host_prog")
    os.mkdir(f"{private_bpffs}/pkg")
    bpf.obj_pin(prog_fd, f"{private_bpffs}/pkg/prog")
    bpf.obj_pin(map_fd, f"{private_bpffs}/map")
    map_id, prog_id = bpf.map_info(map_fd)["id"], bpf.prog_info(prog_fd)["id"]
    during = state(private_bpffs)
    appeared = kernel_state.diff(before, during).appeared
    program = next(p for p in appeared["programs"] if p["id"] == prog_id)
    assert program["type"] == "xdp" and program["name"] == "ks_host_prog" and program["map_ids"] == [map_id]
    map_record = next(m for m in appeared["maps"] if m["id"] == map_id)
    assert map_record == {
        "id": map_id,
        "type": "lru_hash",
        "name": "ks_host_map",
        "key_size": 4,
        "value_size": 16,
        "max_entries": 32,
        "flags": 0,
    }
    assert appeared["pins"] == [
        {"path": f"{private_bpffs}/map", "kind": "map", "id": map_id},
        {"path": f"{private_bpffs}/pkg/prog", "kind": "prog", "id": prog_id},
    ]
    agrees_with_bpftool("prog", program)
    agrees_with_bpftool("map", map_record)

    os.unlink(f"{private_bpffs}/pkg/prog")
    os.unlink(f"{private_bpffs}/map")
    bpf.close(prog_fd)
    bpf.close(map_fd)
    gone = {"programs": [prog_id], "maps": [map_id]}
    assert kernel_state.wait_vanished(lambda: state(private_bpffs), gone) == {"programs": set(), "maps": set()}
    vanished = kernel_state.diff(during, state(private_bpffs)).vanished
    assert {p["id"] for p in vanished["programs"]} >= {prog_id} and {m["id"] for m in vanished["maps"]} >= {map_id}
    assert len(vanished["pins"]) == 2


@needs_root
def test_pins_never_follow_symlinks_or_enter_other_mounts(private_bpffs: str) -> None:
    """Pins in another bpffs reached by a symlink (to a directory, to a pin) or mounted below are not listed."""
    map_fd = bpf.map_create(bpf.MAP_TYPES.index("array"), 4, 4, 1, name="ks_inside")
    try:
        bpf.obj_pin(map_fd, f"{private_bpffs}/inside")
        with bpffs_mount() as elsewhere:
            bpf.obj_pin(map_fd, f"{elsewhere}/outside")
            os.symlink(elsewhere, f"{private_bpffs}/to-dir")
            os.symlink(f"{elsewhere}/outside", f"{private_bpffs}/to-pin")
            os.mkdir(f"{private_bpffs}/mnt")
            subprocess.run(["mount", "--bind", elsewhere, f"{private_bpffs}/mnt"], check=True)
            try:
                assert os.path.exists(f"{private_bpffs}/mnt/outside")
                found = bpf.pins(private_bpffs)
            finally:
                subprocess.run(["umount", f"{private_bpffs}/mnt"], check=True)
            os.unlink(f"{private_bpffs}/to-dir")
            os.unlink(f"{private_bpffs}/to-pin")
        assert [pin["path"] for pin in found] == [f"{private_bpffs}/inside"]
    finally:
        bpf.close(map_fd)


@needs_root
def test_cgroup_link_shows_its_cgroup_and_attach_type() -> None:
    unified = Path("/sys/fs/cgroup/unified")
    cgroup_root = unified if unified.is_dir() else Path("/sys/fs/cgroup")
    if not (cgroup_root / "cgroup.procs").exists():
        pytest.skip("no cgroup v2 hierarchy mounted")
    cgroup = Path(tempfile.mkdtemp(prefix="bpfcert-ks-", dir=cgroup_root))
    ingress = bpf.ATTACH_TYPES.index("cgroup_inet_ingress")
    prog_fd = bpf.prog_load(
        bpf.PROG_TYPES.index("cgroup_skb"),
        insn.assemble([insn.mov64_imm(0, 1), insn.exit_()]),
        expected_attach_type=ingress,
        name="ks_cgroup",
    )
    dir_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY)
    try:
        link_fd, err = bpf.try_link_create(prog_fd, dir_fd, ingress)
        assert link_fd >= 0, os.strerror(err)
        try:
            link_id = bpf.link_info(link_fd)["id"]
            link = next(link for link in bpf.objects("link") if link["id"] == link_id)
            assert link == {
                "id": link_id,
                "type": "cgroup",
                "prog_id": bpf.prog_info(prog_fd)["id"],
                "cgroup_id": cgroup.stat().st_ino,  # a cgroup v2 id is its kernfs inode number
                "attach_type": "cgroup_inet_ingress",
            }
            agrees_with_bpftool("link", link)
        finally:
            bpf.close(link_fd)
    finally:
        os.close(dir_fd)
        bpf.close(prog_fd)
        cgroup.rmdir()


@contextlib.contextmanager
def holding(target: Target, directory: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Run the holder on `target`, have it load and pin under `directory`; yields (what it holds, the kernel
    state seen meanwhile) after checking that state; then has it release everything and checks it all went."""
    before = target.call("kernel_state", bpffs=directory)
    argv = [target.python, "-I", "-S", HOLDER, str(ROOT)]
    handle = target.call("runner_start", argv=argv)["handle"]
    try:
        held = json.loads(target.call("runner_exchange", handle=handle, line=f"load {directory}", timeout=60)["line"])
        during = target.call("kernel_state", bpffs=directory)
        assert during["unsupported"] == []
        appeared = kernel_state.diff(before, during).appeared
        programs = {p["id"]: p for p in appeared["programs"]}
        assert programs[held["xdp"]]["type"] == "xdp" and programs[held["xdp"]]["name"] == "ks_xdp"
        assert programs[held["xdp"]]["map_ids"] == [held["map"]]
        assert programs[held["sk_lookup"]]["type"] == "sk_lookup" and programs[held["sk_lookup"]]["map_ids"] == []
        maps = {m["id"]: m for m in appeared["maps"]}
        assert maps[held["map"]]["type"] == "hash" and maps[held["map"]]["name"] == "ks_counts"
        links = {link["id"]: link for link in appeared["links"]}
        assert links[held["xdp_link"]] == {"id": held["xdp_link"], "type": "xdp", "prog_id": held["xdp"], "ifindex": 1}
        assert links[held["netns_link"]] == {
            "id": held["netns_link"],
            "type": "netns",
            "prog_id": held["sk_lookup"],
            "netns_ino": held["netns_ino"],
            "attach_type": "sk_lookup",
        }
        kinds = {"map": "map", "xdp": "prog", "sk_lookup": "prog", "xdp_link": "link", "netns_link": "link"}
        assert sorted((p["path"], p["kind"], p["id"]) for p in appeared["pins"]) == sorted(
            (f"{held['dir']}/{key}", kind, held[key]) for key, kind in kinds.items()
        )
        yield held, during
        assert target.call("runner_exchange", handle=handle, line="release")["line"] == "{}"
        gone = {
            "programs": [held["xdp"], held["sk_lookup"]],
            "maps": [held["map"]],
            "links": [held["xdp_link"], held["netns_link"]],
        }
        take = lambda: target.call("kernel_state", bpffs=directory)  # noqa: E731
        assert kernel_state.wait_vanished(take, gone) == {kind: set() for kind in gone}
        assert not [p for p in take()["pins"] if p["path"].startswith(held["dir"])]
    finally:
        target.call("runner_stop", handle=handle)


@needs_root
def test_links_and_pins_on_the_host_agree_with_bpftool(private_bpffs: str) -> None:
    """XDP and netns links, made by a process in a network namespace of its own (no interface of the host is
    touched), through the same runner ops the VM targets use."""
    host = HostTarget()
    try:
        with holding(host, private_bpffs) as (held, during):
            for kind, key in (("prog", "programs"), ("map", "maps"), ("link", "links")):
                for record in during[key]:
                    if record["id"] in held.values():
                        agrees_with_bpftool(kind, record)
    finally:
        host.close()


def test_kernel_state_on_every_target(target: Target) -> None:
    """The same on each kernel target (5.10 is the oldest: links and their enumeration are all there)."""
    if target.name == "host":
        with bpffs_mount() as where, holding(target, where):
            pass
    else:
        with holding(target, "/sys/fs/bpf"):
            pass


def test_wait_vanished_judges_the_callers_snapshot_first() -> None:
    """A snapshot the caller just took is judged in place of the first: none taken when it shows the ids gone."""
    calls = []

    def take() -> dict[str, Any]:
        calls.append(1)
        return snapshot([1], [])

    gone = {"programs": [2], "maps": [10]}
    assert kernel_state.wait_vanished(take, gone, first=snapshot([1], [])) == {"programs": set(), "maps": set()}
    assert calls == []
    assert kernel_state.wait_vanished(take, gone, first=snapshot([1, 2], [10])) == {"programs": set(), "maps": set()}
    assert len(calls) == 1  # the next snapshot, after a pause
