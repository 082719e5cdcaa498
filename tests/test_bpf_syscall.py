"""bpfcert.targets.bpf: the bpf(2) layer on the host kernel (real syscalls; needs root)."""

from __future__ import annotations

import errno
import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfcert import insn
from bpfcert.errors import BpfcertError
from bpfcert.targets import bpf, ops

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="bpf(2) program loads need root")

XDP_TX = 3


def program(*insns: insn.Insn) -> bytes:
    return insn.assemble(insns)


def test_socket_filter_test_run_returns_its_r0() -> None:
    fd = bpf.prog_load(bpf.PROG_TYPES.index("socket_filter"), program(insn.mov64_imm(0, 7), insn.exit_()))
    try:
        run = bpf.prog_test_run(fd, bytes(64))
    finally:
        bpf.close(fd)
    assert run.retval == 7


def test_xdp_test_run_returns_action_and_packet() -> None:
    packet = bytes(range(64))
    fd = bpf.prog_load(bpf.PROG_TYPES.index("xdp"), program(insn.mov64_imm(0, XDP_TX), insn.exit_()))
    try:
        run = bpf.prog_test_run(fd, packet, repeat=3)
    finally:
        bpf.close(fd)
    assert run.retval == XDP_TX
    assert run.data_out == packet


def test_xdp_program_writes_packet_bytes() -> None:
    # r2 = ctx->data; r3 = ctx->data_end; if r2 + 1 > r3 goto out; *(u8 *)r2 = 0xab; out: r0 = XDP_PASS
    code = program(
        insn.ldx_mem("W", 2, 1, 0),
        insn.ldx_mem("W", 3, 1, 4),
        insn.mov64_reg(4, 2),
        insn.alu64_imm("add", 4, 1),
        insn.jmp_reg("jgt", 4, 3, 1),
        insn.st_mem("B", 2, 0, 0xAB),
        insn.mov64_imm(0, 2),
        insn.exit_(),
    )
    fd = bpf.prog_load(bpf.PROG_TYPES.index("xdp"), code)
    try:
        run = bpf.prog_test_run(fd, bytes(32))
    finally:
        bpf.close(fd)
    assert run.retval == 2
    assert run.data_out[:2] == b"\xab\x00"


def test_rejected_program_raises_typed_error_with_verifier_log() -> None:
    with pytest.raises(bpf.BpfSyscallError) as caught:
        bpf.prog_load(bpf.PROG_TYPES.index("socket_filter"), program(insn.exit_()))  # r0 never written
    assert isinstance(caught.value, BpfcertError)
    assert caught.value.errno == errno.EACCES
    assert "R0 !read_ok" in caught.value.log
    assert "R0 !read_ok" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_map_update_and_lookup_round_trip() -> None:
    fd = bpf.map_create(bpf.MAP_TYPES.index("hash"), 4, 8, 16)
    try:
        bpf.map_update(fd, struct.pack("<I", 5), struct.pack("<Q", 123456789))
        assert bpf.map_lookup(fd, struct.pack("<I", 5), 8) == struct.pack("<Q", 123456789)
        assert bpf.map_lookup(fd, struct.pack("<I", 6), 8) is None
        with pytest.raises(bpf.BpfSyscallError) as caught:
            bpf.map_update(fd, struct.pack("<I", 5), bytes(8), flags=1)  # BPF_NOEXIST on an existing key
        assert caught.value.errno == errno.EEXIST
    finally:
        bpf.close(fd)


def test_program_reads_map_written_from_user_space() -> None:
    """A program that looks up key 0 in an array map and returns the value: user space and kernel agree."""
    fd = bpf.map_create(bpf.MAP_TYPES.index("array"), 4, 4, 1)
    try:
        bpf.map_update(fd, bytes(4), struct.pack("<I", 41))
        code = program(
            insn.st_mem("W", 10, -4, 0),
            insn.mov64_reg(2, 10),
            insn.alu64_imm("add", 2, -4),
            insn.ld_map_fd(1, fd),
            insn.call(bpf.HELPER_NAMES.index("map_lookup_elem")),
            insn.jmp_imm("jeq", 0, 0, 2),
            insn.ldx_mem("W", 0, 0, 0),
            insn.exit_(),
            insn.mov64_imm(0, 0),
            insn.exit_(),
        )
        prog = bpf.prog_load(bpf.PROG_TYPES.index("socket_filter"), code)
        try:
            assert bpf.prog_test_run(prog, bytes(64)).retval == 41
        finally:
            bpf.close(prog)
    finally:
        bpf.close(fd)


def test_obj_get_info_reports_program_type() -> None:
    fd = bpf.prog_load(bpf.PROG_TYPES.index("xdp"), program(insn.mov64_imm(0, 2), insn.exit_()))
    try:
        info = bpf.obj_get_info_by_fd(fd)
    finally:
        bpf.close(fd)
    (prog_type,) = struct.unpack_from("<I", info, 0)  # struct bpf_prog_info starts with __u32 type
    assert bpf.PROG_TYPES[prog_type] == "xdp"


def test_btf_load_accepts_valid_and_rejects_garbage() -> None:
    strings = b"\0int\0"
    types = struct.pack("<IIII", 1, 1 << 24, 4, (1 << 24) | 32)
    header = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(strings))
    bpf.close(bpf.btf_load(header + types + strings))
    with pytest.raises(bpf.BpfSyscallError):
        bpf.btf_load(b"\x9f\xeb\x01\x00" + bytes(20))


@given(st.integers(min_value=-(2**31), max_value=2**31 - 1))
def test_test_run_returns_any_32_bit_immediate(value: int) -> None:
    fd = bpf.prog_load(bpf.PROG_TYPES.index("socket_filter"), program(insn.mov64_imm(0, value), insn.exit_()))
    try:
        assert bpf.prog_test_run(fd, bytes(16)).retval == value & 0xFFFFFFFF
    finally:
        bpf.close(fd)


def test_prog_test_run_op_matches_contract() -> None:
    code = program(insn.mov64_imm(0, XDP_TX), insn.exit_()).hex()
    result = ops.OPS["prog_test_run"](prog_type="xdp", insns_hex=code, data_hex="00" * 20)
    assert result["retval"] == XDP_TX
    assert result["data_out_hex"] == "00" * 20
    assert isinstance(result["duration_ns"], int)
    with pytest.raises(ValueError, match="unknown program type"):
        ops.OPS["prog_test_run"](prog_type="nope", insns_hex=code)


def test_verifier_reason_skips_statistics_trailer() -> None:
    log = "0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0\n"
    assert bpf.verifier_reason(log) == "R0 !read_ok"
    assert bpf.verifier_reason("") == ""


def test_a_link_being_set_up_or_released_counts_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """BPF_LINK_GET_FD_BY_ID answers EAGAIN for a link whose id is not settled (being attached or released); a
    snapshot (kernel_state) taken meanwhile leaves it out instead of failing. EAGAIN for another kind still raises."""
    monkeypatch.setattr(bpf, "_call", lambda cmd, attr: (-1, errno.EAGAIN))
    assert bpf.fd_by_id("link", 1) is None
    with pytest.raises(bpf.BpfSyscallError):
        bpf.fd_by_id("prog", 1)
