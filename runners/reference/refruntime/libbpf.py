"""libbpf 1.x (Debian's libbpf.so.1) through ctypes: the calls the reference runtime makes, raising LibbpfError.

Structs stay opaque pointers (restype c_void_p, or ctypes truncates them). Pointer-returning calls give NULL and set
errno; int-returning calls give -errno (see shared/docs/libbpf.md for what was measured on libbpf 1.1)."""

from __future__ import annotations

import ctypes
import os
import struct
from collections import namedtuple

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any

_lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
_P = ctypes.c_void_p
_S = ctypes.c_char_p
_I = ctypes.c_int

# name -> (restype, argtypes)
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_P, [_P]),
    "bpf_object__open_file": (_P, [_S, _P]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__next_program": (_P, [_P, _P]),
    "bpf_object__next_map": (_P, [_P, _P]),
    "bpf_program__name": (_S, [_P]),
    "bpf_program__section_name": (_S, [_P]),
    "bpf_program__fd": (_I, [_P]),
    "bpf_program__set_autoload": (_I, [_P, ctypes.c_bool]),
    "bpf_program__autoload": (ctypes.c_bool, [_P]),
    "bpf_program__set_log_buf": (_I, [_P, _P, ctypes.c_size_t]),
    "bpf_program__attach": (_P, [_P]),
    "bpf_program__attach_xdp": (_P, [_P, _I]),
    "bpf_program__attach_cgroup": (_P, [_P, _I]),
    "bpf_program__attach_netns": (_P, [_P, _I]),
    "bpf_program__attach_tracepoint": (_P, [_P, _S, _S]),
    "bpf_program__attach_kprobe": (_P, [_P, ctypes.c_bool, _S]),
    "bpf_program__attach_trace": (_P, [_P]),
    "bpf_program__attach_raw_tracepoint": (_P, [_P, _S]),
    "bpf_map__name": (_S, [_P]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_map__type": (_I, [_P]),
    "bpf_map__key_size": (ctypes.c_uint32, [_P]),
    "bpf_map__value_size": (ctypes.c_uint32, [_P]),
    "bpf_map__max_entries": (ctypes.c_uint32, [_P]),
    "bpf_map__reuse_fd": (_I, [_P, _I]),
    "bpf_map__set_pin_path": (_I, [_P, _S]),
    "bpf_map__initial_value": (_P, [_P, ctypes.POINTER(ctypes.c_size_t)]),
    "bpf_map__set_initial_value": (_I, [_P, _P, ctypes.c_size_t]),
    "bpf_link__fd": (_I, [_P]),
    "bpf_link__destroy": (_I, [_P]),
    "bpf_obj_pin": (_I, [_I, _S]),
    "bpf_obj_get": (_I, [_S]),
    "bpf_obj_get_info_by_fd": (_I, [_I, _P, ctypes.POINTER(ctypes.c_uint32)]),
    "bpf_link_update": (_I, [_I, _I, _P]),
    "bpf_link_create": (_I, [_I, _I, _I, _P]),
    "bpf_object__btf": (_P, [_P]),
    "btf__find_by_name_kind": (_I, [_P, _S, ctypes.c_uint32]),
    "btf__type_by_id": (_P, [_P, ctypes.c_uint32]),
    "btf__name_by_offset": (_S, [_P, ctypes.c_uint32]),
}
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(_lib, _name)
    _fn.restype, _fn.argtypes = _restype, _argtypes
_lib.libbpf_set_print(None)  # libbpf's own stderr chatter off: failures are reported through our errors

VERIFIER_LOG_SIZE = 1 << 20
BTF_KIND_DATASEC = 15


class LibbpfError(Exception):
    """A libbpf call that failed: `errno` and a one-line message."""

    def __init__(self, what: str, err: int) -> None:
        super().__init__(f"{what}: {os.strerror(err) if err else 'failed'}")
        self.errno = err


def _check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        raise LibbpfError(what, ctypes.get_errno())
    return ptr


def _check_int(ret: int, what: str) -> int:
    if ret < 0:
        raise LibbpfError(what, -ret)
    return ret


def _b(text: str) -> bytes:
    return text.encode()


class Object:
    """An opened (then loaded) BPF object file; close() frees it (programs and maps close unless pinned or
    attached through a pinned link)."""

    def __init__(self, path: str) -> None:
        self.ptr = _check_ptr(_lib.bpf_object__open_file(_b(path), None), f"cannot open {path}")
        self.log_bufs: dict[str, ctypes.Array[ctypes.c_char]] = {}
        for m in self.maps().values():
            _lib.bpf_map__set_pin_path(m, None)  # no automatic pinning under /sys/fs/bpf: we pin ourselves

    def close(self) -> None:
        if self.ptr:
            _lib.bpf_object__close(self.ptr)
            self.ptr = 0

    def programs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        prog = _lib.bpf_object__next_program(self.ptr, None)
        while prog:
            out[_lib.bpf_program__name(prog).decode()] = prog
            prog = _lib.bpf_object__next_program(self.ptr, prog)
        return out

    def maps(self) -> dict[str, int]:
        out: dict[str, int] = {}
        m = _lib.bpf_object__next_map(self.ptr, None)
        while m:
            out[_lib.bpf_map__name(m).decode()] = m
            m = _lib.bpf_object__next_map(self.ptr, m)
        return out

    def set_autoload(self, prog: int, autoload: bool) -> None:
        _check_int(_lib.bpf_program__set_autoload(prog, autoload), "bpf_program__set_autoload")

    def capture_verifier_log(self, name: str, prog: int) -> None:
        buf = ctypes.create_string_buffer(VERIFIER_LOG_SIZE)
        self.log_bufs[name] = buf
        _check_int(_lib.bpf_program__set_log_buf(prog, buf, VERIFIER_LOG_SIZE), "bpf_program__set_log_buf")

    def verifier_log(self) -> str:
        return "\n".join(b.value.decode("utf-8", "replace") for b in self.log_bufs.values() if b.value)

    def load(self) -> None:
        _check_int(_lib.bpf_object__load(self.ptr), "bpf_object__load")

    def section_variables(self, section: str) -> dict[str, tuple[int, int]]:
        """name -> (offset, size) of the variables in a data section (".rodata"), from the object's BTF DATASEC
        (libbpf fills in the offsets at open; its BTF is in host byte order): no ELF parsing of our own."""
        btf = _lib.bpf_object__btf(self.ptr)
        type_id = _lib.btf__find_by_name_kind(btf, _b(section), BTF_KIND_DATASEC) if btf else -1
        if type_id < 0:
            return {}
        datasec = _lib.btf__type_by_id(btf, type_id)
        vlen = struct.unpack("=III", ctypes.string_at(datasec, 12))[1] & 0xFFFF  # struct btf_type: name_off, info
        out = {}
        for var_type, offset, size in struct.iter_unpack("=III", ctypes.string_at(datasec + 12, 12 * vlen)):
            name_off = struct.unpack("=I", ctypes.string_at(_lib.btf__type_by_id(btf, var_type), 4))[0]
            out[_lib.btf__name_by_offset(btf, name_off).decode()] = (offset, size)
        return out


def map_initial_value(m: int) -> bytes:
    size = ctypes.c_size_t(0)
    ptr = _lib.bpf_map__initial_value(m, ctypes.byref(size))
    return ctypes.string_at(ptr, size.value) if ptr else b""


def map_set_initial_value(m: int, data: bytes) -> None:
    buf = ctypes.create_string_buffer(data, len(data))
    _check_int(_lib.bpf_map__set_initial_value(m, buf, len(data)), "bpf_map__set_initial_value")


def map_reuse_fd(m: int, fd: int) -> None:
    _check_int(_lib.bpf_map__reuse_fd(m, fd), "bpf_map__reuse_fd")


def map_fd(m: int) -> int:
    return _check_int(_lib.bpf_map__fd(m), "bpf_map__fd")


def prog_fd(prog: int) -> int:
    return _check_int(_lib.bpf_program__fd(prog), "bpf_program__fd")


def section_name(prog: int) -> str:
    name: bytes = _lib.bpf_program__section_name(prog)
    return name.decode()


def attach(prog: int, kind: str, *args: Any) -> int:
    """A struct bpf_link * for one of: xdp(ifindex), cgroup(fd), netns(fd), tracepoint(category, name),
    kprobe(retprobe, function), trace() (fentry/fexit/...), raw_tracepoint(name), auto() (from the section)."""
    fn = getattr(_lib, "bpf_program__attach" if kind == "auto" else f"bpf_program__attach_{kind}")
    return _check_ptr(fn(prog, *(_b(a) if isinstance(a, str) else a for a in args)), f"attach {kind}")


def link_fd(link: int) -> int:
    return _check_int(_lib.bpf_link__fd(link), "bpf_link__fd")


def link_destroy(link: int) -> None:
    _lib.bpf_link__destroy(link)


def obj_pin(fd: int, path: str) -> None:
    _check_int(_lib.bpf_obj_pin(fd, _b(path)), f"cannot pin {path}")


def obj_get(path: str) -> int:
    return _check_int(_lib.bpf_obj_get(_b(path)), f"cannot open pin {path}")


def link_update(link: int, prog: int) -> None:
    """Swap the program of a link atomically (BPF_LINK_UPDATE); EOPNOTSUPP where the link type cannot."""
    _check_int(_lib.bpf_link_update(link, prog, None), "bpf_link_update")


def link_create(prog: int, target: int, attach_type: int) -> int:
    return _check_int(_lib.bpf_link_create(prog, target, attach_type, None), "bpf_link_create")


def _info(fd: int, size: int = 256) -> bytes:
    buf = ctypes.create_string_buffer(size)
    length = ctypes.c_uint32(size)
    _check_int(_lib.bpf_obj_get_info_by_fd(fd, buf, ctypes.byref(length)), "bpf_obj_get_info_by_fd")
    return buf.raw[: length.value]


def prog_info(fd: int) -> tuple[int, int, str]:
    """(type, id, name) of a program (struct bpf_prog_info: type, id, ..., name[16] at 64)."""
    raw = _info(fd)
    prog_type, prog_id = struct.unpack_from("=II", raw, 0)
    return prog_type, prog_id, raw[64:80].split(b"\0")[0].decode()


MapInfo = namedtuple("MapInfo", "type id key_size value_size max_entries name")  # not typing.NamedTuple: no typing


def map_info(fd: int) -> MapInfo:
    """A map's struct bpf_map_info: type, id, key/value sizes, max entries, flags, name[16]."""
    raw = _info(fd)
    map_type, map_id, key_size, value_size, max_entries = struct.unpack_from("=IIIII", raw, 0)
    return MapInfo(map_type, map_id, key_size, value_size, max_entries, raw[24:40].split(b"\0")[0].decode())


def map_layout(m: int) -> tuple[int, int, int, int]:
    """(type, key size, value size, max entries) of an opened object's map, as it will be created."""
    return (_lib.bpf_map__type(m), _lib.bpf_map__key_size(m), _lib.bpf_map__value_size(m), _lib.bpf_map__max_entries(m))


def link_info(fd: int) -> tuple[int, int, int]:
    """(type, id, prog_id) of a link (struct bpf_link_info)."""
    raw = _info(fd)
    link_type, link_id, prog_id = struct.unpack_from("=III", raw, 0)
    return link_type, link_id, prog_id
