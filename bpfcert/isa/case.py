"""ISA test cases in bpf_conformance's `.data` format, plus bpfcert's metadata sections.

The format, as bpf_conformance reads it: `#` lines are comments; a line containing `--` starts a section, named by
the first of these its text contains: `asm` (assembly), `result` (expected r0, `0x` hex or decimal), `mem` (hex
bytes), `raw` (one 64-bit little-endian instruction word a token, `0x` hex or decimal), `no register offset` or
` c` (ignored), `error` (expected error text); any other section makes the whole case skipped. bpfcert adds
`-- group` (conformance groups, overriding the inferred ones), `-- cpu` (`v1`..`v4` or `1`..`4`, overriding the
inferred version) and `-- description` (free text; without it the leading comments, less copyright/SPDX lines).
As there, a file with neither result nor error, or without instructions, is skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from bpfcert.errors import BpfcertError, FormatError
from bpfcert.isa import asm, groups

MAX_CASE_BYTES = 1 << 20  # a case file larger than this is refused unread (bounded cost on hostile input)
MAX_SUITE_FILES = 100_000
_OURS = ("group", "cpu", "description")
_BOILERPLATE = re.compile(r"(Copyright|SPDX-License-Identifier)\b")
_INT = re.compile(r"[+-]?(?:0[xX][0-9a-fA-F]{1,16}|[0-9]{1,20})")


@dataclass(frozen=True)
class Case:
    """One test: the program (little-endian 8-byte slots), its input memory, and what it must give.

    `result` is the expected r0 (unsigned 64-bit); `error` the expected error text (the engine must refuse the
    program or fault). `skip` says why the file cannot run (then the program may be empty)."""

    name: str
    program: bytes
    memory: bytes
    result: int | None
    error: str | None
    groups: frozenset[str]
    cpu_version: int
    description: str
    source: str
    skip: str | None = None


def _section(line: str) -> str | None:
    """The section a directive line opens, in bpf_conformance's order of matching; None for an unknown one."""
    for name in ("asm", "result", "mem", "raw"):
        if name in line:
            return name
    word = line.split("--", 1)[1].strip()
    if word in _OURS:
        return word
    if "no register offset" in line or " c" in line:
        return "ignore"
    return "error" if "error" in line else None


def _int(token: str, what: str) -> int:
    if not _INT.fullmatch(token):
        raise ValueError(f"{what} {token[:40]!r} is not a decimal or 0x number")
    body = token.lstrip("+-")
    value = int(body, 16) if body[:2].lower() == "0x" else int(body, 10)
    if value >> 64:
        raise ValueError(f"{what} {token[:40]!r} does not fit in 64 bits")
    return (-value if token.startswith("-") else value) & 0xFFFFFFFFFFFFFFFF


def _trim(lines: list[str]) -> str:
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return "\n".join(lines)


def _read_text(path: Path) -> str:
    """The case file's text; FormatError (one line naming the file) for anything but a regular UTF-8 file within
    the limit, which is refused without blocking on it (a FIFO) or reading more than the limit."""
    from bpfcert.pack import read_regular_file  # lazily: reading cases needs nothing else of the packaging module

    try:
        data = read_regular_file(path, MAX_CASE_BYTES)
    except BpfcertError as exc:  # "cannot read PATH: why", "PATH is not a regular file", "PATH is larger than N"
        raise FormatError(str(exc)) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not UTF-8 text (byte {exc.start})") from None


def read_case(path: str | os.PathLike[str]) -> Case:
    """Read one `.data` file; FormatError (one line naming file and line) when it is malformed."""
    path = Path(path)
    text = _read_text(path)
    sections: dict[str, list[tuple[int, str]]] = {}
    starts: dict[str, int] = {}  # section -> line number of its directive
    leading: list[str] = []
    current: str | None = None
    for number, line in enumerate(text.split("\n"), start=1):  # getline: \n ends a line, not \x85 or \u2028
        line = line.rstrip("\r")
        if "--" in line:
            current = _section(line)
            if current is None:
                return _skipped(path, f"unknown directive {line.strip()[:60]!r} (line {number})")
            sections.setdefault(current, [])
            starts.setdefault(current, number)
            continue
        if current is None:
            if line.startswith("#") and not _BOILERPLATE.search(line):
                leading.append(line[1:].strip())
            continue
        sections[current].append((number, line.rstrip()))
    try:
        return _build(path, sections, starts, leading)
    except _LineError as exc:
        raise FormatError(f"{path}:{exc.number}: {exc.reason}") from None
    except FormatError as exc:  # from the assembler: "line N: ..."
        raise FormatError(f"{path}:{str(exc).removeprefix('line ')}") from None


class _LineError(Exception):
    def __init__(self, number: int, reason: str) -> None:
        super().__init__(reason)
        self.number, self.reason = number, reason


def _values(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """The non-empty, comment-stripped lines of a data section."""
    out = [(n, line.split("#", 1)[0].strip()) for n, line in lines]
    return [(n, line) for n, line in out if line]


def _tokens(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(n, token) for n, line in _values(lines) for token in line.split()]


def _build(path: Path, sections: dict[str, list[tuple[int, str]]], starts: dict[str, int], leading: list[str]) -> Case:
    name = path.stem
    result_lines = _values(sections.get("result", []))
    error_lines = [(n, line.strip()) for n, line in sections.get("error", []) if line.strip()]  # '#' is text here
    if not result_lines and not error_lines:
        return _skipped(path, "no result or error")
    result = None
    if result_lines:
        number, value = result_lines[-1]
        try:
            result = _int(value, "result")
        except ValueError as exc:
            raise _LineError(number, str(exc)) from None
    error = error_lines[-1][1] if error_lines else None
    if "raw" in sections and _values(sections["raw"]):
        source = _trim([line for _, line in sections["raw"]])
        words = []
        for number, token in _tokens(sections["raw"]):
            try:
                words.append(_int(token, "instruction word"))
            except ValueError as exc:
                raise _LineError(number, str(exc)) from None
        program = struct.pack(f"<{len(words)}Q", *words)
    else:
        lines = sections.get("asm", [])
        source = _trim([line for _, line in lines])
        program = asm.assemble_lines(lines)
    if not program:
        return _skipped(path, "no instructions")
    memory = bytearray()
    for number, token in _tokens(sections.get("mem", [])):
        body = token[2:] if token[:2].lower() == "0x" else token
        if not re.fullmatch(r"[0-9a-fA-F]{1,2}", body):
            raise _LineError(number, f"memory byte {token[:40]!r} is not hex 00..ff")
        memory.append(int(body, 16))
    inferred, cpu = groups.infer(program)
    claimed = _groups(sections["group"], starts.get("group", 0)) if "group" in sections else inferred
    cpu = _cpu(sections["cpu"], starts.get("cpu", 0)) if "cpu" in sections else cpu
    written = [line for _, line in sections["description"]] if "description" in sections else leading
    description = _trim(written)
    return Case(name, program, bytes(memory), result, error, claimed, cpu, description, source)


def _groups(lines: list[tuple[int, str]], start: int) -> frozenset[str]:
    found = set()
    for number, token in _tokens([(n, line.replace(",", " ")) for n, line in lines]):
        if token not in groups.GROUPS:
            raise _LineError(number, f"unknown conformance group {token[:40]!r} (one of {', '.join(groups.GROUPS)})")
        found.add(token)
    if not found:
        raise _LineError(start, "-- group names no group")
    return frozenset(found)


def _cpu(lines: list[tuple[int, str]], start: int) -> int:
    values = _values(lines)
    if len(values) != 1 or not re.fullmatch(r"v?[1-4]", values[0][1]):
        raise _LineError(values[0][0] if values else start, "-- cpu takes one version, v1 to v4")
    return int(values[0][1].lstrip("v"))


def _skipped(path: Path, reason: str) -> Case:
    return Case(path.stem, b"", b"", None, None, frozenset(), 1, "", "", skip=reason)


def read_suite(directory: str | os.PathLike[str]) -> list[Case]:
    """Every `*.data` file under `directory` (subdirectories too, symlinks not followed), sorted by name; a case in
    a subdirectory is named by its relative path (`rfc9669/sec_4_1_and64`)."""
    root = Path(directory)
    if not root.is_dir():
        raise FormatError(f"{root}: not a directory of .data cases")
    cases: list[Case] = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for file in files:
            if not file.endswith(".data"):
                continue
            if len(cases) >= MAX_SUITE_FILES:
                raise FormatError(f"{root}: more than {MAX_SUITE_FILES} case files")
            path = Path(folder) / file
            case = read_case(path)
            cases.append(dataclasses.replace(case, name=path.relative_to(root).with_suffix("").as_posix()))
    return sorted(cases, key=lambda c: c.name)


def _is_raw(source: str) -> bool:
    tokens = source.split()
    return bool(tokens) and all(_INT.fullmatch(t) for t in tokens)


def _program_text(case: Case) -> tuple[str, str]:
    """The section that reproduces `case.program`: its own source when that does, else generated text."""
    source = case.source
    if source.strip() and "--" not in source:
        try:
            if _is_raw(source):
                words = [_int(t, "word") for t in source.split()]
                if struct.pack(f"<{len(words)}Q", *words) == case.program:
                    return "raw", source
            elif asm.assemble(source) == case.program:
                return "asm", source
        except (ValueError, FormatError):
            pass
    text = asm.disassemble(case.program)
    if ".raw" not in text:
        return "asm", text.rstrip("\n")
    return "raw", "\n".join(f"{word:#018x}" for (word,) in struct.iter_unpack("<Q", case.program))


def write_case(case: Case, path: str | os.PathLike[str]) -> None:
    """Write `case` as a `.data` file that read_case reads back to the same Case (name from the file name).

    Plain bpf_conformance sections where they suffice: the description as leading comments, `-- group`/`-- cpu`
    only where they differ from what the program implies."""
    if case.skip:
        raise FormatError(f"case {case.name}: skipped ({case.skip}), nothing to write")
    if case.result is None and case.error is None:
        raise FormatError(f"case {case.name}: neither result nor error")
    out: list[str] = []
    description = case.description.split("\n") if case.description else []
    if (
        description
        and all("--" not in line and not _BOILERPLATE.search(line) for line in description)
        and all(line == line.strip() for line in description)
    ):
        out += [f"# {line}".rstrip() for line in description]
    elif description:
        out += ["-- description", *description]
    kind, text = _program_text(case)
    out += [f"-- {kind}", text]
    if case.memory:
        out += ["-- mem"] + [case.memory[i : i + 16].hex(" ") for i in range(0, len(case.memory), 16)]
    if case.result is not None:
        out += ["-- result", f"{case.result:#x}"]
    if case.error is not None:
        if case.error != case.error.strip() or not case.error or "--" in case.error or "\n" in case.error:
            raise FormatError(f"case {case.name}: error text {case.error[:40]!r} cannot be written on one line")
        out += ["-- error", case.error]
    inferred, cpu = groups.infer(case.program)
    if case.groups != inferred:
        out += ["-- group", " ".join(g for g in groups.GROUPS if g in case.groups)]
    if case.cpu_version != cpu:
        out += ["-- cpu", f"v{case.cpu_version}"]
    Path(path).write_text("\n".join(out) + "\n")
