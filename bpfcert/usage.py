"""What an object's code really uses: helpers, kfuncs, maps, bpf-to-bpf calls, ISA level, context fields, whether
it needs the kernel's BTF or reads kernel structs, and the oldest kernel that offers all of it. Facts come from the
decoded instructions and their relocations, per entry program and everything it reaches through calls (what each
function reaches is summarised once, and shared by all its callers).

Context fields and kernel-pointer loads come from a small forward data flow over registers and 8-byte stack
slots (`_pointer_flow`). Not tracked: the context passed on to a subprogram, pointer arithmetic on the context
(the verifier refuses it), pointers read from __sk_buff->sk and similar (UAPI structs, stable), typed __ksym
variables, and kernel pointers a subprogram receives as arguments."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any, NamedTuple

from bpfcert.elf import BpfObject, Program, Relocation, Symbol
from bpfcert.errors import FormatError
from bpfcert.insn import LDDW_OPCODE, Insn, decode
from bpfcert.knowledge import features
from bpfcert.knowledge.context_fields import CONTEXT_STRUCTS, ContextField, context_field
from bpfcert.knowledge.helpers import helper_by_id, helper_by_name
from bpfcert.knowledge.kernel import KernelVersion, format_version
from bpfcert.knowledge.map_types import map_type_by_name
from bpfcert.knowledge.prog_types import prog_type_by_name
from bpfcert.knowledge.sections import classify_section

MAP_SECTIONS = (".maps", "maps")
MAX_FUNCTIONS_PER_PROGRAM = 256  # BPF_MAX_SUBPROGS, include/linux/bpf_verifier.h: the program and what it calls
GLOBAL_DATA_PREFIXES = (".rodata", ".data", ".bss")
# Program types whose context holds BTF-typed kernel pointers (function arguments, LSM hook arguments, iterator
# fields) that the program reads directly, and which load against the kernel's BTF (fentry/, fexit/, fmod_ret/,
# tp_btf/, iter/, lsm/, struct_ops).
BTF_CONTEXT_TYPES = frozenset({"tracing", "lsm", "struct_ops"})
# Helpers that return a BTF-typed kernel pointer, and those that take a kernel BTF type id.
BTF_POINTER_HELPERS = frozenset({"bpf_get_current_task_btf"})
BTF_HELPERS = BTF_POINTER_HELPERS | {"bpf_snprintf_btf", "bpf_seq_printf_btf"}
# Helpers that copy kernel memory at an address the program computes, i.e. read kernel structs by offset.
KERNEL_READ_HELPERS = frozenset(
    {"bpf_probe_read", "bpf_probe_read_str", "bpf_probe_read_kernel", "bpf_probe_read_kernel_str"}
)


class ProgramUsage(NamedTuple):
    name: str
    section: str
    prog_type: str | None
    attach_type: str | None
    helpers: frozenset[str]
    kfuncs: frozenset[str]
    calls: frozenset[str]
    maps: frozenset[str]
    isa: int
    insn_count: int
    context_fields: frozenset[str]  # 'xdp_md.egress_ifindex': context fields the entry function reads or writes


class ObjectUsage(NamedTuple):
    programs: list[ProgramUsage]
    helpers: frozenset[str]
    kfuncs: frozenset[str]
    prog_types: frozenset[str]
    map_types: frozenset[str]
    gpl_only_helpers: frozenset[str]
    min_kernel: KernelVersion
    min_kernel_reasons: list[str]  # what sets min_kernel: '5.17: helper bpf_loop', '5.8: xdp_md.egress_ifindex'
    kernel_needs: list[tuple[KernelVersion, str]]  # every (first version, feature) the code uses, newest first
    btf_needs: list[str]  # why the code needs the kernel's BTF (/sys/kernel/btf/vmlinux); empty: it does not
    kernel_struct_reads: list[str]  # evidence that the code reads kernel structs (so layouts matter: CO-RE)


_Key = tuple[str, int]  # a function: (section, byte offset)
_EMPTY: frozenset[Any] = frozenset()  # shared by every empty fact: each new frozenset is one more object for the GC


class _FunctionFacts(NamedTuple):
    """What one function does by itself; calls are keys of the functions it calls."""

    helpers: frozenset[str]
    kfuncs: frozenset[str]
    maps: frozenset[str]
    calls: frozenset[_Key]
    isa: int
    extended_atomics: bool
    acquire_release: bool
    may_goto: bool
    slots: int
    context_fields: frozenset[ContextField]
    kernel_pointer_loads: bool


class _Reach(NamedTuple):
    """A function and every function it reaches through calls: their keys and names, and what they use together.
    Built once per function, callees first, and shared by all its callers."""

    functions: frozenset[_Key]
    names: frozenset[str]
    helpers: frozenset[str]
    kfuncs: frozenset[str]
    maps: frozenset[str]
    isa: int
    slots: int


def _union(parts: Iterable[frozenset[str]]) -> frozenset[str]:
    """The union of `parts`, reusing the one non-empty part when there is only one (callers share their callee's)."""
    nonempty = [p for p in parts if p]
    if len(nonempty) == 1:
        return nonempty[0]
    return frozenset().union(*nonempty) if nonempty else _EMPTY


class _Analyzer:
    def __init__(self, obj: BpfObject) -> None:
        self.obj = obj
        self.functions = {(f.section, f.offset): f for f in [*obj.programs, *obj.subprograms]}
        self.by_section: dict[str, list[Program]] = {}
        for f in sorted(self.functions.values(), key=lambda f: f.offset):
            self.by_section.setdefault(f.section, []).append(f)
        self.starts = {section: [f.offset for f in funcs] for section, funcs in self.by_section.items()}
        self.relocations = {(r.section, r.offset): r for r in obj.relocations}
        self.map_names = {m.name for m in obj.maps}
        self.kconfig_vars = self._datasec_vars(".kconfig")
        self.facts: dict[_Key, _FunctionFacts] = {}
        self.reach: dict[_Key, _Reach] = {}

    def _datasec_vars(self, name: str) -> set[str]:
        btf = self.obj.btf
        sec = btf.find(name, "DATASEC") if btf is not None else None
        if btf is None or sec is None:
            return set()
        return {btf.types[var].name for var, _, _ in sec.extra.get("vars", ()) if 0 < var < len(btf.types)}

    def function_at(self, section: str, offset: int) -> Program | None:
        """The function holding byte `offset` of `section` (the reader keeps functions apart: bisect the starts)."""
        index = bisect.bisect_right(self.starts.get(section, ()), offset) - 1
        f = self.by_section[section][index] if index >= 0 else None
        return f if f is not None and offset < f.offset + f.size else None

    def facts_of(self, key: _Key) -> _FunctionFacts:
        facts = self.facts.get(key)
        if facts is None:
            facts = self.facts[key] = self._scan(self.functions[key])
        return facts

    def _scan(self, func: Program) -> _FunctionFacts:
        try:
            insns = decode(func.insns, self.obj.endianness)
        except FormatError as exc:
            raise FormatError(f"{self.obj.path}: function {func.name} in {func.section}: {exc}") from None
        helpers: set[str] = set()
        kfuncs: set[str] = set()
        maps: set[str] = set()
        calls: set[_Key] = set()
        isa, extended_atomics, acquire_release, may_goto = 1, False, False, False
        for insn in insns:  # opcodes by their bits (RFC 9669 section 3), as in _pointer_flow
            opcode, version = insn.opcode, insn.isa_version
            isa = max(isa, version)
            if opcode & 0x07 == _STX and opcode >> 5 == _ATOMIC and version >= 3:
                extended_atomics = True
                acquire_release |= insn.atomic_op in ("load_acquire", "store_release")
            if opcode == LDDW_OPCODE:
                reloc = self.relocations.get((func.section, func.offset + insn.index * 8))
                name = self._map_of(reloc.symbol) if reloc is not None else None
                if name is not None:
                    maps.add(name)
            elif opcode & 0x07 == _JMP and opcode >> 4 == _CALL:
                reloc = self.relocations.get((func.section, func.offset + insn.index * 8))
                self._call(func, insn, reloc, helpers, kfuncs, calls)
            elif opcode & 0x07 == _JMP and opcode >> 4 == _JCOND:
                may_goto = True
        info = None if func.is_subprogram else classify_section(func.section)
        prog_type = info.prog_type if info else None
        btf_context = prog_type in BTF_CONTEXT_TYPES
        context_fields: frozenset[ContextField] = _EMPTY
        kernel_pointer_loads = False
        if prog_type in CONTEXT_STRUCTS or btf_context or kfuncs or helpers & BTF_POINTER_HELPERS:
            accesses, kernel_pointer_loads = _pointer_flow(insns, not func.is_subprogram, btf_context)
            fields = (context_field(prog_type, offset) for offset in accesses)
            context_fields = frozenset(f for f in fields if f is not None) or _EMPTY
        return _FunctionFacts(
            frozenset(helpers) if helpers else _EMPTY,
            frozenset(kfuncs) if kfuncs else _EMPTY,
            frozenset(maps) if maps else _EMPTY,
            frozenset(calls) if calls else _EMPTY,
            isa,
            extended_atomics,
            acquire_release,
            may_goto,
            len(func.insns) // 8,  # a lddw takes two slots, every other instruction one
            context_fields,
            kernel_pointer_loads,
        )

    def _map_of(self, sym: Symbol) -> str | None:
        """The map (by MapDef.name) a lddw relocated against `sym` refers to, if any."""
        section = sym.section or ""
        if section in MAP_SECTIONS or section.startswith("maps/"):
            candidate = sym.name
        elif section.startswith(GLOBAL_DATA_PREFIXES):
            candidate = section
        elif sym.section_index == 0 and (sym.name in self.kconfig_vars or sym.name.startswith("CONFIG_")):
            candidate = ".kconfig"
        else:
            return None
        return candidate if candidate in self.map_names else None

    def _call(
        self, func: Program, insn: Insn, reloc: Relocation | None, helpers: set[str], kfuncs: set[str], calls: set[_Key]
    ) -> None:
        if reloc is not None and reloc.symbol.section_index == 0 and reloc.symbol.name:
            kfuncs.add(reloc.symbol.name)  # an extern (.ksyms) callee: a kfunc, whatever src_reg says
        elif insn.call_kind == "helper":
            helper = helper_by_id(insn.imm)
            if helper is not None:
                helpers.add(helper.name)
        elif insn.call_kind == "kfunc":
            kfuncs.add(f"btf_id:{insn.imm}")
        elif insn.call_kind == "local":
            if reloc is not None and reloc.symbol.section is not None:
                section, offset = reloc.symbol.section, reloc.symbol.value + (insn.imm + 1) * 8
            else:
                section, offset = func.section, func.offset + (insn.index + 1 + insn.imm) * 8
            callee = self.function_at(section, offset)
            if callee is not None:
                calls.add((callee.section, callee.offset))

    def _too_many(self, prog: Program) -> FormatError:
        return FormatError(
            f"{self.obj.path}: program {prog.name} calls more than {MAX_FUNCTIONS_PER_PROGRAM - 1} "
            "functions; the kernel refuses it (BPF_MAX_SUBPROGS)"
        )

    def _walk(self, root: _Key, prog: Program) -> bool:
        """Summarise into `self.reach` each function `root` reaches that has no summary yet, callees first, by
        Tarjan's strongly connected components: the functions of a call cycle (which the verifier refuses, but
        an object may hold) share one reach. `root` is left out when it is alone in its component (an entry
        program seldom has callers: `program` combines its callees' reaches instead); returns whether it was
        summarised. FormatError past the kernel's limit, which also bounds the walk."""
        order = {root: 0}  # discovery order of the functions first seen in this walk
        low = {root: 0}  # lowest order reachable from each, through functions not yet summarised
        stack, position = [root], {root: 0}
        frames = [(root, iter(self.facts_of(root).calls))]
        while frames:
            key, callees = frames[-1]
            for callee in callees:
                if callee in self.reach:
                    continue
                if callee not in order:
                    if len(order) >= MAX_FUNCTIONS_PER_PROGRAM:
                        raise self._too_many(prog)
                    order[callee] = low[callee] = len(order)
                    position[callee] = len(stack)
                    stack.append(callee)
                    frames.append((callee, iter(self.facts_of(callee).calls)))
                    break
                low[key] = min(low[key], order[callee])  # on the stack: in the component being built
            else:
                frames.pop()
                if frames:
                    caller = frames[-1][0]
                    low[caller] = min(low[caller], low[key])
                if low[key] == order[key]:
                    members = stack[position[key] :]
                    del stack[position[key] :]
                    if members == [root] and root not in self.facts[root].calls:
                        return False
                    self.reach.update(dict.fromkeys(members, self._summarise(members, prog)))
        return True

    def _summarise(self, members: list[_Key], prog: Program) -> _Reach:
        """The reach of a component (`members` call one another), from their facts and their callees' reaches."""
        facts = [self.facts[k] for k in members]
        own = frozenset(members)
        reaches = [self.reach[c] for c in {c for f in facts for c in f.calls} - own]
        functions = own.union(*(r.functions for r in reaches))
        if len(functions) > MAX_FUNCTIONS_PER_PROGRAM:
            raise self._too_many(prog)
        if len(reaches) == 1:  # the callee's functions cannot include `members`: add their slots
            slots = sum(f.slots for f in facts) + reaches[0].slots
        else:
            slots = sum(self.facts[k].slots for k in functions)
        return _Reach(
            functions,
            frozenset(self.functions[k].name for k in members).union(*(r.names for r in reaches)),
            _union([*(f.helpers for f in facts), *(r.helpers for r in reaches)]),
            _union([*(f.kfuncs for f in facts), *(r.kfuncs for r in reaches)]),
            _union([*(f.maps for f in facts), *(r.maps for r in reaches)]),
            max([*(f.isa for f in facts), *(r.isa for r in reaches)]),
            slots,
        )

    def program(self, prog: Program) -> ProgramUsage:
        """Usage of one entry program over everything it reaches."""
        root = (prog.section, prog.offset)
        facts = self.facts_of(root)
        if root in self.reach or (facts.calls and self._walk(root, prog)):
            reach = self.reach[root]
            calls = frozenset(self.functions[k].name for k in reach.functions - {root})
            helpers, kfuncs, maps, isa, slots = reach.helpers, reach.kfuncs, reach.maps, reach.isa, reach.slots
        elif not facts.calls:
            calls, helpers, kfuncs, maps = _EMPTY, facts.helpers, facts.kfuncs, facts.maps
            isa, slots = facts.isa, facts.slots
        else:  # alone in its component: its callees' reaches make up the rest
            callees = [self.reach[c] for c in facts.calls]
            if len(callees) == 1:  # no function reached twice
                count, slots = 1 + len(callees[0].functions), facts.slots + callees[0].slots
            else:
                functions = frozenset().union(*(r.functions for r in callees))
                count, slots = 1 + len(functions), facts.slots + sum(self.facts[k].slots for k in functions)
            if count > MAX_FUNCTIONS_PER_PROGRAM:
                raise self._too_many(prog)
            calls = _union(r.names for r in callees)
            helpers = _union([facts.helpers, *(r.helpers for r in callees)])
            kfuncs = _union([facts.kfuncs, *(r.kfuncs for r in callees)])
            maps = _union([facts.maps, *(r.maps for r in callees)])
            isa = max([facts.isa, *(r.isa for r in callees)])
        info = classify_section(prog.section)
        return ProgramUsage(
            name=prog.name,
            section=prog.section,
            prog_type=info.prog_type if info else None,
            attach_type=info.attach_type if info else None,
            helpers=helpers,
            kfuncs=kfuncs,
            calls=calls,
            maps=maps,
            isa=isa,
            insn_count=slots,
            context_fields=frozenset(f.name for f in facts.context_fields) if facts.context_fields else _EMPTY,
        )


# Opcode fields (RFC 9669): class (low 3 bits), load/store mode (high 3), size (bits 3-4), ALU/jump operation.
_LD, _LDX, _ST, _STX, _ALU, _JMP, _JMP32, _ALU64 = range(8)
_MEM, _MEMSX, _ATOMIC = 3, 4, 6
_SIZE_BYTES = (4, 2, 1, 8)
_MOV64_X, _JA, _CALL, _EXIT, _JCOND = 0xBF, 0x0, 0x8, 0x9, 0xE
_STACK_BASE = 16  # bit of stack slot k (bytes [r10-8k, r10-8k+8), k = 1..64) in a mark mask: _STACK_BASE + k


def _slot_bits(offset: int, size: int) -> int:
    """Mask of the stack slots that bytes [r10+offset, r10+offset+size) touch."""
    first, last = (-offset + 7) // 8, (-(offset + size - 1) + 7) // 8
    return sum(1 << (_STACK_BASE + k) for k in range(last, first + 1) if 1 <= k <= 64)


def _pointer_flow(insns: list[Insn], ctx_at_entry: bool, btf_context: bool) -> tuple[set[int], bool]:
    """(byte offsets of the context the code loads or stores, whether it loads through a BTF-typed kernel pointer).

    A forward "may" analysis: each instruction's state is two masks (registers and 8-byte stack slots that may hold
    the context, or a kernel pointer), joined by union where paths meet. r1 holds the context at entry; a
    register-to-register mov and a spill/fill of 8 bytes carry a mark; any other write clears it. Kernel pointers
    are what a load of 8 bytes from a BTF-typed context returns (`btf_context`), and what a kfunc or
    bpf_get_current_task_btf returns. Decodes opcodes by their bits (RFC 9669 section 3): this runs on every
    instruction of every context-reading program `check` sees."""
    accesses: set[int] = set()
    kernel_loads = False
    if not insns:
        return accesses, kernel_loads
    at: dict[int, int] = {}  # slot index -> position in `insns`, built at the first jump
    count = len(insns)
    states: list[tuple[int, int] | None] = [None] * count
    states[0] = (0b10 if ctx_at_entry else 0, 0)
    todo = [0]
    while todo:
        i = todo.pop()
        insn, state = insns[i], states[i]
        assert state is not None
        ctx, ptr = in_ctx, in_ptr = state
        opcode, cls = insn.opcode, insn.opcode & 0x07
        dst, src = 1 << insn.dst_reg, 1 << insn.src_reg
        nexts: tuple[int, ...] = (i + 1,)
        if cls in (_ALU, _ALU64):
            ctx, ptr = ctx & ~dst, ptr & ~dst
            if opcode == _MOV64_X and insn.offset == 0:
                ctx, ptr = ctx | (dst if in_ctx & src else 0), ptr | (dst if in_ptr & src else 0)
        elif cls == _LDX and opcode >> 5 in (_MEM, _MEMSX):
            size = _SIZE_BYTES[opcode >> 3 & 0x03]
            from_ctx = in_ctx & src
            kernel_loads |= bool(in_ptr & src)
            if from_ctx:
                accesses.add(insn.offset)
            ctx, ptr = ctx & ~dst, ptr & ~dst
            if insn.src_reg == 10 and size == 8 and insn.offset % 8 == 0:
                slot = _slot_bits(insn.offset, 8)
                ctx, ptr = ctx | (dst if in_ctx & slot else 0), ptr | (dst if in_ptr & slot else 0)
            elif from_ctx and btf_context and size == 8:
                ptr |= dst
        elif cls in (_ST, _STX):
            size, mode = _SIZE_BYTES[opcode >> 3 & 0x03], opcode >> 5
            if in_ctx & dst and mode == _MEM:
                accesses.add(insn.offset)
            if insn.dst_reg == 10:
                slot = _slot_bits(insn.offset, size)
                ctx, ptr = ctx & ~slot, ptr & ~slot
                if cls == _STX and mode == _MEM and size == 8 and insn.offset % 8 == 0:
                    ctx, ptr = ctx | (slot if in_ctx & src else 0), ptr | (slot if in_ptr & src else 0)
            if mode == _ATOMIC:  # fetching atomics write src (cmpxchg: r0)
                ctx, ptr = ctx & ~(src | 1), ptr & ~(src | 1)
        elif cls == _LD:  # lddw writes dst; legacy packet loads write r0 and clobber r1-r5
            clobbered = dst if insn.wide else 0b111111
            ctx, ptr = ctx & ~clobbered, ptr & ~clobbered
        elif cls == _JMP and opcode >> 4 == _CALL:
            kind = insn.call_kind
            helper = helper_by_id(insn.imm) if kind == "helper" else None
            returns_pointer = kind == "kfunc" or (helper is not None and helper.name in BTF_POINTER_HELPERS)
            ctx, ptr = ctx & ~0b111111, (ptr & ~0b111111) | (1 if returns_pointer else 0)
        elif cls == _JMP and opcode >> 4 == _EXIT:
            nexts = ()
        elif cls in (_JMP, _JMP32):
            jump = insn.jump_target
            if not at:
                at = {other.index: k for k, other in enumerate(insns)}
            target = at.get(jump) if jump is not None else None
            always = opcode >> 4 == _JA
            nexts = (() if always else nexts) + ((target,) if target is not None else ())
        for j in nexts:
            if j >= count:
                continue
            old = states[j]
            new = (ctx, ptr) if old is None else (old[0] | ctx, old[1] | ptr)
            if new != old:
                states[j] = new
                todo.append(j)
    return accesses, kernel_loads


def _min_kernel(needs: Iterable[tuple[KernelVersion, str]]) -> tuple[KernelVersion, list[str]]:
    """The newest of the (version, what) needs, and every reason at that version ('5.17: helper bpf_loop')."""
    needs = list(needs)
    newest = max(v for v, _ in needs)
    return newest, sorted({f"{format_version(v)}: {what}" for v, what in needs if v == newest})


def kernel_floor(usages: Iterable[ObjectUsage]) -> tuple[KernelVersion, list[str]]:
    """The newest min_kernel of `usages` (objects of one package) and the reasons that set it."""
    usages = list(usages)
    newest = max((u.min_kernel for u in usages), default=(0, 0))
    return newest, sorted({r for u in usages if u.min_kernel == newest for r in u.min_kernel_reasons})


def analyze(obj: BpfObject) -> ObjectUsage:
    """Usage of every entry program of `obj` and of the object as a whole. FormatError on undecodable code."""
    analyzer = _Analyzer(obj)
    programs = [analyzer.program(prog) for prog in obj.programs]
    reached = list(analyzer.facts.values())  # every function some program reaches, and only those
    helpers = frozenset().union(*(p.helpers for p in programs))
    kfuncs = frozenset().union(*(p.kfuncs for p in programs))
    prog_types = frozenset(p.prog_type for p in programs if p.prog_type is not None)
    map_types = frozenset(m.type for m in obj.maps if map_type_by_name(m.type) is not None)
    needs = [*_type_needs(prog_types, map_types, helpers), *_instruction_needs(programs, reached, kfuncs)]
    min_kernel, reasons = _min_kernel(needs)
    return ObjectUsage(
        programs=programs,
        helpers=helpers,
        kfuncs=kfuncs,
        prog_types=prog_types,
        map_types=map_types,
        gpl_only_helpers=frozenset(n for n in helpers if (h := helper_by_name(n)) is not None and h.gpl_only),
        min_kernel=min_kernel,
        min_kernel_reasons=reasons,
        kernel_needs=sorted(set(needs), key=lambda n: (n[0], n[1]), reverse=True),
        btf_needs=_btf_needs(obj, programs, helpers, kfuncs),
        kernel_struct_reads=sorted(
            {f"helper {h}" for h in helpers & KERNEL_READ_HELPERS}
            | {"loads through BTF-typed kernel pointers" for f in reached if f.kernel_pointer_loads}
        ),
    )


def _type_needs(
    prog_types: frozenset[str], map_types: frozenset[str], helpers: frozenset[str]
) -> list[tuple[KernelVersion, str]]:
    """(first kernel, what) of the bpf() syscall and each known program type, map type and helper used."""
    needs: list[tuple[KernelVersion, str]] = [(features.BPF_SYSCALL, "the bpf() syscall")]
    for kind, names, lookup in (
        ("program type", prog_types, prog_type_by_name),
        ("map type", map_types, map_type_by_name),
        ("helper", helpers, helper_by_name),
    ):
        for name in sorted(names):
            known = lookup(name)
            if known is not None:
                needs.append((known.since, f"{kind} {name}"))
    return needs


def _instruction_needs(
    programs: list[ProgramUsage], reached: list[_FunctionFacts], kfuncs: frozenset[str]
) -> list[tuple[KernelVersion, str]]:
    """(first kernel, what) of the instruction set, instructions, calls, global data and context fields used."""
    needs: list[tuple[KernelVersion, str]] = []
    isa = max((p.isa for p in programs), default=1)
    if isa > 1:
        needs.append((features.CPU_VERSION_SINCE[isa], f"BPF CPU v{isa} instructions"))
    if any(f.extended_atomics for f in reached):
        needs.append((features.EXTENDED_ATOMICS, "atomic fetch/xchg/cmpxchg/and/or/xor instructions"))
    if any(f.acquire_release for f in reached):
        needs.append((features.LOAD_ACQUIRE_STORE_RELEASE, "load-acquire/store-release instructions"))
    if any(f.may_goto for f in reached):
        needs.append((features.MAY_GOTO, "the may_goto instruction"))
    if any(p.calls for p in programs):
        needs.append((features.BPF_TO_BPF_CALLS, "bpf-to-bpf calls"))
    if kfuncs:
        needs.append((features.KFUNC_CALLS, "kfunc calls"))
    if any(m.startswith(GLOBAL_DATA_PREFIXES) for p in programs for m in p.maps):
        needs.append((features.GLOBAL_DATA, "global data (.rodata/.data/.bss)"))
    needs.extend((f.since, f.name) for f in set().union(*(f.context_fields for f in reached)))
    return needs


def _btf_needs(
    obj: BpfObject, programs: list[ProgramUsage], helpers: frozenset[str], kfuncs: frozenset[str]
) -> list[str]:
    """Why loading this object needs the kernel's BTF: BTF-attached programs, kfuncs, BTF helpers, CO-RE."""
    needs = [
        f"program {p.name} ({p.section}) is a {p.prog_type} program, attached through the kernel's BTF"
        for p in programs
        if p.prog_type in BTF_CONTEXT_TYPES
    ]
    needs += [f"helper {h} takes or returns kernel BTF types" for h in sorted(helpers & BTF_HELPERS)]
    if kfuncs:
        needs.append("kfunc calls are resolved against the kernel's BTF")
    relos = obj.btf_ext.core_relos.values() if obj.btf_ext is not None else ()
    if any(r.kind_name != "type_id_local" for recs in relos for r in recs):
        needs.append("CO-RE relocations are resolved against the kernel's BTF")
    return needs
