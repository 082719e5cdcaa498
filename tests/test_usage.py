"""Usage analysis of objects compiled from C: helpers, kfuncs, maps, calls per entry program, min kernel."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpfcert import insn as bi
from bpfcert.elf import BpfObject
from bpfcert.errors import FormatError
from bpfcert.knowledge.helpers import helper_by_id
from bpfcert.usage import ObjectUsage, ProgramUsage, analyze
from tests import elf_build
from tests.bpf_sources import TRACEPOINT_COUNTER

CLANG_INCLUDE = "/usr/include/x86_64-linux-gnu"
PRELUDE = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
LICENSE = 'char LICENSE[] SEC("license") = "GPL";\n'

RINGBUF = r"""
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
SEC("socket") int send(struct __sk_buff *skb) {
    __u32 len = skb->len; bpf_ringbuf_output(&events, &len, 4, 0); return 0;
}
"""
GPL_ONLY = r"""
struct task { int pid; };
SEC("kprobe/do_unlinkat") int peek(struct pt_regs *ctx) {
    int pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), (void *)ctx);
    return pid + bpf_get_smp_processor_id();
}
"""
# Three ways to reach a subprogram: a global function in .text (relocation against its FUNC symbol), a static
# one in .text (relocation against the .text section symbol), and a static one in the caller's own section
# (a pc-relative call with no relocation).
SUBPROGRAMS = r"""
const volatile __u32 factor = 3;
__u64 total;
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u64); }
    counts SEC(".maps");
__noinline int global_sub(int x) { return x + bpf_ktime_get_ns(); }
static __noinline int static_sub(int x) {
    __u32 key = 0; __u64 *v = bpf_map_lookup_elem(&counts, &key);
    return x * bpf_get_prandom_u32() + (v ? *v : 0);
}
static __noinline __attribute__((section("xdp"))) int local_sub(int x) {
    total += x; return x ^ bpf_get_smp_processor_id();
}
SEC("xdp") int via_global(struct xdp_md *ctx) {
    return global_sub(ctx->ingress_ifindex) & 1 ? local_sub(3) : 2;
}
SEC("tc") int via_static(struct __sk_buff *skb) { return static_sub(skb->len) * factor & 1; }
SEC("cgroup_skb/egress") int leaf(struct __sk_buff *skb) { return 1; }
"""
KFUNC = r"""
struct task_struct { int pid; } __attribute__((preserve_access_index));
struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
void bpf_task_release(struct task_struct *p) __ksym;
SEC("tp_btf/task_newtask") int on_new(__u64 *ctx) {
    struct task_struct *t = bpf_task_acquire((struct task_struct *)ctx[0]);
    if (t) bpf_task_release(t);
    return 0;
}
"""
ATOMIC = r"""
__u64 seen;
SEC("xdp") int swap(struct xdp_md *ctx) { return __sync_lock_test_and_set(&seen, ctx->rx_queue_index) & 1; }
"""
UNSIGNED_COMPARE = r"""
SEC("socket") int small(struct __sk_buff *skb) { __u32 a = skb->len, b = skb->mark; return a < b ? 1 : 0; }
"""
ODD_SECTION = r"""
SEC("my_custom_section") int odd(void *ctx) { return 0; }
"""


def build(tmp: Path, name: str, body: str, *flags: str) -> BpfObject:
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    src, out = tmp / f"{name}.c", tmp / f"{name}.o"
    src.write_text(PRELUDE + body + LICENSE)
    cmd = ["clang", "-O2", "-g", "-c", "-I", CLANG_INCLUDE, *flags]
    subprocess.run([*cmd, str(src), "-o", str(out)], check=True)
    return BpfObject.open(out)


def usage_of(tmp: Path, name: str, body: str, *flags: str) -> ObjectUsage:
    return analyze(build(tmp, name, body, "-target", "bpf", *flags))


def program(usage: ObjectUsage, name: str) -> ProgramUsage:
    return next(p for p in usage.programs if p.name == name)


def test_ringbuf_output_needs_5_8(tmp_path: Path) -> None:
    usage = usage_of(tmp_path, "ringbuf", RINGBUF)
    assert usage.helpers == {"bpf_ringbuf_output"}
    assert usage.map_types == {"ringbuf"} and usage.prog_types == {"socket_filter"}
    assert usage.min_kernel == (5, 8)
    assert usage.min_kernel_reasons == ["5.8: helper bpf_ringbuf_output", "5.8: map type ringbuf"]
    assert usage.gpl_only_helpers == frozenset()
    assert program(usage, "send").maps == {"events"}


def test_gpl_only_helper_is_flagged(tmp_path: Path) -> None:
    usage = usage_of(tmp_path, "gpl", GPL_ONLY)
    assert usage.helpers == {"bpf_probe_read_kernel", "bpf_get_smp_processor_id"}
    assert usage.gpl_only_helpers == {"bpf_probe_read_kernel"}
    assert usage.min_kernel == (5, 5)
    peek = program(usage, "peek")
    assert (peek.prog_type, peek.attach_type) == ("kprobe", None)


def test_subprogram_facts_are_attributed_to_their_callers(tmp_path: Path) -> None:
    usage = usage_of(tmp_path, "subprograms", SUBPROGRAMS)
    via_global, via_static, leaf = (program(usage, n) for n in ("via_global", "via_static", "leaf"))
    assert via_global.calls == {"global_sub", "local_sub"}
    assert via_global.helpers == {"bpf_ktime_get_ns", "bpf_get_smp_processor_id"}
    assert via_global.maps == {".bss"}
    assert via_static.calls == {"static_sub"}
    assert via_static.helpers == {"bpf_map_lookup_elem", "bpf_get_prandom_u32"}
    assert via_static.maps == {"counts", ".rodata"}
    assert (leaf.calls, leaf.helpers, leaf.maps) == (frozenset(), frozenset(), frozenset())
    assert via_global.insn_count > leaf.insn_count == 2
    assert {p.name for p in usage.programs} == {"via_global", "via_static", "leaf"}
    assert "4.16: bpf-to-bpf calls" not in usage.min_kernel_reasons  # outranked by global data (5.2)
    assert usage.min_kernel == (5, 2)
    assert usage.min_kernel_reasons == ["5.2: global data (.rodata/.data/.bss)"]


def test_kfunc_calls_through_ksym_externs(tmp_path: Path) -> None:
    usage = usage_of(tmp_path, "kfunc", KFUNC)
    assert usage.kfuncs == {"bpf_task_acquire", "bpf_task_release"}
    assert usage.helpers == frozenset()
    on_new = program(usage, "on_new")
    assert (on_new.prog_type, on_new.attach_type) == ("tracing", "trace_raw_tp")
    assert usage.min_kernel == (5, 13) and usage.min_kernel_reasons == ["5.13: kfunc calls"]


def test_isa_levels_raise_the_minimum_kernel(tmp_path: Path) -> None:
    v1 = usage_of(tmp_path, "cmp_v1", UNSIGNED_COMPARE, "-mcpu=v1")
    v2 = usage_of(tmp_path, "cmp_v2", UNSIGNED_COMPARE, "-mcpu=v2")
    v3 = usage_of(tmp_path, "atomic", ATOMIC, "-mcpu=v3")
    assert program(v1, "small").isa == 1 and v1.min_kernel == (4, 1)  # __sk_buff fields: 4.1
    assert program(v2, "small").isa == 2 and v2.min_kernel == (4, 14)
    assert v2.min_kernel_reasons == ["4.14: BPF CPU v2 instructions"]
    assert program(v3, "swap").isa == 3 and v3.min_kernel == (5, 12)
    assert v3.min_kernel_reasons == ["5.12: atomic fetch/xchg/cmpxchg/and/or/xor instructions"]


def test_big_endian_objects_give_the_same_usage(tmp_path: Path) -> None:
    little = analyze(build(tmp_path, "le", SUBPROGRAMS, "-target", "bpfel"))
    big = analyze(build(tmp_path, "be", SUBPROGRAMS, "-target", "bpfeb"))
    facts = [(p.name, p.helpers, p.calls, p.maps) for p in little.programs]
    assert facts == [(p.name, p.helpers, p.calls, p.maps) for p in big.programs]
    assert (little.min_kernel, little.min_kernel_reasons) == (big.min_kernel, big.min_kernel_reasons)


def test_unconventional_section_has_no_type(tmp_path: Path) -> None:
    usage = usage_of(tmp_path, "odd", ODD_SECTION)
    odd = program(usage, "odd")
    assert (odd.prog_type, odd.attach_type) == (None, None)
    assert usage.prog_types == frozenset()
    assert usage.min_kernel == (3, 18) and usage.min_kernel_reasons == ["3.18: the bpf() syscall"]


def patched(obj: BpfObject, section: str, slot: int, replacement: bytes) -> BpfObject:
    """A copy of `obj` with the instruction at `slot` of `section` overwritten."""
    sec = obj.section(section)
    assert sec is not None
    at = sec.offset + slot * 8
    data = bytearray(obj.data)
    data[at : at + len(replacement)] = replacement
    return BpfObject.from_bytes(bytes(data), "patched.o")


def test_load_acquire_needs_6_15(tmp_path: Path) -> None:
    # Turn the xchg of ATOMIC (the one atomic in the program) into a load-acquire, which clang 14 cannot emit.
    obj = build(tmp_path, "xchg", ATOMIC, "-target", "bpf", "-mcpu=v3")
    sec = obj.section("xdp")
    assert sec is not None
    (xchg,) = [i for i in bi.decode(sec.data) if i.atomic_op == "xchg"]
    acquire = bi.encode(bi.Insn(0, xchg.opcode, 0, xchg.dst_reg, 0, 0x100))
    usage = analyze(patched(obj, "xdp", xchg.index, acquire))
    assert program(usage, "swap").isa == 4
    assert usage.min_kernel == (6, 15)
    assert usage.min_kernel_reasons == ["6.15: load-acquire/store-release instructions"]


def test_may_goto_needs_6_9(tmp_path: Path) -> None:
    obj = build(tmp_path, "plain", UNSIGNED_COMPARE, "-target", "bpf")
    usage = analyze(patched(obj, "socket", 0, bi.encode(bi.Insn(0, 0xE5, 0, 0, 0, 0))))  # may_goto +0
    assert usage.min_kernel == (6, 9) and usage.min_kernel_reasons == ["6.9: the may_goto instruction"]


def test_undecodable_code_names_the_function(tmp_path: Path) -> None:
    obj = build(tmp_path, "plain", UNSIGNED_COMPARE, "-target", "bpf")
    sec = obj.section("socket")
    assert sec is not None
    last = sec.size // 8 - 1  # the exit: a lddw there has no second half
    broken = patched(obj, "socket", last, bi.encode(bi.Insn(0, 0x18, 0, 0, 0, 0)))
    with pytest.raises(
        FormatError, match=r"patched.o: function small in socket: lddw at instruction \d+ is truncated"
    ):
        analyze(broken)


# ---- call graphs: every program's facts are those of all it reaches, however the graph is shared --------------

CALL_HELPER = (1, 5, 7, 8)  # bpf_map_lookup_elem, bpf_ktime_get_ns, bpf_get_prandom_u32, bpf_get_smp_processor_id


@st.composite
def call_graphs(draw: st.DrawFn) -> tuple[int, list[list[int]], list[int | None], list[bool]]:
    """(entry programs, callees of each function, helper each calls or None, whether it holds a lddw): the
    first functions are the entry programs; any function may call any other, itself and entry programs too."""
    count = draw(st.integers(1, 10))
    callees = draw(st.lists(st.lists(st.integers(0, count - 1), max_size=3), min_size=count, max_size=count))
    helpers = draw(st.lists(st.sampled_from((None, *CALL_HELPER)), min_size=count, max_size=count))
    wide = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    return draw(st.integers(1, count)), callees, helpers, wide


def call_graph_object(programs: int, callees: list[list[int]], helpers: list[int | None], wide: list[bool]) -> bytes:
    """One `xdp` section holding function i as: a pc-relative call to each of its callees, its helper call, a
    lddw if `wide`, then exit. Functions from `programs` on are static (subprograms)."""
    bodies = [
        len(calls) + (helper is not None) + 2 * lddw + 1
        for calls, helper, lddw in zip(callees, helpers, wide, strict=True)
    ]
    starts = [8 * sum(bodies[:i]) for i in range(len(bodies))]
    code = bytearray()
    for calls, helper, lddw in zip(callees, helpers, wide, strict=True):
        for callee in calls:
            code += struct.pack("<BBhi", 0x85, 1 << 4, 0, (starts[callee] - len(code)) // 8 - 1)
        if helper is not None:
            code += struct.pack("<BBhi", 0x85, 0, 0, helper)
        if lddw:
            code += struct.pack("<BBhi", 0x18, 1, 0, 7) + bytes(8)
        code += elf_build.EXIT
    symbols = [
        (f"f{i}", 1, starts[i], 8 * bodies[i], (elf_build.STB_GLOBAL << 4 if i < programs else 0) | elf_build.STT_FUNC)
        for i in range(len(bodies))
    ]
    symbols = symbols[programs:] + symbols[:programs]  # locals first, as ELF wants
    xdp = elf_build.Sec("xdp", flags=elf_build.SHF_ALLOC | elf_build.SHF_EXECINSTR, data=bytes(code))
    return elf_build.elf_object([xdp, *elf_build.symtab(symbols, strtab_index=3)])


@given(call_graphs())
def test_program_facts_are_those_of_every_function_it_reaches(
    graph: tuple[int, list[list[int]], list[int | None], list[bool]],
) -> None:
    """Against a plain walk of each program's call graph: cycles, shared callees, calls to entry programs."""
    programs, callees, helpers, wide = graph
    usage = analyze(BpfObject.from_bytes(call_graph_object(programs, callees, helpers, wide)))
    expected = []
    for root in range(programs):
        seen, todo = {root}, [root]
        while todo:
            for callee in callees[todo.pop()]:
                if callee not in seen:
                    seen.add(callee)
                    todo.append(callee)
        names = {f"f{i}" for i in seen - {root}}
        used = {helper_by_id(h).name for h in (helpers[i] for i in seen) if h is not None}  # type: ignore[union-attr]
        slots = sum(len(callees[i]) + (helpers[i] is not None) + 2 * wide[i] + 1 for i in seen)
        expected.append((f"f{root}", names, used, slots))
    got = [(p.name, set(p.calls), set(p.helpers), p.insn_count) for p in usage.programs]
    assert got == expected
    assert usage.helpers == set().union(*(e[2] for e in expected))


@pytest.mark.parametrize("cycle", [False, True])
@pytest.mark.parametrize(("reached", "refused"), [(256, False), (257, True)])
def test_the_kernel_limit_counts_each_function_reached_once(cycle: bool, reached: int, refused: bool) -> None:
    """f2 calls two chains that end in one shared function, which f0 and f1 reach first: directly, or through
    f3, which calls f2 back. 256 functions in all are what the kernel accepts (BPF_MAX_SUBPROGS), 257 are
    refused, counted from what f0 and f1 reached as well as from f2's own walk."""
    first = 127
    second = reached - (2 + cycle + first)
    a = 3 + cycle
    b = a + first
    shared = b + second
    callees = [[a], [b], [3] if cycle else [a, b]] + [[a, b, 2]] * cycle
    callees += [[i + 1] for i in range(a, a + first - 1)] + [[shared]]
    callees += [[i + 1] for i in range(b, b + second - 1)] + [[shared]] + [[]]
    assert len(callees) == 2 + reached
    obj = BpfObject.from_bytes(call_graph_object(3, callees, [None] * len(callees), [False] * len(callees)))
    if refused:
        with pytest.raises(FormatError, match="program f2 calls more than 255 functions; the kernel refuses it"):
            analyze(obj)
    else:
        usage = analyze(obj).programs[2]
        assert len(usage.calls) == 255 and usage.insn_count == sum(len(c) + 1 for c in callees[2:])


# ---- context fields, the kernel's BTF, kernel struct reads ------------------------------------------------------

CONTEXT_FIELD = r"""
SEC("{section}") int reads(struct {struct} *ctx) {{ return ctx->{field} & 1; }}
"""


@pytest.mark.parametrize(
    ("section", "struct", "field", "floor"),
    [
        ("xdp", "xdp_md", "egress_ifindex", (5, 8)),
        ("xdp", "xdp_md", "ingress_ifindex", (4, 16)),
        ("tc", "__sk_buff", "tstamp", (5, 0)),
        ("tc", "__sk_buff", "gso_size", (5, 7)),
        ("cgroup/sock_create", "bpf_sock", "rx_queue_mapping", (5, 9)),
        ("cgroup/sendmsg4", "bpf_sock_addr", "msg_src_ip4", (4, 18)),
        ("sk_msg", "sk_msg_md", "size", (4, 20)),
    ],
)
def test_context_fields_raise_the_floor(
    tmp_path: Path, section: str, struct: str, field: str, floor: tuple[int, int]
) -> None:
    body = CONTEXT_FIELD.format(section=section, struct=struct, field=field)
    usage = usage_of(tmp_path, "ctx", body)
    assert program(usage, "reads").context_fields == {f"{struct}.{field}"}
    assert usage.min_kernel == floor
    assert usage.min_kernel_reasons == [f"{floor[0]}.{floor[1]}: {struct}.{field}"]
    assert ((floor, f"{struct}.{field}")) in usage.kernel_needs


def test_context_kept_in_a_callee_saved_register_across_calls(tmp_path: Path) -> None:
    body = r"""
    SEC("xdp") int later(struct xdp_md *ctx) {
        __u64 t = bpf_ktime_get_ns();
        return (t + bpf_get_prandom_u32() + ctx->egress_ifindex) & 1;
    }
    """
    usage = usage_of(tmp_path, "later", body)
    assert program(usage, "later").context_fields == {"xdp_md.egress_ifindex"}
    assert usage.min_kernel_reasons == ["5.8: xdp_md.egress_ifindex"]


def flow(*insns: bi.Insn, btf_context: bool = False) -> tuple[set[int], bool]:
    from bpfcert.usage import _pointer_flow

    code = b"".join(bi.encode(i) for i in insns)
    return _pointer_flow(bi.decode(code), True, btf_context)


MOV_X, MOV_K, LDX_W, LDX_DW, STX_DW, JEQ_K, JA, CALL, EXIT = 0xBF, 0xB7, 0x61, 0x79, 0x7B, 0x15, 0x05, 0x85, 0x95


def ins(opcode: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bi.Insn:
    return bi.Insn(0, opcode, dst, src, off, imm)


def test_flow_follows_copies_spills_and_both_sides_of_a_branch() -> None:
    spill = flow(
        ins(MOV_X, 6, 1), ins(STX_DW, 10, 6, -8), ins(MOV_K, 6), ins(LDX_DW, 2, 10, -8), ins(LDX_W, 0, 2, 20), ins(EXIT)
    )
    assert spill == ({20}, False)
    overwritten = flow(ins(MOV_X, 6, 1), ins(MOV_K, 6), ins(LDX_W, 0, 6, 20), ins(EXIT))
    assert overwritten == (set(), False)
    clobbered = flow(ins(CALL, imm=5), ins(LDX_W, 0, 1, 12), ins(EXIT))  # r1 is caller-saved: gone after a call
    assert clobbered == (set(), False)
    # r6 = ctx; if r2 == 0 goto L; r6 = 5; goto M; L: r0 = *(u32 *)(r6 + 20); M: exit
    branch = flow(
        ins(MOV_X, 6, 1), ins(JEQ_K, 2, 0, 2), ins(MOV_K, 6, 0, 0, 5), ins(JA, 0, 0, 1), ins(LDX_W, 0, 6, 20), ins(EXIT)
    )
    assert branch == ({20}, False)


def test_flow_sees_loads_through_btf_pointers() -> None:
    # r1 = ctx[0] (a task_struct * argument of an fentry program); r0 = *(u32 *)(r1 + 8)
    code = (ins(LDX_DW, 1, 1, 0), ins(LDX_W, 0, 1, 8), ins(EXIT))
    assert flow(*code, btf_context=True) == ({0}, True)
    assert flow(*code, btf_context=False) == ({0}, False)  # a raw tracepoint's u64 args are not BTF-typed


FENTRY = r"""
struct task_struct { int pid; };
SEC("fentry/do_exit") int on_exit(unsigned long long *ctx) {
    struct task_struct *t = (struct task_struct *)ctx[0];
    return t->pid & 1;
}
"""


def test_btf_attached_programs_and_kfuncs_need_the_kernels_btf(tmp_path: Path) -> None:
    fentry = usage_of(tmp_path, "fentry", FENTRY)
    assert fentry.btf_needs == [
        "program on_exit (fentry/do_exit) is a tracing program, attached through the kernel's BTF"
    ]
    assert fentry.kernel_struct_reads == ["loads through BTF-typed kernel pointers"]
    kfunc = usage_of(tmp_path, "kfunc", KFUNC)
    assert "kfunc calls are resolved against the kernel's BTF" in kfunc.btf_needs
    assert any("on_new (tp_btf/task_newtask)" in n for n in kfunc.btf_needs)
    lsm = usage_of(tmp_path, "lsm", 'SEC("lsm/file_open") int check(void *ctx) { return 0; }\n')
    assert lsm.btf_needs and lsm.kernel_struct_reads == []
    socket = usage_of(tmp_path, "ringbuf", RINGBUF)
    assert socket.btf_needs == [] and socket.kernel_struct_reads == []


def test_kernel_struct_reads_come_from_the_code(tmp_path: Path) -> None:
    assert usage_of(tmp_path, "gpl", GPL_ONLY).kernel_struct_reads == ["helper bpf_probe_read_kernel"]
    plain = usage_of(tmp_path, "tp", TRACEPOINT_COUNTER)
    assert plain.kernel_struct_reads == [] and plain.btf_needs == []
