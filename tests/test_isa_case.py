"""The `.data` case reader and writer: bpf_conformance's format as it is, bpfcert's metadata, hostile files."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcert import insn as bi
from bpfcert.errors import FormatError
from bpfcert.isa.asm import assemble
from bpfcert.isa.case import MAX_CASE_BYTES, Case, read_case, read_suite, write_case
from bpfcert.isa.groups import GROUPS
from tests.test_isa_asm import known_insns

# Shaped like bpf_conformance's own files: license comments, a commented asm section, a trailing ignored section.
CALL_LOCAL = """\
# Copyright (c) Example
# SPDX-License-Identifier: MIT
# Adds two arguments in a local function.
-- asm
# %r1-%r2 are the arguments
mov %r1, 1
mov %r2, 2
call local add   # the callee
jne %r0, 3, fail
mov %r0, 1
exit
fail:
mov %r0, 0
exit
add:
mov %r0, %r1
add %r0, %r2
exit
-- result
0x1
-- no register offset
call instruction
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_reads_a_bpf_conformance_file(tmp_path: Path) -> None:
    case = read_case(write(tmp_path, "call_local.data", CALL_LOCAL))
    assert case.name == "call_local"
    assert case.program[:16] == assemble("mov %r1, 1\nmov %r2, 2")
    assert bi.decode(case.program)[2].call_kind == "local"
    assert (case.result, case.error, case.memory, case.skip) == (1, None, b"", None)
    assert case.description == "Adds two arguments in a local function."
    assert case.source.splitlines()[0] == "# %r1-%r2 are the arguments"
    assert (case.groups, case.cpu_version) == (frozenset({"base32", "base64"}), 1)


def test_raw_words_are_little_endian_slots_and_win_over_asm(tmp_path: Path) -> None:
    # One 64-bit word per instruction, as a little-endian host reads it: the low byte is the opcode.
    path = write(tmp_path, "raw.data", "-- asm\nmov %r0, 7\nexit\n-- raw\n0x000000ff000000b7\n149\n-- result\n255\n")
    case = read_case(path)
    assert case.program == assemble("mov %r0, 255\nexit")
    assert case.source == "0x000000ff000000b7\n149"


def test_memory_result_and_error_sections(tmp_path: Path) -> None:
    text = (
        "-- asm\nldxb %r0, [%r1+9]\nexit\n-- mem\naa bb 0x0c\n  dd\n"
        "-- result\n5\n-- result\n-1\n-- error\nfirst\nOut of bounds # at pc 0\n"
    )
    case = read_case(write(tmp_path, "m.data", text))
    assert case.memory == bytes([0xAA, 0xBB, 0x0C, 0xDD])
    assert case.result == (1 << 64) - 1  # the last line counts; negative decimal wraps as stoull does
    assert case.error == "Out of bounds # at pc 0"  # the error text is taken whole


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("-- map\narray 2 4 4 1\n-- asm\nexit\n-- result\n0\n", "unknown directive '-- map' (line 1)"),
        ("-- asm\nexit\n# see -- notes\n-- result\n0\n", "unknown directive"),
        ("-- asm\nmov %r0, 1\nexit\n", "no result or error"),
        ("-- asm\n# nothing\n-- result\n0x0\n", "no instructions"),
    ],
)
def test_cases_bpf_conformance_skips_are_skipped_with_the_reason(tmp_path: Path, text: str, reason: str) -> None:
    case = read_case(write(tmp_path, "s.data", text))
    assert case.skip is not None and reason in case.skip
    assert case.program == b""


def test_c_and_no_register_offset_sections_are_ignored(tmp_path: Path) -> None:
    text = "-- c\nint main() { return 0; }\n-- asm\nmov %r0, 0\nexit\n-- no register offset\nx\n-- result\n0\n"
    case = read_case(write(tmp_path, "c.data", text))
    assert case.skip is None and case.program == assemble("mov %r0, 0\nexit")


def test_metadata_sections_override_inferred_values(tmp_path: Path) -> None:
    text = "-- asm\nmov %r0, 0\nexit\n-- result\n0\n-- group\nbase32, packet\n-- cpu\nv3\n"
    text += "-- description\nWhy.\nTwo lines.\n"
    case = read_case(write(tmp_path, "g.data", text))
    assert (case.groups, case.cpu_version, case.description) == (frozenset({"base32", "packet"}), 3, "Why.\nTwo lines.")


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        ("-- asm\nmov %r0, 1\nfrob\n-- result\n0\n", 3, "unknown mnemonic"),
        ("-- asm\nexit\n-- result\nzero\n", 4, "not a decimal or 0x number"),
        ("-- asm\nexit\n-- result\n0x10000000000000000\n", 4, "not a decimal or 0x number"),
        ("-- asm\nexit\n-- mem\n00 1ff\n-- result\n0\n", 4, "not hex 00..ff"),
        ("-- raw\n0x95\nnope\n-- result\n0\n", 3, "not a decimal or 0x number"),
        ("-- asm\nexit\n-- result\n0\n-- group\nbase128\n", 6, "unknown conformance group 'base128'"),
        ("-- asm\nexit\n-- result\n0\n-- group\n", 5, "names no group"),
        ("-- asm\nexit\n-- result\n0\n-- cpu\nv5\n", 6, "v1 to v4"),
    ],
)
def test_malformed_files_raise_one_line_naming_file_and_line(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, "bad.data", text)
    with pytest.raises(FormatError) as err:
        read_case(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ")
    assert reason in message and "\n" not in message


def test_hostile_files_are_refused_quickly(tmp_path: Path) -> None:
    big = tmp_path / "big.data"
    big.write_bytes(b"-- asm\n" + b"mov %r0, 1\n" * (MAX_CASE_BYTES // 8))
    binary = tmp_path / "bin.data"
    binary.write_bytes(b"-- asm\n\xff\xfe\x00\n")
    fifo = tmp_path / "fifo.data"
    os.mkfifo(fifo)  # reading it would block forever
    for path, reason in [
        (big, "is larger than 1 MiB"),
        (binary, "not UTF-8"),
        (fifo, "not a regular file"),
        (tmp_path, "not a regular file"),
        (tmp_path / "missing.data", "cannot read"),
    ]:
        with pytest.raises(FormatError, match=reason) as err:
            read_case(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_a_case_swapped_for_a_fifo_after_it_was_checked_does_not_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What is checked is what is read (pack.read_regular_file: the open file itself is checked): a case file that
    becomes a FIFO between a check of its path and its opening, simulated by a stat() that still sees a regular
    file, is refused instead of blocking the reader."""
    regular = write(tmp_path, "ok.data", "-- asm\nexit\n-- result\n0\n")
    fifo = tmp_path / "swapped.data"
    os.mkfifo(fifo)
    monkeypatch.setattr(Path, "stat", lambda self, **kwargs: os.stat(regular))

    def blocked(signum: int, frame: object) -> None:
        raise TimeoutError("read_case blocked opening the FIFO")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(5)
    try:
        with pytest.raises(FormatError, match="is not a regular file"):
            read_case(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_large_legal_case_reads_in_bounded_time(tmp_path: Path) -> None:
    body = "".join(f"l{i}:\nadd %r0, {i}\njlt %r0, 0, l{i}\n" for i in range(15000))
    path = write(tmp_path, "long.data", f"-- asm\n{body}exit\n-- mem\n{'ab ' * 50000}\n-- result\n0\n")
    start = time.monotonic()
    case = read_case(path)
    assert len(case.program) == 8 * 30001 and len(case.memory) == 50000
    assert time.monotonic() - start < 5


def test_read_suite_walks_subdirectories_sorted_by_name(tmp_path: Path) -> None:
    for name in ("b.data", "a.data", "sub/c.data", "notes.txt"):
        write(tmp_path, name, "-- asm\nmov %r0, 2\nexit\n-- result\n2\n")
    assert [c.name for c in read_suite(tmp_path)] == ["a", "b", "sub/c"]
    with pytest.raises(FormatError, match="not a directory"):
        read_suite(tmp_path / "a.data")


def test_write_keeps_a_bpf_conformance_file_plain(tmp_path: Path) -> None:
    case = read_case(write(tmp_path, "call_local.data", CALL_LOCAL))
    out = tmp_path / "out" / "call_local.data"
    out.parent.mkdir()
    write_case(case, out)
    text = out.read_text()
    assert "-- group" not in text and "-- cpu" not in text and "-- description" not in text
    assert text.startswith("# Adds two arguments in a local function.\n-- asm\n# %r1-%r2 are the arguments\n")
    assert read_case(out) == case


def test_write_falls_back_to_raw_for_bytes_without_a_spelling(tmp_path: Path) -> None:
    program = bytes.fromhex("ff00000000000000") + assemble("exit")
    case = Case("odd", program, b"", None, "unknown opcode", frozenset({"base32"}), 1, "", "")
    path = tmp_path / "odd.data"
    write_case(case, path)
    assert "-- raw\n0x00000000000000ff\n" in path.read_text()
    assert read_case(path) == Case("odd", program, b"", None, "unknown opcode", frozenset({"base32"}), 1, "",
                                   "0x00000000000000ff\n0x0000000000000095")  # fmt: skip


def test_only_newline_ends_a_line(tmp_path: Path) -> None:
    # bpf_conformance reads with getline: U+0085 and U+2028 are text, not line ends.
    case = Case("u", assemble("exit"), b"", None, "bad\x85op\u2028code", frozenset({"base32"}), 1, "a\x85b", "")
    write_case(case, tmp_path / "u.data")
    back = read_case(tmp_path / "u.data")
    assert (back.error, back.description) == (case.error, case.description)


def test_write_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    program = assemble("exit")
    skipped = Case("s", b"", b"", None, None, frozenset(), 1, "", "", skip="unknown directive")
    multi = Case("m", program, b"", None, "two\nlines", frozenset({"base32"}), 1, "", "")
    for case, reason in [(skipped, "skipped"), (multi, "one line")]:
        with pytest.raises(FormatError, match=reason):
            write_case(case, tmp_path / "x.data")


TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), max_size=30)


@st.composite
def cases(draw: st.DrawFn) -> Case:
    program = bi.assemble(draw(st.lists(known_insns(), min_size=1, max_size=12)))
    error = draw(st.none() | TEXT.map(str.strip).filter(lambda t: bool(t) and "--" not in t))
    result = draw(st.integers(0, (1 << 64) - 1)) if error is None or draw(st.booleans()) else None
    lines = draw(st.lists(TEXT.map(str.strip), max_size=3))
    return Case(
        name="generated",
        program=program,
        memory=draw(st.binary(max_size=40)),
        result=result,
        error=error,
        groups=draw(st.frozensets(st.sampled_from(GROUPS), min_size=1)),
        cpu_version=draw(st.integers(1, 4)),
        description="\n".join(lines).strip("\n"),
        source="",
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases())
def test_write_then_read_round_trips(tmp_path: Path, case: Case) -> None:
    path = tmp_path / "generated.data"
    write_case(case, path)
    first = read_case(path)
    assert first == Case(**{**case.__dict__, "source": first.source, "description": first.description})
    assert first.description.split() == case.description.split()
    write_case(first, path)
    assert read_case(path) == first  # once read, a case writes back exactly
