#!/usr/bin/env python3
"""A bpf_conformance plugin for the tests: the reference interpreter behind the plugin contract (program hex on
stdin, memory hex in argv[1], r0 hex on stdout, exit 1 with the error on stdout). The options argument (argv[2])
makes it misbehave on purpose: `crash` (SIGSEGV), `hang`, `garbage` (exit 0, no number), `wrong-arsh32`
(arsh32 computed as a logical shift, for the fuzzer to find)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bpfcert.isa.interpreter import ReferenceEngine


def _wrong_arsh32(program: bytes) -> bytes:
    """The program with every arsh32 (0xc4, 0xcc) turned into rsh32 (0x74, 0x7c)."""
    out = bytearray(program)
    for i in range(0, len(out), 8):
        if out[i] in (0xC4, 0xCC):
            out[i] -= 0x50
    return bytes(out)


def main() -> int:
    memory = bytes.fromhex(sys.argv[1] if len(sys.argv) > 1 else "")
    options = sys.argv[2] if len(sys.argv) > 2 else ""
    program = bytes.fromhex(sys.stdin.read())
    if options == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if options == "hang":
        time.sleep(60)
    if options == "garbage":
        print("hello")
        return 0
    if options == "wrong-arsh32":
        program = _wrong_arsh32(program)
    outcome = ReferenceEngine().run(program, memory)
    if outcome.error is not None:
        print(outcome.error)
        return 1
    print(f"{outcome.r0:x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
