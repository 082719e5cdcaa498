"""ISA cases on a kernel, the body of the "isa_kernel" and "isa_run" ops: each case as an XDP program run once with
BPF_PROG_TEST_RUN, its full 64-bit r0 captured through an array map.

The adapter (bpf_conformance's calling convention, r1 = memory and r2 = its length): a prologue bounds-checks the
packet, calls the case's program as a local function (so its `exit` returns here), stores r0 in element 0 of an
array map and returns XDP_PASS. XDP refuses input shorter than an Ethernet header, so memory is padded with zeros
to 14 bytes (r2 stays the case's own length). The interpreter and the JIT are told apart by
net.core.bpf_jit_enable (switched for the batch, then restored) and checked per program (jited_prog_len).

Byte order: cases are encoded little-endian (as their files and the harness hold them); on a big-endian kernel
(s390x) the adapter and each program are encoded in the kernel's order (insn.reorder), and r0 is read back from the
map in it. The memory image goes in as its bytes: the program reads it in the kernel's order, which is what the
reference interpreter of that byte order (bpfcert.isa.interpreter, byteorder="big") is judged against.

Stdlib + ctypes only: this module runs inside the guest agent.
"""

from __future__ import annotations

import errno
import os
import struct
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

from bpfcert import insn
from bpfcert.targets import bpf

JIT_SYSCTL = "/proc/sys/net/core/bpf_jit_enable"
MIN_PACKET = 14  # XDP test runs refuse less than an Ethernet header
XDP_ABORTED, XDP_PASS = 0, 2
_ARRAY = bpf.MAP_TYPES.index("array")
_XDP = bpf.PROG_TYPES.index("xdp")
_JITED_PROG_LEN = 16  # offset in struct bpf_prog_info
_LOG_LINES = 3  # verifier log lines kept in a refusal
PROLOGUE_SLOTS = 21  # the length of `prologue` in instruction slots


def prologue(map_fd: int, packet_len: int, memory_len: int) -> bytes:
    """The XDP entry: check that `packet_len` bytes of packet exist, call the body (which follows) with r1 = data
    and r2 = `memory_len`, store its r0 in map element 0, return XDP_PASS (XDP_ABORTED if anything is amiss)."""
    code = [
        insn.ldx_mem("W", 6, 1, 0),  # r6 = ctx->data
        insn.ldx_mem("W", 7, 1, 4),  # r7 = ctx->data_end
        insn.mov64_reg(3, 6),
        insn.alu64_imm("add", 3, packet_len),
        insn.jmp_reg("jgt", 3, 7, 14),  # data + len > data_end: abort
        insn.mov64_reg(1, 6),
        insn.mov64_imm(2, memory_len),
        insn.call_local(13),  # the body, right after this prologue
        insn.mov64_reg(6, 0),
        insn.st_mem("W", 10, -4, 0),  # key 0
        insn.ld_map_fd(1, map_fd),
        insn.mov64_reg(2, 10),
        insn.alu64_imm("add", 2, -4),
        insn.call(1),  # bpf_map_lookup_elem
        insn.jmp_imm("jeq", 0, 0, 3),
        insn.stx_mem("DW", 0, 6, 0),
        insn.mov64_imm(0, XDP_PASS),
        insn.exit_(),
        insn.mov64_imm(0, XDP_ABORTED),
        insn.exit_(),
    ]
    return insn.assemble(code, sys.byteorder)


def _read_jit_enable() -> int | None:
    """net.core.bpf_jit_enable, or None on a kernel built without a JIT."""
    try:
        with open(JIT_SYSCTL) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def _write_jit_enable(value: int) -> None:
    with open(JIT_SYSCTL, "w") as f:
        f.write(f"{value}\n")


@contextmanager
def _jit_switch_lock() -> Iterator[None]:
    """Held while net.core.bpf_jit_enable may differ from its saved value, so that two runs switching it at once
    cannot leave it switched (the second would otherwise save the first one's temporary value and restore that)."""
    import fcntl
    import tempfile

    fd = os.open(os.path.join(tempfile.gettempdir(), "bpfcert-bpf-jit.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def jit_modes() -> dict[str, Any]:
    """Which execution modes this kernel offers: {"jit_enable", "interpreter", "jit", "why"}. Without a JIT only the
    interpreter; with CONFIG_BPF_JIT_ALWAYS_ON (net.core.bpf_jit_enable refuses 0) only the JIT. Probing writes the
    current value back at once."""
    with _jit_switch_lock():
        current = _read_jit_enable()
        if current is None:
            return {"jit_enable": None, "interpreter": True, "jit": False, "why": "the kernel has no BPF JIT"}
        try:
            _write_jit_enable(0)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            why = "the kernel is built with CONFIG_BPF_JIT_ALWAYS_ON (net.core.bpf_jit_enable refuses 0)"
            why += ": no interpreter"
            return {"jit_enable": current, "interpreter": False, "jit": True, "why": why}
        _write_jit_enable(current)
        return {"jit_enable": current, "interpreter": True, "jit": True, "why": ""}


@contextmanager
def jit_mode(jit: bool) -> Iterator[None]:
    """Programs loaded inside run with the JIT (`jit`) or the interpreter; the sysctl is restored on leaving.
    OSError when the kernel cannot (see `jit_modes`)."""
    with _jit_switch_lock():
        current = _read_jit_enable()
        if current is None:
            if jit:
                raise OSError(errno.ENOTSUP, "the kernel has no BPF JIT")
            yield
            return
        wanted = (current or 1) if jit else 0
        if wanted == current:
            yield
            return
        try:
            _write_jit_enable(wanted)
        except OSError as exc:
            if exc.errno == errno.EINVAL and not jit:
                raise OSError(exc.errno, "the kernel is built with CONFIG_BPF_JIT_ALWAYS_ON: no interpreter") from None
            raise
        try:
            yield
        finally:
            _write_jit_enable(current)


def _refusal(err: int, log: str) -> str:
    """A load refusal in one line: the errno and the verifier log's last lines (statistics trailers left out)."""
    lines = [line.strip() for line in log.strip().splitlines() if line.strip()]
    reason = bpf.verifier_reason(log)
    tail = lines[: lines.index(reason) + 1][-_LOG_LINES:] if reason in lines else []
    where = f" (the case's instruction 0 is the log's {PROLOGUE_SLOTS})" if tail else ""
    return f"verifier refused the program ({os.strerror(err)}){where}" + (": " + " | ".join(tail) if tail else "")


def _run_one(
    program: bytes, memory: bytes, map_fd: int, jit: bool | None, log: bpf.LogBuffer, prologues: dict[int, bytes]
) -> dict[str, Any]:
    if len(program) % 8 or not program:
        return {"error": f"program of {len(program)} bytes is not a whole number of instructions"}
    packet = memory.ljust(MIN_PACKET, b"\0")
    entry = prologues.get(len(memory))
    if entry is None:  # assembled once per memory size: under TCG, assembling it for every case cost 10% of a batch
        entry = prologues[len(memory)] = prologue(map_fd, len(packet), len(memory))
    code = entry + insn.reorder(program, "little", sys.byteorder)
    fd, err = bpf.try_prog_load(_XDP, code, log=None)
    if fd < 0:
        fd, err = bpf.try_prog_load(_XDP, code, log=log)
        if fd < 0:
            return {"error": _refusal(err, log.text())}
    try:
        if jit is not None:
            jited = struct.unpack_from("=I", bpf.obj_get_info_by_fd(fd, 256), _JITED_PROG_LEN)[0] > 0
            if jited != jit:
                return {"error": "the kernel ran the program " + ("JIT-compiled" if jited else "interpreted")}
        try:
            run = bpf.prog_test_run(fd, packet, data_out_size=0)
        except bpf.BpfSyscallError as exc:
            return {"error": str(exc)}
        if run.retval != XDP_PASS:
            return {"error": f"the adapter's prologue returned {run.retval}, not XDP_PASS: r0 was not captured"}
        value = bpf.map_lookup(map_fd, bytes(4), 8)
        return {"r0": struct.unpack("=Q", value or bytes(8))[0]}
    finally:
        bpf.close(fd)


def isa_run(cases: Sequence[Sequence[str]], jit: bool | None = None) -> dict[str, Any]:
    """Run each case, given as [program_hex, memory_hex], once: {"outcomes": [{"r0": int} | {"error": str}]}.
    `jit` True/False selects the JIT/interpreter (OSError when the kernel has not that one); None takes the
    kernel's current mode."""
    map_fd = bpf.map_create(_ARRAY, 4, 8, 1, name="bpfcert_isa_r0")
    log = bpf.LogBuffer()
    try:
        with jit_mode(jit) if jit is not None else nullcontext():
            prologues: dict[int, bytes] = {}
            outcomes = [_run_one(bytes.fromhex(p), bytes.fromhex(m), map_fd, jit, log, prologues) for p, m in cases]
    finally:
        bpf.close(map_fd)
    return {"outcomes": outcomes}


def isa_kernel() -> dict[str, Any]:
    """What the kernel offers as an ISA engine: {"release", "machine" (`uname -m`), "byteorder", "modes"
    (jit_modes), "isa" (v1..v4 -> probe answer), "atomics" (an atomic fetch-and-add loads: the atomic groups beyond
    the v1 add)}."""
    from bpfcert.targets import probes

    prober = probes.Prober()
    isa = {version: finding.status for version, finding in prober.probe_isa().items()}
    atomics = prober.probe_extended_atomics().status == probes.AVAILABLE
    uname = os.uname()
    return {
        "release": uname.release, "machine": uname.machine, "byteorder": sys.byteorder, "modes": jit_modes(),
        "isa": isa, "atomics": atomics,
    }  # fmt: skip
