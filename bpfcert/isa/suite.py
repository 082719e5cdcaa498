"""Running an ISA case list on an engine: engines opened by runtime name, one verdict per case, and each verdict as
a Result of its group's requirement (spec/requirements.json, profiles `isa-<group>`).

Runtime names: `python-reference`, `linux-kernel` (every engine the target's kernel offers: its JIT and, where it
can be switched, its interpreter), `linux-kernel-jit`, `linux-kernel-interp`, `dpdk-interp`, `dpdk-jit`, and
`plugin:PATH` (a bpf_conformance-style plugin executable). Only the kernel engines run on a kernel target; the
others run in this process (or children of it) on the host.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from bpfcert.errors import BpfcertError
from bpfcert.results import Result, Status

if TYPE_CHECKING:
    from bpfcert.isa.case import Case
    from bpfcert.isa.engine import Engine, EngineCrash, Outcome
    from bpfcert.targets.target import Target

KERNEL_ENGINES = ("linux-kernel", "linux-kernel-jit", "linux-kernel-interp")
HOST_ENGINES = ("python-reference", "dpdk-interp", "dpdk-jit")
PLUGIN = "plugin:"
# Each group's requirement, the most specific group first: a case is a row of the first of its groups listed here.
REQUIREMENTS = {
    "atomic64": "ISA-ATOM-002", "atomic32": "ISA-ATOM-001", "divmul64": "ISA-DIV-002", "divmul32": "ISA-DIV-001",
    "packet": "ISA-PKT-001", "callx": "ISA-CALLX-001", "base64": "ISA-BASE-002", "base32": "ISA-BASE-001",
}  # fmt: skip
REFUSAL = "ISA-REJ-001"  # the requirement of every case that states an error
REQUIREMENT_IDS = (*REQUIREMENTS.values(), REFUSAL)


def check_runtime(name: str) -> None:
    """BpfcertError (one line, the known names) unless `name` names an engine."""
    if name in KERNEL_ENGINES or name in HOST_ENGINES or (name.startswith(PLUGIN) and name != PLUGIN):
        return
    known = ", ".join((*HOST_ENGINES, *KERNEL_ENGINES, "plugin:PATH"))
    raise BpfcertError(f"unknown ISA runtime {name!r} (known: {known})")


def on_kernel(name: str) -> bool:
    """Whether the engine `name` runs on a kernel target (else in-process, on the host)."""
    return name in KERNEL_ENGINES


def open_engines(name: str, target: Target | None) -> list[Engine]:
    """The engines `name` stands for (`linux-kernel`: the JIT and, where it exists, the interpreter of `target`);
    BpfcertError naming why one cannot be had here."""
    check_runtime(name)
    if on_kernel(name):
        from bpfcert.isa.kernel_engine import kernel_engine, kernel_engines

        if target is None:
            raise BpfcertError(f"{name} runs on a kernel target, and none was given")
        if name == "linux-kernel":
            return list(kernel_engines(target)[0])
        return [kernel_engine(target, name)]
    if name == "python-reference":
        from bpfcert.isa.interpreter import ReferenceEngine

        return [ReferenceEngine()]
    if name.startswith("dpdk-"):
        from bpfcert.isa.dpdk_engine import DpdkEngine

        return [DpdkEngine(jit=name == "dpdk-jit")]
    import os

    from bpfcert.isa.plugin_engine import PluginEngine

    path = name.removeprefix(PLUGIN)
    return [PluginEngine([os.path.abspath(path) if os.sep in path else path], name=name)]


def group_of(case: Case) -> str:
    """The most specific of the case's groups (base32 when it names none)."""
    return next((g for g in REQUIREMENTS if g in case.groups), "base32")


def requirement_of(case: Case) -> str:
    """The requirement a case is a row of: ISA-REJ-001 when it states an error, else its group's."""
    return REFUSAL if case.error is not None else REQUIREMENTS[group_of(case)]


def profiles_of(groups: frozenset[str]) -> list[str]:
    """The `isa-<group>` profiles an engine claiming `groups` is certified against (base32 always)."""
    return [f"isa-{g}" for g in reversed(REQUIREMENTS) if g in groups or g == "base32"]


def outcomes(engine: Engine, cases: Sequence[Case]) -> dict[str, Outcome | EngineCrash]:
    """What `engine` made of every case it claims (by case name): in one batch where the engine can (the kernel
    engines), else case by case; a crash is contained to its case (its whole batch, for a batch)."""
    from bpfcert.isa.engine import EngineCrash, outside_claims

    runnable = [c for c in cases if c.skip is None and outside_claims(c, engine.groups, engine.cpu_version) is None]
    batch = getattr(engine, "run_batch", None)
    out: dict[str, Outcome | EngineCrash] = {}
    if batch is not None and runnable:
        try:
            answers = batch([(c.program, c.memory) for c in runnable])
        except EngineCrash as exc:
            return dict.fromkeys((c.name for c in runnable), exc)
        return {c.name: answer for c, answer in zip(runnable, answers, strict=False)}
    for case in runnable:
        try:
            out[case.name] = engine.run(case.program, case.memory)
        except EngineCrash as exc:
            out[case.name] = exc
    return out


def shown_program(program: bytes) -> str:
    """The program as assembly, or as its raw words where it does not disassemble (a malformed negative case)."""
    from bpfcert.isa.asm import disassemble

    try:
        return disassemble(program)
    except BpfcertError:
        return "\n".join(f"0x{int.from_bytes(program[i : i + 8], 'little'):016x}" for i in range(0, len(program), 8))


def in_byteorder(cases: Sequence[Case], byteorder: str) -> tuple[list[Case], set[str]]:
    """The cases as a machine of `byteorder` must run them, and the names of those whose result changed: a case's
    stated r0 assumes little-endian memory, so on a big-endian machine the expected r0 is what the reference
    interpreter of that byte order computes, wherever the little-endian reference reproduces the stated r0 (a case
    stating an error, or one the reference disagrees with, stays as written)."""
    import dataclasses

    from bpfcert.isa.interpreter import ReferenceEngine

    if byteorder == "little":
        return list(cases), set()
    little, other = ReferenceEngine(), ReferenceEngine(byteorder=byteorder)
    out, changed = [], set()
    for case in cases:
        there = None if case.skip or case.error is not None else other.run(case.program, case.memory).r0
        if there not in (None, case.result) and little.run(case.program, case.memory).r0 == case.result:
            case = dataclasses.replace(case, result=there)
            changed.add(case.name)
        out.append(case)
    return out, changed


def run_cases(
    engine: Engine, cases: Sequence[Case], target: str, done: dict[str, Outcome | EngineCrash] | None = None
) -> Iterator[Result]:
    """One Result per case of `engine` on `target` (by name), its subject engine:E/case:C (a kernel's JIT and
    interpreter, and the host's engines, judge the same cases on one target): its verdict, with the case, its group
    and cpu version, the engine, its byte order (and, for a kernel's, its arch), expected and got as evidence, and the
    program disassembled where it did not pass. A big-endian engine's expectations are in its byte order
    (`in_byteorder`; evidence "expected_from" says where one was recomputed). `done`: the engine's `outcomes` on
    these cases when already run (else they are run now)."""
    from bpfcert.isa.engine import judge

    byteorder = engine.byteorder
    cases, recomputed = in_byteorder(cases, byteorder)
    machine = {"arch": engine.arch} if hasattr(engine, "arch") else {}
    done = outcomes(engine, cases) if done is None else done
    for case in cases:
        verdict = judge(case, engine.groups, engine.cpu_version, done.get(case.name))
        evidence = {
            "engine": engine.name, **machine, "byteorder": byteorder, "case": case.name, "group": group_of(case),
            "groups": sorted(case.groups), "cpu_version": case.cpu_version, "expected": verdict.expected,
            "got": verdict.got,
        }  # fmt: skip
        if case.name in recomputed:
            evidence["expected_from"] = f"python-reference ({byteorder}-endian memory)"
        if verdict.status in (Status.FAIL, Status.ERROR):
            evidence["program"] = shown_program(case.program)
        yield Result.of(
            requirement_of(case), verdict.status, verdict.message, subject=f"engine:{engine.name}/case:{case.name}",
            target=target, evidence=evidence,
        )
    yield from uncovered(engine, cases, target)


def uncovered(engine: Engine, cases: Sequence[Case], target: str) -> Iterator[Result]:
    """A SKIP row for each requirement of the engine's claimed profiles that no case of this suite exercises (an
    external suite without negative cases, say), so that the report says so instead of a silent gap."""
    from bpfcert import spec

    covered = {requirement_of(c) for c in cases}
    profiles = set(profiles_of(engine.groups))
    for req_id in REQUIREMENT_IDS:
        if req_id not in covered and spec.requirement(req_id).profile in profiles:
            yield Result.of(req_id, Status.SKIP, f"no case of this suite exercises {req_id} ({engine.name})",
                            subject=f"engine:{engine.name}", target=target, evidence={"engine": engine.name})
