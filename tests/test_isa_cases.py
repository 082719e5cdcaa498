"""The bundled ISA cases (conformance/isa/): exactly what their generator writes, readable, at least 300, covering
every conformance group and cpu version and every opcode of RFC 9669; the generator's RFC formulas agree with values
worked out by hand from the RFC's text; the reference interpreter passes every case."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bpfcert import insn
from bpfcert.isa.case import Case, read_suite

CASES = Path(__file__).resolve().parent.parent / "conformance" / "isa"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("isa_generate", CASES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["isa_generate"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return read_suite(CASES)


def test_the_committed_cases_are_what_the_generator_writes() -> None:
    written = generator().cases()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in CASES.glob("*.data")}
    assert sorted(on_disk) == sorted(written), "run python conformance/isa/generate.py"
    assert [name for name, text in written.items() if on_disk[name] != text] == []


def test_every_case_reads_and_runs(cases: list[Case]) -> None:
    assert len(cases) >= 300
    assert [c.name for c in cases if c.skip is not None] == []
    assert all(c.description for c in cases)
    negatives = [c for c in cases if c.error is not None]
    assert len(negatives) >= 20 and all(c.result is None for c in negatives)


def test_every_group_and_cpu_version_is_covered(cases: list[Case]) -> None:
    groups = {g for c in cases for g in c.groups}
    assert groups >= {"base32", "base64", "atomic32", "atomic64", "divmul32", "divmul64", "packet"}
    assert {c.cpu_version for c in cases if c.result is not None} == {1, 2, 3, 4}


def test_every_rfc_9669_opcode_is_exercised(cases: list[Case]) -> None:
    """Each defined (opcode, variant) of RFC 9669's opcode table appears in some case that must run to a value:
    every ALU/ALU64 operation with K and X (sdiv/smod by offset, movsx by width, END by width), every jump of JMP
    and JMP32 with K and X, every load/store size and mode, every atomic operation of both sizes."""
    seen: set[tuple[int, int]] = set()
    for case in cases:
        if case.result is None:
            continue
        for i in insn.decode(case.program):
            variant = i.offset if i.cls in ("ALU", "ALU64") and i.op in ("div", "mod", "mov") else 0
            variant = i.imm if i.op == "end" or i.mode == "ATOMIC" else variant
            seen.add((i.opcode, variant))
    wanted: set[tuple[int, int]] = set()
    for cls in (0x04, 0x07):
        for op in range(0x0, 0xD):
            for src in (0x00, 0x08):
                if op == 0x8 and src:
                    continue  # neg has no register form
                wanted.add((cls | op << 4 | src, 0))
        wanted |= {(cls | 0x30 | s, 1) for s in (0, 8)} | {(cls | 0x90 | s, 1) for s in (0, 8)}
        wanted |= {(cls | 0xB8, w) for w in ((8, 16, 32) if cls == 0x07 else (8, 16))}
    wanted |= {(0xD4, w) for w in (16, 32, 64)} | {(0xDC, w) for w in (16, 32, 64)} | {(0xD7, w) for w in (16, 32, 64)}
    for cls in (0x05, 0x06):
        for op in (0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0xA, 0xB, 0xC, 0xD):
            wanted |= {(cls | op << 4, 0), (cls | op << 4 | 0x08, 0)}
    wanted |= {(0x05, 0), (0x06, 0), (0x85, 0), (0x95, 0), (0x18, 0)}
    for size in (0x00, 0x08, 0x10, 0x18):
        wanted |= {(0x61 | size, 0), (0x62 | size, 0), (0x63 | size, 0)}
    wanted |= {(0x81, 0), (0x89, 0), (0x91, 0)}  # sign-extending loads
    wanted |= {(op, 0) for op in (0x20, 0x28, 0x30, 0x40, 0x48, 0x50)}  # legacy packet loads
    for code in (0xC3, 0xDB):
        wanted |= {(code, imm) for imm in (0x00, 0x01, 0x40, 0x41, 0x50, 0x51, 0xA0, 0xA1, 0xE1, 0xF1)}
    assert sorted(wanted - seen) == []


def test_the_generators_formulas_match_the_rfc_worked_by_hand() -> None:
    """Values computed by hand from RFC 9669 4.1 and 4.3, independent of the generator's code."""
    g = generator()
    m64 = (1 << 64) - 1
    assert g.alu("div", 64, 7, 0) == 0 and g.alu("mod", 64, 7, 0) == 7
    assert g.alu("mod", 32, 0x1_0000_0007, 0) == 7  # modulo by zero: dst, its upper half zeroed (ALU)
    assert g.alu("sdiv", 64, 1 << 63, m64) == 1 << 63 and g.alu("smod", 64, 1 << 63, m64) == 0
    assert g.alu("smod", 64, -13 & m64, 3) == -1 & m64  # truncated: -13 % 3 == -1
    assert g.alu("sdiv", 32, -13 & m64, 3) == -4 & 0xFFFFFFFF
    assert g.alu("lsh", 64, 1, 65) == 2 and g.alu("lsh", 32, 1, 33) == 2  # masked to 63 / 31
    assert g.alu("arsh", 32, 0x80000000, 4) == 0xF8000000
    assert g.alu("add", 32, 0xFFFFFFFF_FFFFFFFF, 1) == 0  # wraps in 32 bits, zero-extended
    assert g.alu("movsx", 64, 0, 0x80, 8) == 0xFFFFFFFF_FFFFFF80 and g.alu("movsx", 32, 0, 0x8000, 16) == 0xFFFF8000
    assert g.imm_value(-2, 64) == 0xFFFFFFFF_FFFFFFFE and g.imm_value(-2, 32) == 0xFFFFFFFE
    assert g.swap(0x0123456789ABCDEF, 16) == 0xEFCD and g.swap(0x0123456789ABCDEF, 64) == 0xEFCDAB8967452301
    assert g.jump("jgt", 64, m64 - 1, 3) and not g.jump("jsgt", 64, m64 - 1, 3)
    assert not g.jump("jgt", 32, 0x1_0000_0002, 3)  # 32-bit compares ignore the upper half
    assert g.raw(0xB7, 2, imm=-1) == "0xffffffff000002b7"  # bpf_conformance's raw words: opcode in the low byte


def test_the_reference_interpreter_passes_every_case(cases: list[Case]) -> None:
    """The oracle and the cases were written independently from the RFC: they must agree everywhere."""
    from bpfcert.isa import suite
    from bpfcert.isa.interpreter import ReferenceEngine
    from bpfcert.results import Status

    results = suite.run_cases(ReferenceEngine(), cases, "host")
    failed = [(r.subject, r.message) for r in results if r.status != Status.PASS]
    assert failed == []
