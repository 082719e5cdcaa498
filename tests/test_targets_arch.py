"""Targets of other architectures: the machine table (names, QEMU command lines, bpf(2) numbers), the foreign
guest's Debian userland (dependency walk, merged /usr, cache per architecture and versions), the initramfs of a
big-endian kernel, and -- on every selected target (`--target 6.1/arm64,6.1/s390x`) -- programs and map values in
the kernel's own byte order, and BTF and JIT reported as the kernel has them."""

from __future__ import annotations

import configparser
import json
import os
import re
import struct
import subprocess
from pathlib import Path

import pytest

from bpfcert import insn
from bpfcert.errors import TargetError
from bpfcert.targets import bpf, debian, initramfs, kernels, machines, userland
from bpfcert.targets.kernels import CachedKernel
from bpfcert.targets.machines import ARCHES, MACHINES, Machine
from bpfcert.targets.series import ALL_ARCH, SERIES, TargetName
from bpfcert.targets.target import Target, resolve_names

ROOT = Path(__file__).resolve().parent.parent
HOLDER = str(ROOT / "tests" / "data" / "map_holder.py")


# --- the machine table ---


def test_every_row_is_named_series_slash_arch_and_parses_back() -> None:
    for (series, arch), machine in MACHINES.items():
        name = TargetName.parse(machine.name)
        assert (name.series, name.arch, str(name)) == (series, arch, machine.name)
        assert ("/" in machine.name) is (arch != "x86_64")
    assert TargetName.parse("6.1/aarch64") == TargetName.parse("6.1/arm64") == TargetName("6.1", "aarch64")
    for unknown in ("6.1/mips", "5.10/s390x", "6.1/", "/arm64"):
        with pytest.raises(TargetError, match="unknown target"):
            TargetName.parse(unknown)


def test_all_stays_x86_64_and_all_arch_adds_the_others() -> None:
    assert resolve_names("all") == ["host", *SERIES]
    assert resolve_names("all-arch") == ["host", *ALL_ARCH]
    assert {"6.1/arm64", "6.12/arm64", "6.1/s390x", "6.12/s390x"} <= set(ALL_ARCH) and ALL_ARCH[: len(SERIES)] == SERIES
    assert resolve_names("6.1/arm64, 6.1/s390x,6.1/aarch64") == ["6.1/arm64", "6.1/s390x"]


def test_kernels_is_the_default_without_the_host() -> None:
    """`--target kernels` (tox's guests env, beside the host run) is every cached kernel the default takes, no host."""
    assert resolve_names(None)[0] == "host"
    assert resolve_names("kernels") == resolve_names(None)[1:]


def test_tox_arch_envs_follow_the_machine_table() -> None:
    """tox cannot import Python: its arch-{...} factors and their targets must follow the table by hand."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    (section,) = [s for s in config.sections() if s.startswith("testenv:arch-")]
    foreign = {a.debian: [m.name for m in MACHINES.values() if m.arch is a] for a in ARCHES.values()}
    factors = re.fullmatch(r"testenv:arch-\{(.+)\}", section)
    assert factors is not None and factors.group(1).split(",") == [d for d in foreign if d != "amd64"]
    setenv = re.findall(r"^(\S+): BPFCERT_TARGETS = (\S+)$", config[section]["setenv"], re.MULTILINE)
    assert setenv == [(d, ",".join(names)) for d, names in foreign.items() if d != "amd64"]


def _argv(machine: Machine) -> list[str]:
    return machine.qemu_argv("tcg", 256, "IMAGE", "INITRD", "CONSOLE", "SOCKET", "TAG")


@pytest.mark.parametrize("name", ["6.1", "6.1/arm64", "6.1/s390x"])
def test_qemu_command_line_comes_from_the_row(name: str) -> None:
    machine = TargetName.parse(name).machine
    argv = _argv(machine)
    assert argv[0] == machine.arch.qemu and "-accel" in argv and argv[argv.index("-cpu") + 1] == machine.arch.tcg_cpu
    assert not any("{" in a for a in argv), "a placeholder left unfilled"
    assert "file:CONSOLE" in argv and argv[argv.index("-append") + 1] == machine.arch.cmdline
    assert machine.arch.cmdline.split()[0] == {"6.1": "console=ttyS0", "6.1/arm64": "console=ttyAMA0"}.get(
        name, "console=ttysclp0"
    )


def test_virtiofs_on_little_endian_boards_9p_on_big_endian() -> None:
    """FUSE over virtiofs travels in the guest's byte order, which virtiofsd cannot read: s390x uses 9p."""
    x86, arm64, s390x = (TargetName.parse(n).machine for n in ("6.1", "6.1/arm64", "6.1/s390x"))
    assert x86.virtiofsd and arm64.virtiofsd and not s390x.virtiofsd
    assert "vhost-user-fs-pci,chardev=vfs,tag=TAG" in _argv(arm64) and "memory-backend=mem" in _argv(arm64)
    assert "virtio-9p-ccw,fsdev=vfs,mount_tag=TAG" in _argv(s390x) and "SOCKET" not in " ".join(_argv(s390x))
    assert s390x.arch.share_mount.startswith("-t 9p ") and "9p" in s390x.arch.modules
    for machine in (x86, arm64, s390x):  # the agent talks over a virtio console, never an emulated UART
        assert "virtconsole,chardev=agent" in _argv(machine) and "chardev:agent" not in _argv(machine)
        assert "virtio_console" in machine.arch.modules


def test_bpf_syscall_number_per_machine() -> None:
    assert [machines.bpf_syscall(m) for m in ("x86_64", "aarch64", "s390x", "riscv64")] == [321, 280, 351, -1]
    assert machines.bpf_syscall(os.uname().machine) == bpf._NR
    assert {a.name: a.byteorder for a in ARCHES.values()} == {"x86_64": "little", "aarch64": "little", "s390x": "big"}


def test_kvm_only_for_the_hosts_own_architecture() -> None:
    host = os.uname().machine
    assert all(m.kvm_possible is (m.arch.name == host) for m in MACHINES.values())


# --- kernels and userland of a foreign architecture (no network) ---


def test_private_apt_of_a_foreign_arch_asks_for_that_architecture(tmp_path: Path) -> None:
    apt = debian.PrivateApt(tmp_path, ARCHES["aarch64"])
    apt.configure()
    assert "-oAPT::Architecture=arm64" in apt.options()
    assert " bullseye " not in (tmp_path / "sources.list").read_text()  # 5.10 is not an arm64 target


DEPENDS = """python3.11-minimal
  PreDepends: libc6
  Depends: libpython3.11-minimal
 |Depends: libexpat1
  Depends: libexpat1t64
  Depends: <libssl3-virtual>
    libssl3t64
 |Depends: <mime-support-virtual>
  Depends: media-types
libbpf1
  Depends: libelf1
libexpat1t64
"""


def test_dependencies_take_the_first_real_alternative_of_each_group() -> None:
    assert userland.dependency_graph(DEPENDS) == {
        "python3.11-minimal": {"libc6", "libpython3.11-minimal", "libexpat1", "media-types"},
        "libbpf1": {"libelf1"},
        "libexpat1t64": set(),  # listed (apt recursed into it) but nothing reaches it
    }


def test_merge_usr_moves_top_level_dirs_under_usr(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "busybox").write_bytes(b"bb")
    (tmp_path / "lib" / "aarch64-linux-gnu").mkdir(parents=True)
    (tmp_path / "lib" / "ld-linux-aarch64.so.1").symlink_to("aarch64-linux-gnu/ld-2.36.so")
    (tmp_path / "lib" / "aarch64-linux-gnu" / "libc.so.6").write_bytes(b"libc")
    (tmp_path / "usr" / "lib" / "aarch64-linux-gnu").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "aarch64-linux-gnu" / "libbpf.so.1").write_bytes(b"bpf")
    userland.merge_usr(tmp_path)
    assert os.readlink(tmp_path / "bin") == "usr/bin" and os.readlink(tmp_path / "lib") == "usr/lib"
    assert (tmp_path / "usr/bin/busybox").read_bytes() == b"bb"
    assert (tmp_path / "usr/lib/aarch64-linux-gnu/libc.so.6").read_bytes() == b"libc"
    assert os.readlink(tmp_path / "usr/lib/ld-linux-aarch64.so.1") == "aarch64-linux-gnu/ld-2.36.so"
    assert (tmp_path / "lib/aarch64-linux-gnu/libbpf.so.1").read_bytes() == b"bpf"  # through the link


def _deb(out: Path, name: str, version: str, files: dict[str, bytes]) -> Path:
    """A minimal .deb of `files` (built by dpkg-deb)."""
    tree = out / f"{name}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    control = f"Package: {name}\nVersion: {version}\nArchitecture: arm64\nMaintainer: t <t@t>\nDescription: t\n"
    (tree / "DEBIAN" / "control").write_text(control)
    for path, data in files.items():
        (tree / path).parent.mkdir(parents=True, exist_ok=True)
        (tree / path).write_bytes(data)
    deb = out / f"{name}_{version}_arm64.deb"
    subprocess.run(["dpkg-deb", "--build", "-Znone", str(tree), str(deb)], check=True, capture_output=True)
    return deb


class FakeApt:
    """apt for the userland builder: `apt-cache depends/show` answered from `versions`, downloads copied from
    prebuilt .debs; counts downloads."""

    def __init__(self, debs: dict[str, Path], versions: dict[str, str]) -> None:
        self.arch = ARCHES["aarch64"]
        self.debs, self.versions, self.downloads = debs, versions, 0

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        command = args[0]
        if command == "depends":
            return "".join(f"{n}\n" for n in self.versions)
        if command == "show":
            return "\n\n".join(f"Package: {n}\nVersion: {self.versions[n]}" for n in args if n in self.versions)
        assert command == "download" and cwd is not None
        self.downloads += 1
        for deb in self.debs.values():
            (cwd / deb.name).write_bytes(deb.read_bytes())
        return ""


def test_userland_is_cached_per_architecture_and_package_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(userland, "compile_stdlib", lambda root: None)
    monkeypatch.setattr(userland, "compiled_distributions", dict)
    debs = {
        "python3.11-minimal": _deb(tmp_path, "python3.11-minimal", "3.11.2-6", {"usr/bin/python3.11": b"py"}),
        "busybox-static": _deb(tmp_path, "busybox-static", "1:1.35.0-4", {"bin/busybox": b"bb"}),
    }
    versions = {n: "1" for n in userland.ROOT_PACKAGES} | {"python3.11-minimal": "3.11.2-6"}
    apt = FakeApt(debs, versions)
    assert userland.cached(ARCHES["aarch64"]) is None
    root = userland.build(apt, log=lambda line: None)  # type: ignore[arg-type]
    assert root == userland.cached(ARCHES["aarch64"]) and userland.cached(ARCHES["s390x"]) is None
    assert (root / "usr/bin/busybox").read_bytes() == b"bb" and os.readlink(root / "usr/bin/python3") == "python3.11"
    meta = json.loads((root.parent / "userland.json").read_text())
    assert meta["arch"] == "aarch64" and meta["packages"]["python3.11-minimal"]["version"] == "3.11.2-6"
    assert len(meta["packages"]["busybox-static"]["sha256"]) == 64
    assert userland.build(apt, log=lambda line: None) == root and apt.downloads == 1  # type: ignore[arg-type]
    apt.versions["python3.11-minimal"] = "3.11.2-7"  # a point release: a userland of its own
    newer = userland.build(apt, log=lambda line: None)  # type: ignore[arg-type]
    assert newer != root and apt.downloads == 2 and userland.cached(ARCHES["aarch64"]) == newer


def test_userland_without_python_is_a_fetch_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(userland, "compiled_distributions", dict)
    debs = {"busybox-static": _deb(tmp_path, "busybox-static", "1", {"bin/busybox": b"bb"})}
    apt = FakeApt(debs, dict.fromkeys(userland.ROOT_PACKAGES, "1"))
    with pytest.raises(TargetError, match=r"no /usr/bin/python3\.11") as err:
        userland.build(apt, log=lambda line: None)  # type: ignore[arg-type]
    assert err.value.kind == "fetch" and not list((tmp_path / "cache" / "userland").glob("aarch64-*"))


def test_fetch_of_a_foreign_target_uses_its_arch_and_builds_its_userland(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path))
    used: list[str] = []

    class Apt:
        def __init__(self, arch: machines.Arch) -> None:
            self.arch = arch

        @classmethod
        def of(cls, arch: machines.Arch) -> Apt:
            used.append(arch.debian)
            return cls(arch)

        def configure(self) -> None:
            pass

        def run(self, *args: str, **kwargs: object) -> str:
            return ""

    def download(apt: Apt, machine: Machine, packages: list[str], version: str, target: Path) -> CachedKernel:
        suffix = "" if machine.arch.debian == "amd64" else f"-{machine.arch.debian}"
        assert target.name == f"{version}{suffix}" and apt.arch is machine.arch
        target.mkdir(parents=True)
        meta = {"series": machine.spec.series, "arch": machine.arch.name, "version": version, "release": "r"}
        (target / "kernel.json").write_text(json.dumps(meta | {"package": packages[0], "deb_sha256": "0" * 64}))
        return kernels.cached_kernel(machine.name)

    built: list[str] = []
    monkeypatch.setattr(kernels, "PrivateApt", Apt)
    monkeypatch.setattr(kernels, "_resolve", lambda apt, m, excluded: ([m.image_package], "6.1.1-1"))
    monkeypatch.setattr(kernels, "_download_extract", download)
    monkeypatch.setattr(userland, "build", lambda apt, log: built.append(apt.arch.debian) or tmp_path / "x" / "root")
    fetched = kernels.fetch(["6.1/s390x", "6.1"], log=lambda line: None)
    assert [k.name for k in fetched] == ["6.1/s390x", "6.1"] and used == ["s390x", "amd64"] and built == ["s390x"]
    assert fetched[0].package == r"linux-image-6\.1\.0-\d+-s390x" and fetched[0].arch == "s390x"


def test_a_kernel_the_archive_cannot_serve_gives_way_to_the_next_older(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror that lists linux-image-6.12.118+deb13-s390x but answers 404 for it: the older one is fetched; when
    every candidate fails, the last error stands."""
    monkeypatch.setenv("BPFCERT_CACHE", str(tmp_path))
    listed = {"linux-image-6.12.118+deb13-s390x": "6.12.118-1", "linux-image-6.12.110+deb13-s390x": "6.12.110-1"}
    apt = FakeApt({}, {})

    def run(tool: str, *args: str, cwd: Path | None = None) -> str:
        if args[0] == "pkgnames":
            return "\n".join(listed)
        return "\n\n".join(f"Package: {n}\nVersion: {listed[n]}" for n in args[2:])

    def download(apt: object, machine: Machine, packages: list[str], version: str, target: Path) -> CachedKernel:
        attempts.append(packages[0])
        if packages[0] in unavailable:
            raise TargetError(f"apt-get download failed: 404 {packages[0]}", "fetch")
        return CachedKernel("6.12", version, "r", packages[0], "0" * 64, target, "s390x")

    monkeypatch.setattr(apt, "run", run)
    monkeypatch.setattr(kernels, "_download_extract", download)
    machine = TargetName.parse("6.12/s390x").machine
    attempts: list[str] = []
    unavailable = {"linux-image-6.12.118+deb13-s390x"}
    kernel = kernels._fetch_one(apt, machine, lambda line: None)  # type: ignore[arg-type]
    assert kernel.version == "6.12.110-1" and attempts == [*unavailable, "linux-image-6.12.110+deb13-s390x"]
    attempts.clear()
    unavailable = set(listed)
    with pytest.raises(TargetError, match=r"404 linux-image-6\.12\.110"):
        kernels._fetch_one(apt, machine, lambda line: None)  # type: ignore[arg-type]


# --- the initramfs of another architecture ---


def _module(order: str, name: str, depends: str) -> bytes:
    """A minimal ELF64 kernel module in byte order `order` ("<" or ">"): a .modinfo and a .shstrtab section."""
    modinfo = f"name={name}\0depends={depends}\0".encode()
    shstrtab = b"\0.modinfo\0.shstrtab\0"
    data_off = 64
    sh_off = data_off + len(modinfo) + len(shstrtab)
    header = b"\x7fELF\x02" + bytes([1 if order == "<" else 2, 1]) + b"\0" * 9
    header += struct.pack(f"{order}HHIQQQIHHHHHH", 1, 22, 1, 0, 0, sh_off, 0, 64, 0, 0, 64, 3, 2)
    sections = b"\0" * 64
    sections += struct.pack(f"{order}IIQQQQIIQQ", 1, 1, 0, 0, data_off, len(modinfo), 0, 0, 1, 0)
    sections += struct.pack(f"{order}IIQQQQIIQQ", 10, 3, 0, 0, data_off + len(modinfo), len(shstrtab), 0, 0, 1, 0)
    return header + modinfo + shstrtab + sections


def _fake_kernel(tmp_path: Path, name: str, modules: dict[str, bytes]) -> CachedKernel:
    machine = TargetName.parse(name).machine
    moddir = tmp_path / "lib" / "modules" / "6.1.0-1"
    for module, blob in modules.items():
        (moddir / "kernel").mkdir(parents=True, exist_ok=True)
        (moddir / "kernel" / f"{module}.ko").write_bytes(blob)
    (moddir / "modules.builtin").write_text("kernel/drivers/virtio/virtio.ko\n")
    meta = {"modules_dir": "lib/modules/6.1.0-1", "vmlinuz": "vmlinuz", "config": "config"}
    (tmp_path / "kernel.json").write_text(json.dumps(meta))
    return CachedKernel(machine.spec.series, "6.1.1-1", "6.1.0-1", "p", "0" * 64, tmp_path, machine.arch.name)


def test_big_endian_modules_are_read_with_their_dependencies(tmp_path: Path) -> None:
    blobs = {
        "9p": _module(">", "9p", "9pnet,fscache"),
        "9pnet": _module(">", "9pnet", ""),
        "fscache": _module(">", "fscache", "netfs"),
        "netfs": _module(">", "netfs", ""),
        "9pnet_virtio": _module(">", "9pnet_virtio", "9pnet,virtio"),
        "virtio_console": _module(">", "virtio_console", "virtio"),
        "overlay": _module(">", "overlay", ""),
    }
    kernel = _fake_kernel(tmp_path, "6.1/s390x", blobs)
    order = [name for name, _ in initramfs.modules_to_load(kernel)]
    assert order == ["9pnet", "9pnet_virtio", "netfs", "fscache", "9p", "virtio_console", "overlay"]  # virtio: built in
    assert initramfs._elf_section(_module("<", "x", "y"), ".modinfo") == b"name=x\0depends=y\0"


def test_composed_root_binds_the_userland_usr_and_the_hosts_dirs(tmp_path: Path) -> None:
    share = TargetName.parse("6.1/s390x").machine.arch.share_mount
    lines = initramfs.composed_root(share, Path("/c/ul/root"), ["work", "tmp"], "/opt/py").splitlines()
    assert lines[0].startswith(f"mount {share} {initramfs.VIRTIOFS_TAG} /host ||")
    assert "mount -o bind /host/c/ul/root/usr /root/usr" in lines and "ln -s usr/lib /root/lib" in lines
    assert "mount -o bind /host/work /root/work" in lines and "mount -o bind /host/tmp /root/tmp" in lines
    assert lines[-1] == "mount -o bind /host/c/ul/root/usr /root/opt/py"  # after /opt is there
    assert not any("/root/opt/py" in line for line in initramfs.composed_root(share, Path("/u"), [], "/usr").split())
    overlay = initramfs.composed_root(share, Path("/u"), [], "/usr", "/v/site-packages").splitlines()[-1]
    assert overlay == "mount -t overlay -o ro,lowerdir=/host/u/site:/host/v/site-packages overlay /root/v/site-packages"
    assert "usr" not in initramfs.shared_host_dirs() and "proc" not in initramfs.shared_host_dirs()


def test_compiled_dependencies_are_the_ones_with_shared_objects() -> None:
    """jsonschema-rs and cryptography (Rust), pyyaml's _yaml: the host's builds cannot run in a foreign guest."""
    compiled = {name.lower().replace("_", "-") for name in userland.compiled_distributions()}
    assert {"jsonschema-rs", "cryptography"} <= compiled and "license-expression" not in compiled


# --- instructions in a kernel's byte order ---


def test_reorder_swaps_register_nibbles_offsets_and_immediates() -> None:
    program = [insn.ldx_mem("W", 1, 2, 4), insn.ld_imm64(3, 0x1122334455667788), insn.jmp_imm("jeq", 1, -1, -2)]
    little, big = insn.assemble(program, "little"), insn.assemble(program, "big")
    assert little != big and insn.reorder(little, "little", "big") == big
    assert insn.reorder(big, "big", "little") == little
    assert insn.reorder(little, "little", "little") is little
    assert insn.decode(insn.reorder(little, "little", "big"), "big") == insn.decode(little)
    for bad, message in ((b"\0" * 7, "not a multiple of 8"), (little, "unknown byte order")):
        with pytest.raises(Exception, match=message):
            insn.reorder(bad, "little", "middle" if bad == little else "big")


# --- on every selected target (marked vm) ---


def _native(target: Target) -> str:
    order: str = target.call("hello")["byteorder"]
    return order


@pytest.mark.vm
def test_programs_load_in_the_kernels_byte_order(target: Target) -> None:
    """A program built little-endian runs once re-encoded for the kernel; sent as it is to a big-endian kernel it
    computes something else (the immediate read the other way round), which is what the re-encoding prevents."""
    native = _native(target)
    other = "big" if native == "little" else "little"
    program = [insn.mov64_imm(0, 3), insn.exit_()]  # XDP_TX
    for order in ("little", "big"):
        code = insn.assemble(program, order).hex()
        result = target.call("prog_test_run", prog_type="xdp", insns_hex=code, data_hex="00" * 64, byteorder=order)
        assert result["retval"] == 3, order
    unconverted = insn.assemble(program, other).hex()
    result = target.call("prog_test_run", prog_type="xdp", insns_hex=unconverted, data_hex="00" * 64, byteorder=native)
    assert result["retval"] == 3 << 24


@pytest.mark.vm
def test_map_values_read_back_in_the_kernels_byte_order(target: Target) -> None:
    """A guest program stores a 64-bit value in a map; the host reads it back by map id and decodes it in the
    kernel's byte order; a value written by the host reads back the same."""
    native = _native(target)
    argv = [target.python, "-I", "-S", HOLDER, str(ROOT), "native"]
    handle = target.call("runner_start", argv=argv)["handle"]
    try:
        held = json.loads(target.call("runner_exchange", handle=handle, line="fill 0x1122334455667788")["line"])
        assert held["retval"] == 2  # XDP_PASS
        key = (0).to_bytes(4, native).hex()  # type: ignore[arg-type]
        value = bytes.fromhex(target.call("map_element", map_id=held["map"], key_hex=key)["value_hex"])
        assert int.from_bytes(value, native) == 0x1122334455667788  # type: ignore[arg-type]
        written = (0xCAFE).to_bytes(8, native).hex()  # type: ignore[arg-type]
        back = target.call("map_element", map_id=held["map"], key_hex=key, value_hex=written)["value_hex"]
        assert back == written
        assert target.call("runner_exchange", handle=handle, line="release")["line"] == "{}"
    finally:
        target.call("runner_stop", handle=handle)


@pytest.mark.vm
def test_btf_and_jit_are_reported_as_the_kernel_has_them(target: Target) -> None:
    """Debian's s390x 6.1 has neither BTF nor a JIT; the probe says so (from the guest, not from the config)."""
    system = target.call("probe", helper_prog_types=[])["system"]
    if target.name == "host":
        config: list[str] = []
        with_config = Path(f"/boot/config-{os.uname().release}")
        if not with_config.is_file():
            pytest.skip("the host kernel's config is not in /boot")
        config = with_config.read_text().splitlines()
    else:
        config = kernels.cached_kernel(target.name).config.read_text().splitlines()
    assert system["btf"] is ("CONFIG_DEBUG_INFO_BTF=y" in config)
    assert (system["bpf_jit_enable"] is None) is ("CONFIG_BPF_JIT=y" not in config)
    if target.name == "6.1/s390x":
        assert system["btf"] is False and system["bpf_jit_enable"] is None


def test_a_compiled_dependency_without_a_wheel_comes_from_debian(tmp_path: Path) -> None:
    """No cryptography wheel for the architecture: python3-cryptography's (and its cffi backend's) modules go into
    site/; a dependency with a wheel, or none in DEBIAN_FALLBACKS, is left alone."""
    module = "usr/lib/python3/dist-packages/cryptography/__init__.py"
    debs = {
        "python3-cryptography": _deb(tmp_path, "python3-cryptography", "38.0.4-3", {module: b"v = 38"}),
        "python3-cffi-backend": _deb(
            tmp_path, "python3-cffi-backend", "1.15.1-5", {"usr/lib/python3/dist-packages/_cffi_backend.so": b"so"}
        ),
    }
    apt, site, lines = FakeApt(debs, {}), tmp_path / "site", []
    used = userland.debian_fallbacks(
        apt,  # type: ignore[arg-type]
        {"cryptography": None, "jsonschema_rs": None, "PyYAML": {"version": "6"}},
        tmp_path / "work",
        site,
        lines.append,
    )
    assert (site / "cryptography/__init__.py").read_bytes() == b"v = 38" and (site / "_cffi_backend.so").is_file()
    assert set(used) == {"cryptography"}
    assert used["cryptography"]["debian"]["python3-cryptography"]["version"] == "38.0.4-3"
    assert apt.downloads == 1 and "cryptography from Debian's" in lines[0]
    with_wheel = {"cryptography": {"version": "50"}}
    assert userland.debian_fallbacks(apt, with_wheel, tmp_path / "w2", site, print) == {}  # type: ignore[arg-type]
