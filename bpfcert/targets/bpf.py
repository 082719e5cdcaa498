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
from bpfcert.uapi import ATTACH_TYPES as ATTACH_TYPES
from bpfcert.uapi import HELPER_NAMES as HELPER_NAMES
from bpfcert.uapi import MAP_TYPES as MAP_TYPES
from bpfcert.uapi import PROG_TYPES as PROG_TYPES

# bpf(2) syscall number per machine (uname -m).
SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "s390x": 351}

# enum bpf_cmd values used here.
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_PROG_LOAD = 5
BPF_PROG_TEST_RUN = 10
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_BTF_LOAD = 18
BPF_LINK_CREATE = 28

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
_NR = SYSCALL_NR.get(os.uname().machine, -1)


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
    log: LogBuffer | None = None,
    log_level: int = 1,
) -> tuple[int, int]:
    """BPF_PROG_LOAD without raising: (fd, 0) or (-1, errno); the verifier log, if any, is left in `log`."""
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
            b"",
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
) -> int:
    """Load a program and return its fd; on failure reload with a verifier log and raise BpfSyscallError."""
    opts = {"expected_attach_type": expected_attach_type, "attach_btf_id": attach_btf_id}
    fd, err = try_prog_load(prog_type, insns, license, prog_flags=prog_flags, log=None, **opts)
    if fd >= 0:
        return fd
    log = LogBuffer()
    fd, err2 = try_prog_load(prog_type, insns, license, prog_flags=prog_flags, log=log, **opts)
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
            b"",
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


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, map_flags: int = 0) -> int:
    """Create a map and return its fd; BpfSyscallError on failure."""
    fd, err = try_map_create(map_type, key_size, value_size, max_entries, map_flags)
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


def obj_get_info_by_fd(fd: int, info_size: int = 256) -> bytes:
    """BPF_OBJ_GET_INFO_BY_FD: the raw bpf_{prog,map,btf,link}_info bytes the kernel filled in."""
    info = ctypes.create_string_buffer(info_size)
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
