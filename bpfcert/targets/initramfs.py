"""Per-kernel initramfs: a newc cpio with static busybox, the virtio/virtiofs modules the kernel lacks
built in, and an /init that mounts the host root read-only over virtiofs and runs the guest agent in it."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import lzma
import os
import shlex
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bpfcert.errors import FormatError, TargetError, TargetErrorKind
from bpfcert.targets.kernels import CachedKernel

BUSYBOX = Path("/bin/busybox")
VIRTIOFS_TAG = "hostroot"
# Modules the guest needs for the virtiofs root; their dependencies are added from each module's depends=.
NEEDED_MODULES = ("virtio_pci", "virtiofs")
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
    """The contents of section `wanted` in a little-endian ELF64 file (a kernel module)."""
    try:
        (shoff,) = struct.unpack_from("<Q", blob, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", blob, 0x3A)

        def header(i: int) -> tuple[int, int, int]:
            name, _type, _flags, _addr, offset, size = struct.unpack_from(
                "<IIQQQQ", blob, shoff + i * shentsize
            )
            return name, offset, size

        _, str_off, _ = header(shstrndx)
        for i in range(shnum):
            name, offset, size = header(i)
            end = blob.index(b"\0", str_off + name)
            if blob[str_off + name : end].decode() == wanted:
                return blob[offset : offset + size]
    except (struct.error, ValueError, UnicodeDecodeError):
        pass
    raise FormatError(f"kernel module: no readable {wanted} section")


def _module_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return lzma.decompress(raw) if path.name.endswith(".xz") else raw


def _module_name(path: Path) -> str:
    return path.name.split(".ko")[0].replace("-", "_")


def modules_to_load(kernel: CachedKernel, wanted: Iterable[str] = NEEDED_MODULES) -> list[tuple[str, bytes]]:
    """(name, uncompressed .ko) for `wanted` and their dependencies, dependencies first; no built-ins."""
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


# The agent's PATH in the host root: the tools runners need (bpftool, tc, xdp-loader) live in sbin directories.
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def init_script(modules: list[str], agent_argv: list[str]) -> str:
    """The busybox /init: load modules, mount the host root read-only, chroot and run the agent.

    The host's /tmp stays visible (the tree under test may live there); the guest writes to a tmpfs at /run/tmp."""
    insmods = "\n".join(f"insmod /modules/{name}.ko" for name in modules)
    return f"""#!/bin/sh
export PATH=/bin
mount -t devtmpfs dev /dev
{insmods}
mount -t virtiofs -o ro {VIRTIOFS_TAG} /root || {{ echo "bpfcert-init: virtiofs mount failed"; reboot -f; }}
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


def build(kernel: CachedKernel, agent_argv: list[str], cache: Path) -> Path:
    """The initramfs for `kernel` running `agent_argv`, cached by kernel release + init script hash; building
    one removes those of the same kernel unused for STALE_SECONDS."""
    modules = modules_to_load(kernel)
    script = init_script([name for name, _ in modules], agent_argv)
    digest = hashlib.sha256(script.encode()).hexdigest()[:16]
    path = cache / "initramfs" / f"{kernel.release}-{digest}.cpio"
    if path.is_file():
        os.utime(path)  # used now: not stale
        return path
    for old in path.parent.glob(f"{glob.escape(kernel.release)}-*.cpio"):
        with contextlib.suppress(OSError):
            if time.time() - old.stat().st_mtime > STALE_SECONDS:
                old.unlink()
    entries = [CpioEntry(d, S_IFDIR | 0o755) for d in ("bin", "dev", "proc", "sys", "root", "modules")]
    entries.append(CpioEntry("bin/busybox", S_IFREG | 0o755, BUSYBOX.read_bytes()))
    entries += [
        CpioEntry(f"bin/{a}", S_IFLNK | 0o777, b"busybox")
        for a in ("sh", "mount", "mkdir", "insmod", "chroot", "reboot")
    ]
    entries += [CpioEntry(f"modules/{name}.ko", S_IFREG | 0o644, blob) for name, blob in modules]
    entries.append(CpioEntry("init", S_IFREG | 0o755, script.encode()))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(write_newc(entries))
    tmp.replace(path)
    return path
