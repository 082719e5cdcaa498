"""The instruction decoder against llvm-objdump, hand-assembled v2-v4 instructions, byte-level properties."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfcert import insn as bi
from bpfcert.errors import FormatError

CLANG_INCLUDE = "/usr/include/x86_64-linux-gnu"
needs_llvm = pytest.mark.skipif(
    shutil.which("clang") is None or shutil.which("llvm-objdump") is None,
    reason="clang/llvm-objdump not installed",
)

# Exercises ALU32/64, both jump classes, loads/stores of all sizes, lddw with relocations, helper and
# bpf-to-bpf calls, byte swaps and (with -mcpu=v3) atomics.
SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
__u64 g64; __u32 g32; __u16 g16; __u8 g8; const volatile __s64 limit = -5;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); }
    counts SEC(".maps");
static __noinline __u64 mix(__u64 a, __u32 b) { return (a * 31) ^ (b >> 3) ^ (a % 7) ^ (a / (b | 1)); }
SEC("xdp") int prog(struct xdp_md *ctx) {
    __u32 len = ctx->data_end - ctx->data, key = len & 3;
    __u64 *v = bpf_map_lookup_elem(&counts, &key);
    __sync_fetch_and_add(&g64, 1);
    __sync_fetch_and_add(&g32, len);
    g16 = (__u16)len; g8 = (__u8)(len >> 8);
    if (v) { *v += mix(len, key); if ((__s64)*v < limit) return bpf_htons(len); }
    if (len < 60 || (int)len <= -1) return bpf_htonl(len) + __builtin_bswap64(g64);
    return (len << 3) - ((__s64)len >> 2) + g16 + g8;
}
char LICENSE[] SEC("license") = "GPL";
"""
ATOMICS = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
__u64 g64;
SEC("xdp") int atomics(struct xdp_md *ctx) {
    __u64 x = ctx->data_end - ctx->data;
    __u64 o = __sync_fetch_and_or(&g64, x);
    __u64 a = __sync_fetch_and_and(&g64, x);
    __u64 e = __sync_fetch_and_xor(&g64, x);
    __u64 f = __sync_fetch_and_add(&g64, x);
    __u64 xc = __sync_lock_test_and_set(&g64, 7);
    return __sync_val_compare_and_swap(&g64, o, xc) + a + e + f;
}
char LICENSE[] SEC("license") = "GPL";
"""


def compile_bpf(tmp: Path, name: str, source: str, *flags: str) -> Path:
    src, out = tmp / f"{name}.c", tmp / f"{name}.o"
    src.write_text(source)
    subprocess.run(
        ["clang", "-O2", "-g", "-c", "-I", CLANG_INCLUDE, *flags, str(src), "-o", str(out)], check=True
    )
    return out


def objdump(path: Path) -> dict[tuple[str, int], tuple[bytes, str]]:
    """(section, slot index) -> (raw bytes, text) from llvm-objdump -d, labels stripped."""
    out = subprocess.run(["llvm-objdump", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    rows, section = {}, ""
    for line in out.splitlines():
        if m := re.match(r"Disassembly of section (.+):", line):
            section = m.group(1)
        elif m := re.match(r"\s+(\d+):\t((?:[0-9a-f]{2} ?)+)\t(.*)$", line):
            raw = bytes.fromhex(m.group(2).replace(" ", ""))
            rows[(section, int(m.group(1)))] = (raw, re.sub(r" <[\w.]+>$", "", m.group(3)))
    return rows


def code_sections(path: Path) -> list[tuple[str, bytes, str]]:
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        order = "little" if elf.little_endian else "big"
        return [
            (s.name, s.data(), order)
            for s in elf.iter_sections()
            if s["sh_type"] == "SHT_PROGBITS" and s["sh_flags"] & 0x4 and s.data_size
        ]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("insn")
    return [
        compile_bpf(tmp, "v1", SOURCE, "-target", "bpf", "-mcpu=v1"),
        compile_bpf(tmp, "v2", SOURCE, "-target", "bpf", "-mcpu=v2"),
        compile_bpf(tmp, "v3", SOURCE, "-target", "bpf", "-mcpu=v3"),
        compile_bpf(tmp, "v3eb", SOURCE, "-target", "bpfeb", "-mcpu=v3"),
        compile_bpf(tmp, "atomics", ATOMICS, "-target", "bpf", "-mcpu=v3"),
        compile_bpf(tmp, "atomics_eb", ATOMICS, "-target", "bpfeb", "-mcpu=v3"),
    ]


@needs_llvm
def test_decode_matches_llvm_objdump(compiled: list[Path]) -> None:
    compared = 0
    for path in compiled:
        expected = objdump(path)
        for section, data, order in code_sections(path):
            insns = bi.decode(data, order)
            assert sum(i.slots for i in insns) * 8 == len(data)
            for i in insns:
                raw, text = expected[(section, i.index)]
                assert raw == data[i.index * 8 : (i.index + i.slots) * 8]
                assert raw[0] == i.opcode
                if text != "<unknown>":  # llvm-objdump 14 cannot print 32-bit atomic fetch ops
                    assert bi.disasm(i) == text, (path.name, section, i.index)
                    compared += 1
    assert compared > 200


@needs_llvm
def test_isa_levels_follow_mcpu(compiled: list[Path]) -> None:
    levels = {}
    for path in compiled:
        levels[path.stem] = max(
            i.isa_version for _, data, order in code_sections(path) for i in bi.decode(data, order)
        )
    assert levels == {"v1": 1, "v2": 2, "v3": 3, "v3eb": 3, "atomics": 3, "atomics_eb": 3}


@needs_llvm
def test_big_endian_decodes_like_little_endian(compiled: list[Path]) -> None:
    def fields(path: Path) -> list[tuple[int, int, int, int, int, int | None]]:
        return [
            (i.opcode, i.dst_reg, i.src_reg, i.offset, i.imm, i.imm64)
            for _, data, order in code_sections(path)
            for i in bi.decode(data, order)
        ]

    little, big = fields(compiled[4]), fields(compiled[5])  # code without byte swaps compiles alike
    assert little == big and len(little) > 10


@needs_llvm
def test_atomics_are_named(compiled: list[Path]) -> None:
    ops = {i.atomic_op for _, data, order in code_sections(compiled[4]) for i in bi.decode(data, order)}
    assert {"fetch_or", "fetch_and", "fetch_xor", "fetch_add", "xchg", "cmpxchg"} <= ops


# Hand-assembled instructions clang 14 cannot emit (v4), with their expected mnemonic, ISA level and text.
HAND = [
    (bi.Insn(0, 0x3F, 1, 2, 1, 0), "sdiv", 4, "r1 s/= r2"),
    (bi.Insn(0, 0x94, 1, 0, 1, 7), "smod", 4, "w1 s%= 7"),
    (bi.Insn(0, 0xBF, 1, 2, 8, 0), "movsx", 4, "r1 = (s8)r2"),
    (bi.Insn(0, 0xBF, 1, 2, 32, 0), "movsx", 4, "r1 = (s32)r2"),
    (bi.Insn(0, 0xBC, 1, 2, 16, 0), "movsx", 4, "w1 = (s16)w2"),
    (bi.Insn(0, 0x91, 1, 2, 4, 0), "ldxsx", 4, "r1 = (s8)*(u8 *)(r2 + 4)"),
    (bi.Insn(0, 0x81, 3, 10, -8, 0), "ldxsx", 4, "r3 = (s32)*(u32 *)(r10 - 8)"),
    (bi.Insn(0, 0xD7, 1, 0, 0, 16), "bswap", 4, "r1 = bswap16 r1"),
    (bi.Insn(0, 0xD7, 1, 0, 0, 64), "bswap", 4, "r1 = bswap64 r1"),
    (bi.Insn(0, 0x06, 0, 0, 0, 70000), "gotol", 4, "gotol +70000"),
    (bi.Insn(0, 0xDC, 1, 0, 0, 32), "be", 1, "r1 = be32 r1"),
    (bi.Insn(0, 0xD4, 1, 0, 0, 16), "le", 1, "r1 = le16 r1"),
    (bi.Insn(0, 0xAD, 1, 2, 3, 0), "jlt", 2, "if r1 < r2 goto +3"),
    (bi.Insn(0, 0xD5, 1, 0, -2, 5), "jsle", 2, "if r1 s<= 5 goto -2"),
    (bi.Insn(0, 0x2D, 1, 2, 3, 0), "jgt", 1, "if r1 > r2 goto +3"),
    (bi.Insn(0, 0x16, 1, 0, 1, 9), "jeq", 3, "if w1 == 9 goto +1"),
    (bi.Insn(0, 0xDB, 1, 2, 0, 0x00), "add", 1, "lock *(u64 *)(r1 + 0) += r2"),
    (bi.Insn(0, 0xC3, 1, 2, 4, 0x00), "add", 1, "lock *(u32 *)(r1 + 4) += r2"),
    (bi.Insn(0, 0xC3, 1, 2, 0, 0x40), "or", 3, "lock *(u32 *)(r1 + 0) |= r2"),
    (bi.Insn(0, 0xDB, 1, 2, 0, 0x01), "fetch_add", 3, "r2 = atomic_fetch_add((u64 *)(r1 + 0), r2)"),
    (bi.Insn(0, 0xDB, 1, 2, 0, 0xE1), "xchg", 3, "r2 = xchg_64(r1 + 0, r2)"),
    (bi.Insn(0, 0xC3, 1, 2, 0, 0xF1), "cmpxchg", 3, "w0 = cmpxchg32_32(r1 + 0, w0, w2)"),
    (bi.Insn(0, 0xDB, 1, 2, 0, 0x100), "load_acquire", 4, "r1 = load_acquire(*(u64 *)(r2 + 0))"),
    (bi.Insn(0, 0x85, 0, 0, 0, 1), "call", 1, "call 1"),
    (bi.Insn(0, 0x95, 0, 0, 0, 0), "exit", 1, "exit"),
    (bi.Insn(0, 0x30, 0, 0, 0, 12), "ldabs", 1, "r0 = *(u8 *)skb[12]"),
    (bi.Insn(0, 0xE5, 0, 0, 3, 0), "jcond", 1, "may_goto +3"),
]


@pytest.mark.parametrize(("insn", "mnemonic", "isa", "text"), HAND, ids=[h[3] for h in HAND])
def test_hand_assembled(insn: bi.Insn, mnemonic: str, isa: int, text: str) -> None:
    assert insn.known
    assert insn.mnemonic == mnemonic
    assert insn.isa_version == isa
    assert bi.disasm(insn) == text
    assert bi.decode(bi.encode(insn))[0] == insn


def test_lddw_pseudo_sources_and_wide_immediate() -> None:
    data = bi.assemble([bi.ld_imm64(1, 0x1122334455667788), bi.ld_map_fd(2, 7), bi.exit_()])
    wide, map_fd, end = bi.decode(data)
    assert (wide.index, map_fd.index, end.index) == (0, 2, 4)
    assert wide.imm64 == 0x1122334455667788 and wide.pseudo == "imm64" and wide.slots == 2
    assert map_fd.pseudo == "map_fd" and map_fd.imm64 == 7 and map_fd.dst_reg == 2
    assert [bi.decode(bi.assemble([bi.ld_imm64(0, 0, p)]))[0].pseudo for p in range(7)] == list(
        bi.LDDW_PSEUDO
    )


def test_call_kinds_and_targets() -> None:
    helper, local, kfunc = bi.decode(bi.assemble([bi.call(12), bi.call_local(5), bi.call_kfunc(4242)]))
    assert (helper.call_kind, local.call_kind, kfunc.call_kind) == ("helper", "local", "kfunc")
    assert local.jump_target == 1 + 1 + 5 and helper.jump_target is None
    assert bi.decode(bi.encode(bi.jmp_imm("jne", 3, 0, -4)))[0].jump_target == -3


def test_big_endian_register_nibbles() -> None:
    # r1 = *(u32 *)(r2 + 4): dst in the high nibble, big-endian offset and imm.
    (insn,) = bi.decode(bytes([0x61, 0x12, 0x00, 0x04, 0, 0, 0, 0]), "big")
    assert (insn.dst_reg, insn.src_reg, insn.offset) == (1, 2, 4)
    (same,) = bi.decode(bytes([0x61, 0x21, 0x04, 0x00, 0, 0, 0, 0]), "little")
    assert same == insn
    assert bi.encode(insn, "big") == bytes([0x61, 0x12, 0x00, 0x04, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x95" + b"\0" * 6, "not a multiple of 8"),
        (bytes([0x18, 1, 0, 0, 0, 0, 0, 0]), "truncated"),
        (bytes([0x18, 1, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]), "malformed"),
    ],
)
def test_bad_streams_raise_format_error(data: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        bi.decode(data)


def test_unknown_byte_order_is_a_format_error() -> None:
    with pytest.raises(FormatError, match="byte order"):
        bi.decode(b"", "middle")


@pytest.mark.parametrize(
    "opcode",
    [0xF4, 0x8D, 0x86, 0x96, 0xE6, 0xDF, 0x79 | 0x80, 0xCB, 0x00, 0x20 | 0x02],
    ids=["alu-op-0xf", "callx", "jmp32-call", "jmp32-exit", "jmp32-jcond", "alu64-end-x", "ldxsx-dw",
         "atomic-h", "ld-w-imm", "st-abs"],
)  # fmt: skip
def test_unknown_opcodes_decode_but_are_flagged(opcode: int) -> None:
    (odd,) = bi.decode(bytes([opcode, 0, 0, 0, 0, 0, 0, 0]))
    assert not odd.known and bi.disasm(odd).startswith(f".insn {opcode:#04x}")


@given(st.binary(max_size=256), st.sampled_from(["little", "big"]))
def test_decode_arbitrary_bytes_returns_or_raises_format_error(data: bytes, order: str) -> None:
    try:
        insns = bi.decode(data, order)
    except FormatError:
        return
    assert sum(i.slots for i in insns) * 8 == len(data)
    for i in insns:
        assert isinstance(bi.disasm(i), str)
        assert 1 <= i.isa_version <= 4
    assert bi.assemble(insns, order) == data  # decoding loses nothing


_registers = st.integers(0, 10)
_offsets = st.integers(-(2**15), 2**15 - 1)
_imms = st.integers(-(2**31), 2**31 - 1)
_built = st.one_of(
    st.builds(bi.alu64_imm, st.sampled_from(bi.ALU_OPS), _registers, _imms),
    st.builds(bi.alu32_reg, st.sampled_from(bi.ALU_OPS), _registers, _registers),
    st.builds(bi.ld_imm64, _registers, st.integers(0, 2**64 - 1), st.integers(0, 6)),
    st.builds(bi.ldx_mem, st.sampled_from(bi.SIZES), _registers, _registers, _offsets),
    st.builds(bi.stx_mem, st.sampled_from(bi.SIZES), _registers, _registers, _offsets),
    st.builds(bi.st_mem, st.sampled_from(bi.SIZES), _registers, _offsets, _imms),
    st.builds(bi.atomic, st.sampled_from(["W", "DW"]), st.sampled_from(list(bi.ATOMIC_CODES)), _registers,
              _registers, _offsets),
    st.builds(bi.jmp_imm, st.sampled_from(["jeq", "jgt", "jsle", "jset"]), _registers, _imms, _offsets),
    st.builds(bi.jmp_reg, st.sampled_from(["jne", "jlt", "jsge"]), _registers, _registers, _offsets),
    st.builds(bi.jmp32_imm, st.sampled_from(["jeq", "jle"]), _registers, _imms, _offsets),
    st.builds(bi.call, st.integers(1, 211)),
    st.builds(bi.call_local, _imms),
    st.just(bi.exit_()),
)  # fmt: skip


@given(st.lists(_built, max_size=20), st.sampled_from(["little", "big"]))
def test_encode_decode_round_trip(program: list[bi.Insn], order: str) -> None:
    decoded = bi.decode(bi.assemble(program, order), order)
    strip = [(i.opcode, i.dst_reg, i.src_reg, i.offset, i.imm, i.imm64) for i in decoded]
    assert strip == [(i.opcode, i.dst_reg, i.src_reg, i.offset, i.imm, i.imm64) for i in program]
    assert [i.index for i in decoded] == [sum(p.slots for p in program[:n]) for n in range(len(program))]


def test_split_cuts_without_refusing_broken_lddw() -> None:
    lddw = bi.encode(bi.ld_imm64(1, 1 << 40))
    end = bi.encode(bi.exit_())
    assert bi.split(lddw + end) == [lddw, end]
    assert bi.split(lddw[:8] + end) == [lddw[:8], end]  # second half malformed: two lone slots
    assert bi.split(lddw[:8]) == [lddw[:8]]  # cut short
    with pytest.raises(FormatError, match="multiple of 8"):
        bi.split(end[:5])
