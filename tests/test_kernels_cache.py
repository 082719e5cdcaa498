"""The kernels cache (offline list, missing-kernel message) and the initramfs it feeds (cpio, modules)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfcert import cli
from bpfcert.errors import FormatError, TargetError
from bpfcert.targets import debian, initramfs, kernels, machines, vm
from bpfcert.targets.kernels import CachedKernel
from bpfcert.targets.machines import MACHINES, Machine
from bpfcert.targets.target import resolve_names


def fake_kernel(cache: Path, series: str, version: str, release: str, arch: str = "x86_64") -> Path:
    root = cache / "kernels" / (version if arch == "x86_64" else f"{version}-{arch}")
    (root / "lib" / "modules" / release).mkdir(parents=True)
    (root / "boot").mkdir()
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ")
    (root / "boot" / f"config-{release}").write_text("CONFIG_BPF=y\n")
    meta = {
        "series": series,
        "arch": arch,
        "version": version,
        "release": release,
        "package": f"linux-image-{release}",
        "deb_sha256": "ab" * 32,
        **kernels._locate(root),
    }
    (root / "kernel.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated cache dir; any apt or dpkg-deb run (i.e. network) fails the test."""
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path))

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"unexpected subprocess {args[0]!r}: the cache must work offline")

    monkeypatch.setattr(subprocess, "run", no_network)
    return tmp_path


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BPFCERT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert kernels.cache_dir() == tmp_path / "xdg" / "bpfcert"
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path / "own"))
    assert kernels.cache_dir() == tmp_path / "own"


def test_list_offline_with_warm_cache(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake_kernel(cache, "5.10", "5.10.250-1", "5.10.0-40-cloud-amd64")
    fake_kernel(cache, "5.10", "5.10.262-1", "5.10.0-46-cloud-amd64")  # the newer one wins
    fake_kernel(cache, "6.1", "6.1.1-1", "6.1.0-1-s390x", "s390x")  # the same Debian version as amd64's 6.1 has
    assert cli.main(["kernels", "list", "--format", "json"]) == 0
    rows = {row["series"]: row for row in json.loads(capsys.readouterr().out)["kernels"]}
    assert list(rows) == ["5.10", "6.1", "6.12", "7.2", "6.1/arm64", "6.12/arm64", "6.1/s390x", "6.12/s390x"]
    assert rows["6.1/s390x"]["cached"] and rows["6.1/s390x"]["arch"] == "s390x" and not rows["6.1/arm64"]["cached"]
    assert rows["5.10"]["cached"] and rows["5.10"]["version"] == "5.10.262-1"
    assert rows["5.10"]["release"] == "5.10.0-46-cloud-amd64" and rows["5.10"]["deb_sha256"] == "ab" * 32
    assert not rows["6.1"]["cached"] and rows["6.1"]["version"] is None
    assert kernels.cached_kernel("6.1/s390x").release == "6.1.0-1-s390x"
    assert cli.main(["kernels", "list"]) == 0
    text = capsys.readouterr().out
    assert "5.10.262-1" in text and "no (bpfcert kernels fetch 6.1)" in text


def test_fetch_if_missing_with_warm_cache_needs_no_network(cache: Path) -> None:
    for series, version in [
        ("5.10", "5.10.1-1"),
        ("6.1", "6.1.1-1"),
        ("6.12", "6.12.1-1"),
        ("7.2", "7.2.1-1"),
    ]:
        fake_kernel(cache, series, version, f"{version}-cloud-amd64")
    assert kernels.fetch(list(kernels.SERIES_SPECS), if_missing=True) == []
    assert cli.main(["kernels", "fetch", "--if-missing"]) == 0


def test_missing_kernel_names_the_fetch_command(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(TargetError, match=r"run `bpfcert kernels fetch 6\.1`") as err:
        kernels.cached_kernel("6.1")
    assert err.value.kind == "missing-kernel"
    from bpfcert.targets import vm

    with pytest.raises(TargetError, match=r"bpfcert kernels fetch 7\.2"):
        vm.boot("7.2")


def test_damaged_entry_counts_as_not_cached(cache: Path) -> None:
    root = fake_kernel(cache, "6.1", "6.1.1-1", "6.1.0-1-cloud-amd64")
    (root / "kernel.json").write_text("{not json")
    assert "6.1" not in kernels.cached_kernels()


def test_unknown_series_is_a_typed_error(cache: Path) -> None:
    with pytest.raises(TargetError, match="unknown kernel series"):
        kernels.fetch(["4.19"])
    with pytest.raises(TargetError, match=r"unknown target 4\.19"):
        resolve_names("host,4.19")


def test_resolve_names(cache: Path) -> None:
    assert resolve_names("all") == ["host", "5.10", "6.1", "6.12", "7.2"]
    assert resolve_names("host, 6.1,6.1") == ["host", "6.1"]
    assert resolve_names(None) == ["host"]
    fake_kernel(cache, "6.12", "6.12.1-1", "6.12.1+deb13-cloud-amd64")
    assert resolve_names(None) == ["host", "6.12"]


def test_locate_handles_both_debian_layouts(tmp_path: Path) -> None:
    usr = tmp_path / "usr" / "lib" / "modules" / "7.2.1+deb14-cloud-amd64"
    usr.mkdir(parents=True)
    (usr / "vmlinuz").write_bytes(b"MZ")
    (usr / "config").write_text("")
    found = kernels._locate(tmp_path)
    assert found["release"] == "7.2.1+deb14-cloud-amd64"
    assert found["vmlinuz"] == "usr/lib/modules/7.2.1+deb14-cloud-amd64/vmlinuz"
    (usr / "config").unlink()
    with pytest.raises(TargetError, match="no config"):
        kernels._locate(tmp_path)


def test_private_apt_sources_cover_every_suite(tmp_path: Path) -> None:
    apt = debian.PrivateApt(tmp_path)
    apt.configure()
    sources = (tmp_path / "sources.list").read_text()
    for suite in ("bullseye", "bookworm", "trixie", "sid"):
        assert f" {suite} main" in sources
    assert "sid-security" not in sources and debian.DEBIAN_KEYRING in sources
    assert any(opt.startswith("-oDir::State::status=") for opt in apt.options())
    assert "-oAPT::Architectures::=amd64" in apt.options()


def test_private_apt_of_a_foreign_arch_has_its_own_root_architecture_and_suites(cache: Path) -> None:
    apt = debian.PrivateApt.of(machines.ARCHES["s390x"])
    assert apt.root == cache / "apt-s390x" and debian.PrivateApt.of(machines.ARCHES["x86_64"]).root == cache / "apt"
    apt.configure()
    suites = re.findall(r"debian (\S+) main", (apt.root / "sources.list").read_text())
    assert suites == ["bookworm", "trixie"]  # the suites of the s390x series (bookworm is also the userland's)
    assert "-oAPT::Architectures::=s390x" in apt.options() and "-oAPT::Architecture=s390x" in apt.options()


# initramfs: the newc cpio format

names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=12)
entries = st.lists(
    st.builds(initramfs.CpioEntry, names, st.sampled_from([0o100644, 0o100755, 0o040755]), st.binary(max_size=64)),
    max_size=8,
    unique_by=lambda e: e.name,
)


@given(entries)
def test_newc_round_trip(items: list[initramfs.CpioEntry]) -> None:
    blob = initramfs.write_newc(items)
    assert len(blob) % 4 == 0
    assert initramfs.read_newc(blob) == items


@given(entries, st.data())
def test_newc_reader_rejects_truncation_with_format_error(
    items: list[initramfs.CpioEntry], data: st.DataObject
) -> None:
    blob = initramfs.write_newc(items)
    cut = data.draw(st.integers(0, len(blob) - 1))
    with pytest.raises(FormatError):
        initramfs.read_newc(blob[:cut])


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static is not installed")
def test_newc_is_read_by_busybox_cpio(tmp_path: Path) -> None:
    items = [
        initramfs.CpioEntry("bin", 0o040755),
        initramfs.CpioEntry("bin/tool", 0o100755, b"#!/bin/sh\n"),
        initramfs.CpioEntry("data.txt", 0o100644, b"x" * 5),
        initramfs.CpioEntry("sh", 0o120777, b"bin/tool"),
    ]
    proc = subprocess.run(
        ["/bin/busybox", "cpio", "-id"],
        input=initramfs.write_newc(items),
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    assert proc.returncode == 0
    assert (tmp_path / "bin" / "tool").read_bytes() == b"#!/bin/sh\n"
    assert (tmp_path / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "data.txt").read_bytes() == b"xxxxx"
    assert (tmp_path / "sh").readlink() == Path("bin/tool")


def test_init_script_loads_modules_in_order_and_mounts_read_only() -> None:
    script = initramfs.init_script(["virtio_ring", "virtio", "virtiofs"], ["/usr/bin/python3", "-I", "a b.py"])
    assert script.index("insmod /modules/virtio_ring.ko") < script.index("insmod /modules/virtiofs.ko")
    assert "mount -t virtiofs -o ro hostroot /root" in script
    assert "chroot /root /usr/bin/python3 -I 'a b.py'" in script
    assert "bpfcert-init: agent exited" in script


def test_the_guest_agent_finds_the_tools_runners_need_as_the_host_does() -> None:
    # the agent runs in the host root: with PATH=/bin alone (/usr/bin on Debian) bpftool, tc and xdp-loader,
    # in /usr/sbin, were "No such file or directory" in every guest while the host's needs check found them
    import re
    import shutil

    lines = initramfs.init_script([], ["/usr/bin/python3"]).splitlines()
    chroot = next(i for i, line in enumerate(lines) if line.startswith("chroot "))
    path = [m.group(1) for line in lines[:chroot] if (m := re.fullmatch(r"export PATH=(\S+)", line))][-1]
    tools = [t for t in ("bpftool", "tc", "ip", "xdp-loader", "python3") if shutil.which(t)]
    assert tools, "none of the runners' tools is installed here"
    assert [t for t in tools if shutil.which(t, path=path) is None] == []


def cached_or_skip(series: str) -> kernels.CachedKernel:
    kernel = kernels.cached_kernels().get(series)
    if kernel is None:
        pytest.skip(f"kernel {series} not cached; run `bpfcert kernels fetch {series}`")
    return kernel


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        ("5.10", ["virtio_ring", "virtio", "virtio_pci", "virtio_console", "fuse", "virtiofs"]),
        (
            "6.1",
            [
                "virtio_ring",
                "virtio",
                "virtio_pci_modern_dev",
                "virtio_pci_legacy_dev",
                "virtio_pci",
                "virtio_console",
                "fuse",
                "virtiofs",
            ],
        ),
        ("6.12", []),
        ("7.2", []),
    ],
)
def test_modules_follow_depends_and_skip_builtins(series: str, expected: list[str]) -> None:
    loaded = initramfs.modules_to_load(cached_or_skip(series))
    names_loaded = [name for name, _ in loaded]
    assert sorted(names_loaded) == sorted(expected)
    for name, blob in loaded:
        assert blob[:4] == b"\x7fELF", f"{name} is not an uncompressed ELF module"
    if expected:  # dependencies come before their users
        assert names_loaded.index("virtio") < names_loaded.index("virtio_pci") < names_loaded.index("virtiofs")
        assert names_loaded.index("fuse") < names_loaded.index("virtiofs")


@pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static is not installed")
def test_initramfs_is_cached_per_agent_and_stale_ones_are_pruned(cache: Path) -> None:
    root = fake_kernel(cache, "6.12", "6.12.1-1", "6.12.1+deb13-cloud-amd64")
    kernel = kernels.cached_kernel("6.12")
    builtin = "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/char/virtio_console.ko\nkernel/fs/fuse/virtiofs.ko\n"
    (kernel.modules_dir / "modules.builtin").write_text(builtin)
    assert kernel.modules_dir.is_relative_to(root)
    first = initramfs.build(kernel, ["/usr/bin/python3", "agent.py"], cache)
    assert initramfs.build(kernel, ["/usr/bin/python3", "agent.py"], cache) == first
    other_kernel = cache / "initramfs" / "5.10.0-1-cloud-amd64-0000000000000000.cpio"
    other_kernel.write_bytes(b"")
    week_old = time.time() - initramfs.STALE_SECONDS - 60
    os.utime(first, (week_old, week_old))
    os.utime(other_kernel, (week_old, week_old))
    second = initramfs.build(kernel, ["/usr/bin/python3", "other-agent.py"], cache)
    assert second != first and not first.exists(), "a week-old initramfs of the same kernel is removed"
    assert other_kernel.exists(), "other kernels' images are left to their own builds"
    entries = {e.name: e for e in initramfs.read_newc(second.read_bytes())}
    assert entries["init"].mode == 0o100755 and b"other-agent.py" in entries["init"].data


def test_module_without_modinfo_is_a_format_error() -> None:
    with pytest.raises(FormatError):
        initramfs._elf_section(b"\x7fELF" + b"\0" * 60, ".modinfo")


@pytest.mark.parametrize("series", ["5.10", "7.2"])  # an lz4 and a zstd bzImage
def test_uncompressed_kernel_is_a_whole_elf(series: str) -> None:
    vmlinux = kernels.uncompressed_kernel(cached_or_skip(series))
    assert vmlinux is not None, "PVH kernels with lz4/zstd payloads are extracted"
    blob = vmlinux.read_bytes()
    assert kernels._complete_elf64(blob)
    assert not kernels._complete_elf64(blob[: len(blob) // 2])


def test_kernel_without_pvh_keeps_its_bzimage(cache: Path) -> None:
    root = fake_kernel(cache, "6.1", "6.1.1-1", "6.1.0-1-cloud-amd64")
    assert kernels.uncompressed_kernel(kernels.cached_kernel("6.1")) is None
    assert not (root / "vmlinux").exists()


def test_fetch_prints_one_progress_line_per_state_change(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Progress goes to stderr even when it is not a terminal (as under pytest): one line per state change."""
    fake_kernel(cache, "6.1", "6.1.1-1", "6.1.0-1-cloud-amd64")

    class Apt:
        @classmethod
        def of(cls, arch: object) -> Apt:
            return cls()

        def configure(self) -> None:
            pass

        def run(self, *args: str, **kwargs: object) -> None:
            pass

    def download(apt: object, machine: Machine, packages: list[str], version: str, target: Path) -> CachedKernel:
        fake_kernel(cache, machine.spec.series, version, "5.10.0-9-cloud-amd64")
        return kernels.cached_kernel(machine.name)

    versions = {"5.10": "5.10.9-1", "6.1": "6.1.1-1"}
    monkeypatch.setattr(kernels, "PrivateApt", Apt)
    monkeypatch.setattr(
        kernels, "_resolve", lambda apt, m, excluded: ([f"linux-image-{m.spec.series}"], versions[m.spec.series])
    )
    monkeypatch.setattr(kernels, "_download_extract", download)
    assert cli.main(["kernels", "fetch", "5.10", "6.1"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "kernels: updating the private apt lists (amd64)",
        "kernels: 5.10 downloading linux-image-5.10 (5.10.9-1)",
        "kernels: 5.10 cached (5.10.0-9-cloud-amd64)",
        "kernels: 6.1 already cached (6.1.1-1)",
    ]


def test_guests_on_the_host_root_run_the_distribution_python_of_this_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """An x86_64 guest runs /usr/bin/python3.X (Debian's optimized build) when it is this interpreter's version and
    runnable, else this interpreter; a foreign guest always runs this interpreter's path (its userland's python is
    bound there). This interpreter is taken to be elsewhere (a pyenv build), so that the test tells the two apart
    on a host whose own python is /usr/bin/python3.X too."""
    here = "/opt/pyenv/versions/3.x/bin/python3"
    monkeypatch.setattr(sys, "executable", here)
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    native, foreign = MACHINES[("6.1", "x86_64")], MACHINES[("6.1", "s390x")]
    runnable = {system}
    monkeypatch.setattr(os, "access", lambda path, mode: path in runnable)
    assert vm.guest_python(native) == system
    assert vm.guest_python(foreign) == here
    runnable.clear()
    assert vm.guest_python(native) == here
    assert vm.agent_argv(system, False)[:3] == [system, "-I", "-S"]
