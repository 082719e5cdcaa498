"""Per-kernel initramfs: a newc cpio with static busybox, the virtio/virtiofs modules the kernel lacks
built in, and an /init that mounts the host root read-only over virtiofs and runs the guest agent in it.

The guest's root is the host's own (x86_64), or, for a foreign architecture, a tmpfs whose /usr is that
architecture's Debian userland (bpfcert.targets.userland) and whose other top-level directories are the host's
(so the tree under test, the venv's pure-Python packages and the host's /tmp are where they are on the host).
Where the host's python lives outside /usr (a pyenv build), the userland's /usr is bound over its prefix too, so
the host python's path runs the guest's python3.11 and runners started with that path run unchanged."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import lzma
import os
import shlex
import struct
import sys
import sysconfig
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bpfcert.errors import FormatError, TargetError, TargetErrorKind
from bpfcert.targets.kernels import CachedKernel

BUSYBOX = Path("/bin/busybox")
VIRTIOFS_TAG = "hostroot"
# Top-level directories a composed root does not take from the host: the userland's (usr and its links), the
# guest's own file systems, and the host's kernels.
NOT_SHARED = frozenset({"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "proc", "sys", "dev", "run", "boot"})
NEWC_MAGIC = b"070701"
NEWC_HEADER = 110
S_IFDIR, S_IFREG, S_IFLNK = 0o040000, 0o100000, 0o120000
STALE_SECONDS = 7 * 24 * 3600  # a cached initramfs unused this long (an old checkout's agent path) is removed


@dataclass(frozen=True)
class CpioEntry:
    """One member of a newc archive: path without leading '/', full st_mode, and contents (link target)."""

    name: str
    mode: int
    data: bytes = b""


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def write_newc(entries: Iterable[CpioEntry]) -> bytes:
    """A newc ("070701") cpio archive of `entries`, ending in the TRAILER!!! record."""
    out = bytearray()
    records = [*entries, CpioEntry("TRAILER!!!", 0)]
    for ino, entry in enumerate(records, start=1):
        name = entry.name.encode() + b"\0"
        nlink = 2 if entry.mode & 0o170000 == S_IFDIR else 1
        fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, 0, 0, len(name), 0)
        out += NEWC_MAGIC + b"".join(b"%08X" % f for f in fields) + name
        out += b"\0" * _pad4(NEWC_HEADER + len(name))
        out += entry.data + b"\0" * _pad4(len(entry.data))
    return bytes(out)


def read_newc(blob: bytes) -> list[CpioEntry]:
    """The entries of a newc cpio archive (without the trailer); FormatError on malformed bytes."""
    entries: list[CpioEntry] = []
    pos = 0
    while True:
        header = blob[pos : pos + NEWC_HEADER]
        if len(header) < NEWC_HEADER or header[:6] != NEWC_MAGIC:
            raise FormatError(f"cpio: no newc header at offset {pos}")
        try:
            fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        except ValueError:
            raise FormatError(f"cpio: non-hex header field at offset {pos}") from None
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_start = pos + NEWC_HEADER
        data_start = name_start + namesize + _pad4(NEWC_HEADER + namesize)
        if namesize == 0 or data_start + size > len(blob):
            raise FormatError(f"cpio: truncated entry at offset {pos}")
        name = blob[name_start : name_start + namesize - 1].decode("utf-8", "replace")
        if name == "TRAILER!!!":
            return entries
        entries.append(CpioEntry(name, mode, blob[data_start : data_start + size]))
        pos = data_start + size + _pad4(size)


def _elf_section(blob: bytes, wanted: str) -> bytes:
    """The contents of section `wanted` in an ELF64 file of either byte order (a kernel module; s390x's are
    big-endian)."""
    try:
        order = {1: "<", 2: ">"}[blob[5]]
        (shoff,) = struct.unpack_from(f"{order}Q", blob, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(f"{order}HHH", blob, 0x3A)

        def header(i: int) -> tuple[int, int, int]:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(f"{order}IIQQQQ", blob, shoff + i * shentsize)
            return name, offset, size

        _, str_off, _ = header(shstrndx)
        for i in range(shnum):
            name, offset, size = header(i)
            end = blob.index(b"\0", str_off + name)
            if blob[str_off + name : end].decode() == wanted:
                return blob[offset : offset + size]
    except (struct.error, ValueError, UnicodeDecodeError, KeyError, IndexError):
        pass
    raise FormatError(f"kernel module: no readable {wanted} section")


def _module_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return lzma.decompress(raw) if path.name.endswith(".xz") else raw


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def modules_to_load(kernel: CachedKernel, wanted: Iterable[str] | None = None) -> list[tuple[str, bytes]]:
    """(name, uncompressed .ko) for `wanted` (by default the modules the kernel's machine needs for its share
    and channels) and their dependencies, dependencies first; no built-ins."""
    wanted = kernel.machine.arch.modules if wanted is None else wanted
    builtin_file = kernel.modules_dir / "modules.builtin"
    builtin = (
        {_module_name(Path(line.strip())) for line in builtin_file.read_text().splitlines() if line.strip()}
        if builtin_file.is_file()
        else set()
    )
    index = {_module_name(p): p for p in kernel.modules_dir.rglob("*.ko*")}
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen or name in builtin:
            return
        seen.add(name)
        if name not in index:
            message = f"kernel {kernel.release} has neither a built-in nor a module {name}"
            raise TargetError(message, TargetErrorKind.BOOT)
        blob = _module_bytes(index[name])
        modinfo = _elf_section(blob, ".modinfo").split(b"\0")
        depends = next((f[8:].decode() for f in modinfo if f.startswith(b"depends=")), "")
        for dep in filter(None, depends.split(",")):
            visit(dep.replace("-", "_"))
        ordered.append((name, blob))

    for name in wanted:
        visit(name)
    return ordered


def mount_share(share_mount: str, where: str) -> str:
    """The /init line mounting the host's root (shared read-only as VIRTIOFS_TAG, mounted with the machine's
    `share_mount` options) at `where`, or giving up."""
    give_up = '{ echo "bpfcert-init: mounting the host root failed"; reboot -f; }'
    return f"mount {share_mount} {VIRTIOFS_TAG} {where} || {give_up}"


def composed_root(
    share_mount: str, userland: Path, host_dirs: Iterable[str], python_prefix: str = "/usr", site_packages: str = ""
) -> str:
    """/init lines making /root a tmpfs with the userland's /usr (and the merged-/usr links) and the host's
    `host_dirs`, all bound read-only from the host's root (mounted with `share_mount`); the userland's /usr is
    also bound over `python_prefix` (the host python's) if that is elsewhere, and its compiled wheels (`site/`)
    laid over the host's `site_packages` (an overlay: the host's pure-Python packages show through)."""
    usr = shlex.quote(f"/host{userland}/usr")
    lines = [
        mount_share(share_mount, "/host"),
        "mount -t tmpfs -o mode=0755 root /root",
        "mkdir /root/usr /root/proc /root/sys /root/dev /root/run",
        f"mount -o bind {usr} /root/usr",
        *(f"ln -s usr/{d} /root/{d}" for d in ("bin", "sbin", "lib")),
    ]
    for name in sorted(host_dirs):
        inside, outside = shlex.quote(f"/root/{name}"), shlex.quote(f"/host/{name}")
        lines += [f"mkdir -p {inside}", f"mount -o bind {outside} {inside}"]
    if python_prefix != "/usr":
        lines.append(f"mount -o bind {usr} {shlex.quote('/root' + python_prefix)}")
    if site_packages:
        layers = shlex.quote(f"ro,lowerdir=/host{userland}/site:/host{site_packages}")
        lines.append(f"mount -t overlay -o {layers} overlay {shlex.quote('/root' + site_packages)}")
    return "\n".join(lines)


def shared_host_dirs() -> list[str]:
    """The host's top-level directories a composed root shares (real directories, not NOT_SHARED)."""
    return [e.name for e in os.scandir("/") if e.is_dir(follow_symlinks=False) and e.name not in NOT_SHARED]


# The agent's PATH in the host root: the tools runners need (bpftool, tc, xdp-loader) live in sbin directories.
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def init_script(modules: list[str], agent_argv: list[str], root: str | None = None) -> str:
    """The busybox /init: load modules, make /root the guest's root (`root`'s lines, by default the host's
    root over virtiofs), chroot and run the agent.

    The host's /tmp stays visible (the tree under test may live there); the guest writes to a tmpfs at /run/tmp."""
    insmods = "\n".join(f"insmod /modules/{name}.ko" for name in modules)
    return f"""#!/bin/sh
export PATH=/bin
mount -t devtmpfs dev /dev
{insmods}
{mount_share("-t virtiofs -o ro", "/root") if root is None else root}
mount -t proc proc /root/proc
mount -t sysfs sys /root/sys
mount -t devtmpfs dev /root/dev
mount -t tmpfs run /root/run
mkdir -p /root/run/tmp
export TMPDIR=/run/tmp
mount -t bpf bpf /root/sys/fs/bpf 2>/dev/null
mount -t tracefs tracefs /root/sys/kernel/tracing 2>/dev/null
export PATH={GUEST_PATH}
chroot /root {shlex.join(agent_argv)}
echo "bpfcert-init: agent exited with status $?"
reboot -f
"""


def build(kernel: CachedKernel, agent_argv: list[str], cache: Path, userland: Path | None = None) -> Path:
    """The initramfs for `kernel` running `agent_argv` on the host's root, or on `userland` (a foreign
    architecture's, whose busybox it then carries), cached by kernel release + init script hash; building one
    removes those of the same kernel unused for STALE_SECONDS."""
    modules = modules_to_load(kernel)
    share_mount = kernel.machine.arch.share_mount
    if userland is None:
        root = mount_share(share_mount, "/root")
    else:
        prefix, site_packages = os.path.realpath(sys.base_prefix), os.path.realpath(sysconfig.get_paths()["purelib"])
        root = composed_root(share_mount, userland, shared_host_dirs(), prefix, site_packages)
    script = init_script([name for name, _ in modules], agent_argv, root)
    busybox = BUSYBOX if userland is None else userland / "usr" / "bin" / "busybox"
    digest = hashlib.sha256(script.encode() + str(busybox).encode()).hexdigest()[:16]
    path = cache / "initramfs" / f"{kernel.release}-{digest}.cpio"
    if path.is_file():
        os.utime(path)  # used now: not stale
        return path
    for old in path.parent.glob(f"{glob.escape(kernel.release)}-*.cpio"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > STALE_SECONDS:
                old.unlink()
    entries = [CpioEntry(d, S_IFDIR | 0o755) for d in ("bin", "dev", "proc", "sys", "root", "host", "modules")]
    entries.append(CpioEntry("bin/busybox", S_IFREG | 0o755, busybox.read_bytes()))
    entries += [
        CpioEntry(f"bin/{a}", S_IFLNK | 0o777, b"busybox")
        for a in ("sh", "mount", "mkdir", "ln", "insmod", "chroot", "reboot")
    ]
    entries += [CpioEntry(f"modules/{name}.ko", S_IFREG | 0o644, blob) for name, blob in modules]
    entries.append(CpioEntry("init", S_IFREG | 0o755, script.encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(write_newc(entries))
    tmp.replace(path)
    return path
