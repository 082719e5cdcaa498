"""The bpf(2) system call through ctypes: the one way bpfcert loads and runs programs on a kernel.

Stdlib + ctypes only: this module runs inside the guest agent. Attributes follow `union bpf_attr` (native
byte order) in <linux/bpf.h>; every field not passed is zero, which every kernel since 5.10 accepts.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import NamedTuple

from bpfcert.errors import BpfcertError
from bpfcert.targets.machines import bpf_syscall
from bpfcert.uapi import ATTACH_TYPES as ATTACH_TYPES
from bpfcert.uapi import HELPER_NAMES as HELPER_NAMES
from bpfcert.uapi import LINK_TYPES as LINK_TYPES
from bpfcert.uapi import MAP_TYPES as MAP_TYPES
from bpfcert.uapi import PROG_TYPES as PROG_TYPES

# enum bpf_cmd values used here.
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_TEST_RUN = 10
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_LOAD = 18
BPF_LINK_CREATE = 28
BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_GET_NEXT_ID = 31  # Linux 5.8

ENOTSUPP = 524  # the kernel-internal "operation not supported" errno that bpf(2) can leak to user space
DEFAULT_LOG_SIZE = 1 << 20


_LOG_TRAILERS = ("processed ", "verification time", "stack depth", "mark_read")


def verifier_reason(log: str) -> str:
    """The verifier's reason for a rejection: the last log line that is not a statistics trailer."""
    for line in reversed(log.strip().splitlines()):
        if line.strip() and not line.startswith(_LOG_TRAILERS):
            return line.strip()
    return ""


class BpfSyscallError(BpfcertError):
    """A bpf(2) command that failed: `errno` from the kernel and, for loads, the verifier log."""

    def __init__(self, command: str, errno: int, log: str = "") -> None:
        reason = os.strerror(errno) if errno != ENOTSUPP else "Operation not supported (ENOTSUPP)"
        last = verifier_reason(log)
        super().__init__(f"{command} failed: {reason}" + (f": {last}" if last else ""))
        self.command = command
        self.errno = errno
        self.log = log


class TestRun(NamedTuple):
    """The outcome of BPF_PROG_TEST_RUN."""

    retval: int
    duration_ns: int
    data_out: bytes
    ctx_out: bytes


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_syscall.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_uint]
_NR = bpf_syscall(os.uname().machine)


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


_memlock_raised = False


def _raise_memlock_limit() -> None:
    """Kernels before 5.11 charge BPF objects to RLIMIT_MEMLOCK (64 KiB by default in a bare guest), so loads
    fail with EPERM once a few maps exist; lift it once, as libbpf does. Failure to lift is not fatal."""
    global _memlock_raised
    _memlock_raised = True
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError):
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def _call(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> tuple[int, int]:
    """Issue bpf(cmd, attr); returns (result, errno) with errno 0 on success."""
    if _NR < 0:
        return -1, 38  # ENOSYS: no known bpf(2) number on this machine
    if not _memlock_raised:
        _raise_memlock_limit()
    ret = _syscall(_NR, cmd, attr, len(attr))
    return ret, (ctypes.get_errno() if ret < 0 else 0)


def close(fd: int) -> None:
    """Close a program, map, BTF or link file descriptor."""
    os.close(fd)


class LogBuffer:
    """A verifier log buffer reused across loads (allocating 1 MiB per probe would dominate probe time)."""

    def __init__(self, size: int = DEFAULT_LOG_SIZE) -> None:
        self.buffer = ctypes.create_string_buffer(size)

    def reset(self) -> None:
        self.buffer[0] = b"\0"

    def text(self) -> str:
        return self.buffer.value.decode("utf-8", "replace")


def try_prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
    name: str = "",
    log: LogBuffer | None = None,
    log_level: int = 1,
) -> tuple[int, int]:
    """BPF_PROG_LOAD without raising: (fd, 0) or (-1, errno); the verifier log, if any, is left in `log`.
    `name` (at most 15 of [A-Za-z0-9_.]) is what bpf_prog_info and bpftool show."""
    insn_buf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    if log is not None:
        log.reset()
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIQQIIQII16sIIIIQIIQIIII",
            prog_type,
            len(insns) // 8,
            _addr(insn_buf),
            _addr(lic),
            log_level if log is not None else 0,
            len(log.buffer) if log is not None else 0,
            _addr(log.buffer) if log is not None else 0,
            0,
            prog_flags,
            name.encode(),
            0,
            expected_attach_type,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            attach_btf_id,
            0,
            0,
        ),
        120,
    )
    return _call(BPF_PROG_LOAD, attr)


def prog_load(
    prog_type: int,
    insns: bytes,
    license: str = "GPL",
    *,
    expected_attach_type: int = 0,
    attach_btf_id: int = 0,
    prog_flags: int = 0,
    name: str = "",
) -> int:
    """Load a program and return its fd; on failure reload with a verifier log and raise BpfSyscallError."""
    opts = {"expected_attach_type": expected_attach_type, "attach_btf_id": attach_btf_id, "prog_flags": prog_flags}
    fd, err = try_prog_load(prog_type, insns, license, name=name, log=None, **opts)
    if fd >= 0:
        return fd
    log = LogBuffer()
    fd, err2 = try_prog_load(prog_type, insns, license, name=name, log=log, **opts)
    if fd >= 0:  # loads with a log but not without: keep it, it is a valid program
        return fd
    raise BpfSyscallError("BPF_PROG_LOAD", err2 or err, log.text())


def try_map_create(
    map_type: int,
    key_size: int,
    value_size: int,
    max_entries: int,
    map_flags: int = 0,
    *,
    inner_map_fd: int = 0,
    btf_fd: int = 0,
    btf_key_type_id: int = 0,
    btf_value_type_id: int = 0,
    btf_vmlinux_value_type_id: int = 0,
    map_extra: int = 0,
    name: str = "",
) -> tuple[int, int]:
    """BPF_MAP_CREATE without raising: (fd, 0) or (-1, errno)."""
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIIIIII16sIIIIIQ",
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags,
            inner_map_fd,
            0,
            name.encode(),
            0,
            btf_fd,
            btf_key_type_id,
            btf_value_type_id,
            btf_vmlinux_value_type_id,
            map_extra,
        ),
        72,
    )
    return _call(BPF_MAP_CREATE, attr)


def map_create(
    map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0, *, name: str = ""
) -> int:
    """Create a map and return its fd; BpfSyscallError on failure."""
    fd, err = try_map_create(map_type, key_size, value_size, max_entries, map_flags, name=name)
    if fd < 0:
        raise BpfSyscallError("BPF_MAP_CREATE", err)
    return fd


def _elem_attr(
    fd: int, key: ctypes.Array[ctypes.c_char], value: ctypes.Array[ctypes.c_char], flags: int
) -> ctypes.Array[ctypes.c_char]:
    return ctypes.create_string_buffer(struct.pack("=IIQQQ", fd, 0, _addr(key), _addr(value), flags), 32)


def map_update(fd: int, key: bytes, value: bytes, flags: int = 0) -> None:
    """BPF_MAP_UPDATE_ELEM (flags: 0 any, 1 noexist, 2 exist)."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value, len(value))
    ret, err = _call(BPF_MAP_UPDATE_ELEM, _elem_attr(fd, k, v, flags))
    if ret < 0:
        raise BpfSyscallError("BPF_MAP_UPDATE_ELEM", err)


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    """BPF_MAP_LOOKUP_ELEM: the value, or None when the key is absent."""
    k, v = ctypes.create_string_buffer(key, len(key)), ctypes.create_string_buffer(value_size)
    ret, err = _call(BPF_MAP_LOOKUP_ELEM, _elem_attr(fd, k, v, 0))
    if ret < 0:
        if err == 2:  # ENOENT
            return None
        raise BpfSyscallError("BPF_MAP_LOOKUP_ELEM", err)
    return v.raw


def prog_test_run(
    fd: int,
    data: bytes = b"",
    *,
    ctx: bytes | None = None,
    ctx_out_size: int = 0,
    repeat: int = 1,
    data_out_size: int | None = None,
) -> TestRun:
    """BPF_PROG_TEST_RUN: run a loaded program on `data` (and `ctx`), `repeat` times."""
    data_in = ctypes.create_string_buffer(data, len(data))
    out_size = len(data) + 256 if data_out_size is None else data_out_size
    data_out = ctypes.create_string_buffer(out_size) if out_size else None
    ctx_in = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    ctx_out = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None
    attr = ctypes.create_string_buffer(
        struct.pack(
            "=IIIIQQIIIIQQIIII",
            fd,
            0,
            len(data),
            out_size,
            _addr(data_in) if data else 0,
            _addr(data_out),
            repeat,
            0,
            len(ctx) if ctx else 0,
            ctx_out_size,
            _addr(ctx_in),
            _addr(ctx_out),
            0,
            0,
            0,
            0,
        ),
        80,
    )
    ret, err = _call(BPF_PROG_TEST_RUN, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_PROG_TEST_RUN", err)
    retval, _, data_len = struct.unpack_from("=III", attr, 4)
    duration, _, ctx_len = struct.unpack_from("=III", attr, 36)
    return TestRun(
        retval=retval,
        duration_ns=duration,
        data_out=data_out.raw[: min(data_len, out_size)] if data_out is not None else b"",
        ctx_out=ctx_out.raw[: min(ctx_len, ctx_out_size)] if ctx_out is not None else b"",
    )


def obj_get_info_by_fd(fd: int, info_size: int = 256, request: bytes = b"") -> bytes:
    """BPF_OBJ_GET_INFO_BY_FD: the raw bpf_{prog,map,btf,link}_info bytes the kernel filled in, as many as
    this kernel's struct has (older kernels have shorter ones). `request` presets the struct's leading bytes
    (array lengths and buffer pointers the kernel fills); the rest is zero, as the kernel requires."""
    info = ctypes.create_string_buffer(request, info_size)
    attr = ctypes.create_string_buffer(struct.pack("=IIQ", fd, info_size, _addr(info)), 16)
    ret, err = _call(BPF_OBJ_GET_INFO_BY_FD, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_OBJ_GET_INFO_BY_FD", err)
    (info_len,) = struct.unpack_from("=I", attr, 4)
    return info.raw[: min(info_len, info_size)]


def btf_load(btf: bytes) -> int:
    """BPF_BTF_LOAD: load raw BTF and return its fd; BpfSyscallError with the kernel's BTF log on failure."""
    data = ctypes.create_string_buffer(btf, len(btf))
    log = LogBuffer(1 << 16)
    log.reset()
    attr = ctypes.create_string_buffer(
        struct.pack("=QQIII", _addr(data), _addr(log.buffer), len(btf), len(log.buffer), 1), 32
    )
    ret, err = _call(BPF_BTF_LOAD, attr)
    if ret < 0:
        raise BpfSyscallError("BPF_BTF_LOAD", err, log.text())
    return ret


def try_link_create(prog_fd: int, target: int, attach_type: int, flags: int = 0) -> tuple[int, int]:
    """BPF_LINK_CREATE without raising: (link fd, 0) or (-1, errno). `target` is a target fd or an ifindex,
    as the attach type defines; the type-specific union is left zero."""
    attr = ctypes.create_string_buffer(struct.pack("=IIII", prog_fd, target, attach_type, flags), 64)
    return _call(BPF_LINK_CREATE, attr)


# Kernel state by id, as the kernel sees it (needs CAP_SYS_ADMIN): every program, map and link, whoever owns it.
_NEXT_ID = {"prog": BPF_PROG_GET_NEXT_ID, "map": BPF_MAP_GET_NEXT_ID, "link": BPF_LINK_GET_NEXT_ID}
_FD_BY_ID = {"prog": BPF_PROG_GET_FD_BY_ID, "map": BPF_MAP_GET_FD_BY_ID, "link": BPF_LINK_GET_FD_BY_ID}
_ENOENT = 2
_EAGAIN = 11


def _id_attr(value: int) -> ctypes.Array[ctypes.c_char]:
    # {start_id | prog_id | map_id | link_id; next_id; open_flags}
    return ctypes.create_string_buffer(struct.pack("=III", value, 0, 0), 12)


def object_ids(kind: str) -> list[int]:
    """The ids of every `kind` ("prog", "map", "link") the kernel holds, ascending (BPF_*_GET_NEXT_ID).
    BpfSyscallError on failure: EINVAL for links before Linux 5.8, EPERM without CAP_SYS_ADMIN."""
    found: list[int] = []
    while True:
        attr = _id_attr(found[-1] if found else 0)
        ret, err = _call(_NEXT_ID[kind], attr)
        if ret < 0:
            if err == _ENOENT:
                return found
            raise BpfSyscallError(f"BPF_{kind.upper()}_GET_NEXT_ID", err)
        found.append(struct.unpack_from("=I", attr, 4)[0])


def fd_by_id(kind: str, object_id: int) -> int | None:
    """A new fd for the `kind` with `object_id` (BPF_*_GET_FD_BY_ID), or None when it no longer exists (or, for a
    link, EAGAIN: its id is not settled, the link being attached or released)."""
    ret, err = _call(_FD_BY_ID[kind], _id_attr(object_id))
    if ret < 0:
        if err == _ENOENT or (kind == "link" and err == _EAGAIN):
            return None
        raise BpfSyscallError(f"BPF_{kind.upper()}_GET_FD_BY_ID", err)
    return ret


def _name(table: tuple[str, ...], value: int) -> str:
    """An enum value's name, or the number itself for a value newer than the table."""
    return table[value] if 0 <= value < len(table) else str(value)


def _u32(raw: bytes, offset: int) -> int:
    """A __u32 field of an info struct; 0 when this kernel's struct ends before it (as the kernel zero-fills)."""
    return struct.unpack_from("=I", raw, offset)[0] if len(raw) >= offset + 4 else 0


def _u64(raw: bytes, offset: int) -> int:
    return struct.unpack_from("=Q", raw, offset)[0] if len(raw) >= offset + 8 else 0


def _cstr(raw: bytes, offset: int, size: int) -> str:
    return raw[offset : offset + size].partition(b"\0")[0].decode("utf-8", "replace")


# Offsets in struct bpf_prog_info / bpf_map_info / bpf_link_info (include/uapi/linux/bpf.h; all before 5.10
# except where noted). The link_info union starts at 16 (it holds __u64 members).
_PROG_NR_MAP_IDS, _PROG_MAP_IDS, _PROG_NAME = 52, 56, 64
_LINK_UNION = 16
_INFO_SIZE = 256  # more than any kernel's struct so far; the kernel requires the bytes past its own to be zero


def decode_prog_info(raw: bytes, map_ids: list[int] | None = None) -> dict[str, object]:
    """The fields of a bpf_prog_info bpfcert compares: id, type (name), name, tag (hex), map_ids."""
    return {
        "id": _u32(raw, 4),
        "type": _name(PROG_TYPES, _u32(raw, 0)),
        "name": _cstr(raw, _PROG_NAME, 16),
        "tag": raw[8:16].hex(),
        "map_ids": list(map_ids or []),
    }


def decode_map_info(raw: bytes) -> dict[str, object]:
    """The fields of a bpf_map_info: id, type (name), name, key_size, value_size, max_entries, flags."""
    return {
        "id": _u32(raw, 4),
        "type": _name(MAP_TYPES, _u32(raw, 0)),
        "name": _cstr(raw, 24, 16),
        "key_size": _u32(raw, 8),
        "value_size": _u32(raw, 12),
        "max_entries": _u32(raw, 16),
        "flags": _u32(raw, 20),
    }


def decode_link_info(raw: bytes, tp_name: str = "") -> dict[str, object]:
    """The fields of a bpf_link_info: id, type (name), prog_id, and the attach point of the link types
    where it is plain numbers (xdp, tcx, netkit: ifindex; cgroup: cgroup_id; netns: netns_ino; tracing:
    target object and BTF type; raw_tracepoint: tp_name, read by link_info with a buffer of its own)."""
    link_type = _name(LINK_TYPES, _u32(raw, 0))
    out: dict[str, object] = {"id": _u32(raw, 4), "type": link_type, "prog_id": _u32(raw, 8)}
    u = _LINK_UNION
    if link_type == "raw_tracepoint":
        out["tp_name"] = tp_name
    elif link_type == "tracing":
        out.update(
            attach_type=_name(ATTACH_TYPES, _u32(raw, u)),
            target_obj_id=_u32(raw, u + 4),
            target_btf_id=_u32(raw, u + 8),
        )
    elif link_type == "cgroup":
        out.update(cgroup_id=_u64(raw, u), attach_type=_name(ATTACH_TYPES, _u32(raw, u + 8)))
    elif link_type == "netns":
        out.update(netns_ino=_u32(raw, u), attach_type=_name(ATTACH_TYPES, _u32(raw, u + 4)))
    elif link_type == "xdp":
        out["ifindex"] = _u32(raw, u)
    elif link_type in ("tcx", "netkit"):
        out.update(ifindex=_u32(raw, u), attach_type=_name(ATTACH_TYPES, _u32(raw, u + 4)))
    return out


def prog_info(fd: int) -> dict[str, object]:
    """decode_prog_info of a program fd, with the ids of the maps it uses (a second call sized for them)."""
    raw = obj_get_info_by_fd(fd, _INFO_SIZE)
    count = _u32(raw, _PROG_NR_MAP_IDS)
    if not count:
        return decode_prog_info(raw)
    ids = ctypes.create_string_buffer(4 * count)
    request = bytes(_PROG_NR_MAP_IDS) + struct.pack("=IQ", count, _addr(ids))
    raw = obj_get_info_by_fd(fd, _INFO_SIZE, request)
    filled = min(count, _u32(raw, _PROG_NR_MAP_IDS))  # maps cannot be added to a loaded program, but be safe
    return decode_prog_info(raw, list(struct.unpack_from(f"={filled}I", ids)))


def map_info(fd: int) -> dict[str, object]:
    """decode_map_info of a map fd."""
    return decode_map_info(obj_get_info_by_fd(fd, _INFO_SIZE))


def link_info(fd: int) -> dict[str, object]:
    """decode_link_info of a link fd. A first call with the union zero tells the link type (a pointer there
    means something else to each type); a raw tracepoint gets a second one with a buffer for its name."""
    raw = obj_get_info_by_fd(fd, _INFO_SIZE)
    if _name(LINK_TYPES, _u32(raw, 0)) != "raw_tracepoint":
        return decode_link_info(raw)
    name = ctypes.create_string_buffer(256)
    request = bytes(_LINK_UNION) + struct.pack("=QI", _addr(name), len(name))
    return decode_link_info(obj_get_info_by_fd(fd, _INFO_SIZE, request), name.value.decode("utf-8", "replace"))


INFO = {"prog": prog_info, "map": map_info, "link": link_info}


def objects(kind: str) -> list[dict[str, object]]:
    """The info of every `kind` the kernel holds; one that vanishes while being read is left out."""
    found = []
    for object_id in object_ids(kind):
        fd = fd_by_id(kind, object_id)
        if fd is None:
            continue
        try:
            found.append(INFO[kind](fd))
        finally:
            close(fd)
    return found


def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: pin a program, map or link fd at `path` on a bpffs."""
    name = ctypes.create_string_buffer(path.encode())
    ret, err = _call(BPF_OBJ_PIN, ctypes.create_string_buffer(struct.pack("=QII", _addr(name), fd, 0), 16))
    if ret < 0:
        raise BpfSyscallError(f"BPF_OBJ_PIN {path}", err)


def obj_get(path: str) -> int:
    """BPF_OBJ_GET: a new fd for the object pinned at `path`."""
    name = ctypes.create_string_buffer(path.encode())
    ret, err = _call(BPF_OBJ_GET, ctypes.create_string_buffer(struct.pack("=QII", _addr(name), 0, 0), 16))
    if ret < 0:
        raise BpfSyscallError(f"BPF_OBJ_GET {path}", err)
    return ret


# The names of bpf fds' anonymous inodes; a link made by BPF_LINK_CREATE is "bpf_link", one from
# BPF_LINK_GET_FD_BY_ID or BPF_OBJ_GET "bpf-link".
_ANON_INODE_KINDS = {
    "anon_inode:bpf-prog": "prog",
    "anon_inode:bpf-map": "map",
    "anon_inode:bpf_link": "link",
    "anon_inode:bpf-link": "link",
}


def fd_kind(fd: int) -> str:
    """The kind of a bpf fd, "prog", "map" or "link", from the name of its anonymous inode (any other
    name as it is, so that something new shows rather than vanishes)."""
    name = os.readlink(f"/proc/self/fd/{fd}")
    return _ANON_INODE_KINDS.get(name, name)


def pins(bpffs: str = "/sys/fs/bpf") -> list[dict[str, object]]:
    """Every object pinned under the directory `bpffs`: {"path", "kind", "id"}, sorted by path.

    Symbolic links are never followed and other mounts below `bpffs` are not entered: each pin is opened
    with O_PATH | O_NOFOLLOW relative to its directory's fd, checked to be a file on this file system, and
    only that very inode is handed to BPF_OBJ_GET (through /proc/self/fd). ENOENT from it is skipped: a pin
    removed meanwhile, or the kernel's own bpf_preload iterators (progs.debug, maps.debug) in a new mount."""
    import stat

    root = os.path.realpath(bpffs)
    if not os.path.isdir(root):
        raise NotADirectoryError(f"bpffs directory {bpffs} does not exist or is not a directory")
    device = os.stat(root).st_dev
    found: list[dict[str, object]] = []
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False):
        if os.fstat(dirfd).st_dev != device:
            dirnames.clear()
            continue
        for filename in filenames:
            try:
                path_fd = os.open(filename, os.O_PATH | os.O_NOFOLLOW, dir_fd=dirfd)
            except FileNotFoundError:
                continue
            try:
                st = os.fstat(path_fd)
                if not stat.S_ISREG(st.st_mode) or st.st_dev != device:
                    continue
                path = os.path.join(dirpath, filename)
                try:
                    fd = obj_get(f"/proc/self/fd/{path_fd}")
                except BpfSyscallError as exc:
                    if exc.errno == _ENOENT:
                        continue
                    raise BpfSyscallError(f"BPF_OBJ_GET {path}", exc.errno) from None
            finally:
                os.close(path_fd)
            try:
                found.append({"path": path, "kind": fd_kind(fd), "id": _u32(obj_get_info_by_fd(fd, _INFO_SIZE), 4)})
            finally:
                close(fd)
    return sorted(found, key=lambda pin: str(pin["path"]))
