"""What an object's code really uses: helpers, kfuncs, maps, bpf-to-bpf calls, ISA level, and the oldest
kernel that offers all of it. Facts come from the decoded instructions and their relocations, per entry
program and everything it reaches through calls."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field

from bpfcert.elf import BpfObject, Program, Relocation, Symbol
from bpfcert.errors import FormatError
from bpfcert.insn import Insn, decode
from bpfcert.knowledge import features
from bpfcert.knowledge.helpers import helper_by_id, helper_by_name
from bpfcert.knowledge.kernel import format_version
from bpfcert.knowledge.map_types import map_type_by_name
from bpfcert.knowledge.prog_types import prog_type_by_name
from bpfcert.knowledge.sections import classify_section

MAP_SECTIONS = (".maps", "maps")
MAX_FUNCTIONS_PER_PROGRAM = 256  # BPF_MAX_SUBPROGS, include/linux/bpf_verifier.h: the program and what it calls
GLOBAL_DATA_PREFIXES = (".rodata", ".data", ".bss")


@dataclass(frozen=True)
class ProgramUsage:
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


@dataclass(frozen=True)
class ObjectUsage:
    programs: list[ProgramUsage]
    helpers: frozenset[str]
    kfuncs: frozenset[str]
    prog_types: frozenset[str]
    map_types: frozenset[str]
    gpl_only_helpers: frozenset[str]
    min_kernel: tuple[int, int]
    min_kernel_reasons: list[str]


@dataclass
class _FunctionFacts:
    """What one function does by itself; calls are keys of the functions it calls."""

    helpers: set[str] = field(default_factory=set)
    kfuncs: set[str] = field(default_factory=set)
    maps: set[str] = field(default_factory=set)
    calls: set[tuple[str, int]] = field(default_factory=set)
    isa: int = 1
    extended_atomics: bool = False
    acquire_release: bool = False
    may_goto: bool = False
    slots: int = 0


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
        self.facts: dict[tuple[str, int], _FunctionFacts] = {}

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

    def facts_of(self, key: tuple[str, int]) -> _FunctionFacts:
        if key not in self.facts:
            self.facts[key] = self._scan(self.functions[key])
        return self.facts[key]

    def _scan(self, func: Program) -> _FunctionFacts:
        facts = _FunctionFacts()
        try:
            insns = decode(func.insns, self.obj.endianness)
        except FormatError as exc:
            raise FormatError(f"{self.obj.path}: function {func.name} in {func.section}: {exc}") from None
        for insn in insns:
            facts.slots += insn.slots
            facts.isa = max(facts.isa, insn.isa_version)
            if insn.mode == "ATOMIC" and insn.isa_version >= 3:
                facts.extended_atomics = True
                facts.acquire_release |= insn.atomic_op in ("load_acquire", "store_release")
            reloc = self.relocations.get((func.section, func.offset + insn.index * 8))
            if insn.wide:
                self._lddw(insn, reloc, facts)
            elif insn.cls == "JMP" and insn.op == "call":
                self._call(func, insn, reloc, facts)
            elif insn.cls == "JMP" and insn.op == "jcond":
                facts.may_goto = True
        return facts

    def _lddw(self, insn: Insn, reloc: Relocation | None, facts: _FunctionFacts) -> None:
        if reloc is None:
            return
        name = self._map_of(reloc.symbol)
        if name is not None:
            facts.maps.add(name)

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

    def _call(self, func: Program, insn: Insn, reloc: Relocation | None, facts: _FunctionFacts) -> None:
        if reloc is not None and reloc.symbol.section_index == 0 and reloc.symbol.name:
            facts.kfuncs.add(reloc.symbol.name)  # an extern (.ksyms) callee: a kfunc, whatever src_reg says
        elif insn.call_kind == "helper":
            helper = helper_by_id(insn.imm)
            if helper is not None:
                facts.helpers.add(helper.name)
        elif insn.call_kind == "kfunc":
            facts.kfuncs.add(f"btf_id:{insn.imm}")
        elif insn.call_kind == "local":
            if reloc is not None and reloc.symbol.section is not None:
                section, offset = reloc.symbol.section, reloc.symbol.value + (insn.imm + 1) * 8
            else:
                section, offset = func.section, func.offset + (insn.index + 1 + insn.imm) * 8
            callee = self.function_at(section, offset)
            if callee is not None:
                facts.calls.add((callee.section, callee.offset))

    def program(self, prog: Program) -> tuple[ProgramUsage, list[_FunctionFacts]]:
        """Usage of one entry program over everything it reaches, and the facts of each function reached."""
        root = (prog.section, prog.offset)
        seen, todo = {root}, [root]
        while todo:
            for callee in self.facts_of(todo.pop()).calls - seen:
                seen.add(callee)
                todo.append(callee)
            if len(seen) > MAX_FUNCTIONS_PER_PROGRAM:  # also bounds this walk on hostile call graphs
                raise FormatError(
                    f"{self.obj.path}: program {prog.name} calls more than {MAX_FUNCTIONS_PER_PROGRAM - 1} "
                    "functions; the kernel refuses it (BPF_MAX_SUBPROGS)"
                )
        reached = [self.facts_of(k) for k in seen]
        info = classify_section(prog.section)
        usage = ProgramUsage(
            name=prog.name,
            section=prog.section,
            prog_type=info.prog_type if info else None,
            attach_type=info.attach_type if info else None,
            helpers=frozenset().union(*(f.helpers for f in reached)),
            kfuncs=frozenset().union(*(f.kfuncs for f in reached)),
            calls=frozenset(self.functions[k].name for k in seen - {root}),
            maps=frozenset().union(*(f.maps for f in reached)),
            isa=max(f.isa for f in reached),
            insn_count=sum(f.slots for f in reached),
        )
        return usage, reached


def _min_kernel(needs: Iterable[tuple[tuple[int, int], str]]) -> tuple[tuple[int, int], list[str]]:
    """The newest of the (version, what) needs, and every reason at that version."""
    needs = list(needs)
    newest = max(v for v, _ in needs)
    return newest, sorted({f"{what} needs {format_version(v)}" for v, what in needs if v == newest})


def analyze(obj: BpfObject) -> ObjectUsage:
    """Usage of every entry program of `obj` and of the object as a whole. FormatError on undecodable code."""
    analyzer = _Analyzer(obj)
    programs: list[ProgramUsage] = []
    reached: list[_FunctionFacts] = []
    for prog in obj.programs:
        usage, facts = analyzer.program(prog)
        programs.append(usage)
        reached.extend(facts)
    helpers = frozenset().union(*(p.helpers for p in programs))
    kfuncs = frozenset().union(*(p.kfuncs for p in programs))
    prog_types = frozenset(p.prog_type for p in programs if p.prog_type is not None)
    map_types = frozenset(m.type for m in obj.maps if map_type_by_name(m.type) is not None)

    needs: list[tuple[tuple[int, int], str]] = [(features.BPF_SYSCALL, "the bpf() syscall")]
    for name in sorted(prog_types):
        pt = prog_type_by_name(name)
        if pt is not None:
            needs.append((pt.since, f"program type {name}"))
    for name in sorted(map_types):
        mt = map_type_by_name(name)
        if mt is not None:
            needs.append((mt.since, f"map type {name}"))
    gpl_only = set()
    for name in sorted(helpers):
        helper = helper_by_name(name)
        if helper is not None:
            needs.append((helper.since, f"helper {name}"))
            if helper.gpl_only:
                gpl_only.add(name)
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
    min_kernel, reasons = _min_kernel(needs)
    return ObjectUsage(
        programs=programs,
        helpers=helpers,
        kfuncs=kfuncs,
        prog_types=prog_types,
        map_types=map_types,
        gpl_only_helpers=frozenset(gpl_only),
        min_kernel=min_kernel,
        min_kernel_reasons=reasons,
    )
