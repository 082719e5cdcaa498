"""Holds an array map on a target's kernel for tests/test_targets_arch.py, driven one line at a time through the
runner ops: `python -I -S map_holder.py REPO ORDER`, ORDER being the byte order to encode its program in ("native":
the kernel's own).

  fill VALUE -> loads an XDP program storing the 64-bit VALUE at key 0 of a new array map (u32 keys, u64
                values), runs it once with BPF_PROG_TEST_RUN; answers {"map": id, "retval": its return value}
  release    -> closes every fd; answers {}
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

from bpfcert import insn
from bpfcert.targets import bpf

ORDER = sys.byteorder if sys.argv[2] == "native" else sys.argv[2]
XDP_PASS = 2

fds: list[int] = []


def fill(value: int) -> dict[str, object]:
    map_fd = bpf.map_create(bpf.MAP_TYPES.index("array"), 4, 8, 1, name="arch_values")
    fds.append(map_fd)
    program = [
        insn.st_mem("W", 10, -4, 0),  # key 0 on the stack
        insn.mov64_reg(2, 10),
        insn.alu64_imm("add", 2, -4),
        insn.ld_map_fd(1, map_fd),
        insn.call(bpf.HELPER_NAMES.index("map_lookup_elem")),
        insn.jmp_imm("jeq", 0, 0, 3),  # no element: past the lddw (two slots) and the store
        insn.ld_imm64(1, value),
        insn.stx_mem("DW", 0, 1, 0),
        insn.mov64_imm(0, XDP_PASS),
        insn.exit_(),
    ]
    prog_fd = bpf.prog_load(bpf.PROG_TYPES.index("xdp"), insn.assemble(program, ORDER), name="arch_fill")
    fds.append(prog_fd)
    run = bpf.prog_test_run(prog_fd, b"\0" * 64)
    return {"map": bpf.map_info(map_fd)["id"], "retval": run.retval}


def release() -> dict[str, object]:
    for fd in fds:
        bpf.close(fd)
    fds.clear()
    return {}


for line in sys.stdin:
    command, _, argument = line.strip().partition(" ")
    print(json.dumps(fill(int(argument, 0)) if command == "fill" else release()), flush=True)
