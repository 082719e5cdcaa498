"""Holds BPF objects on a target's kernel for tests/test_kernel_state.py, driven one line at a time through
the runner ops: `python -I -S kernel_state_holder.py REPO`, in a network namespace of its own.

  load DIR  -> a hash map, an XDP program using it with an XDP link on this namespace's lo, an sk_lookup
               program with a netns link on this namespace; all pinned under DIR/bpfcert-kernel-state;
               answers {"map", "xdp", "sk_lookup", "xdp_link", "netns_link": id, "netns_ino", "dir"}
  release   -> unpins everything and closes every fd; answers {}
"""

import ctypes
import json
import os
import sys

sys.path.insert(0, sys.argv[1])

from bpfcert import insn
from bpfcert.targets import bpf

CLONE_NEWNET = 0x40000000
SK_PASS, XDP_PASS = 1, 2

fds: list[int] = []
pinned: list[str] = []


def load(directory: str) -> dict[str, object]:
    where = os.path.join(directory, "bpfcert-kernel-state")
    os.mkdir(where)
    map_fd = bpf.map_create(bpf.MAP_TYPES.index("hash"), 4, 8, 4, name="ks_counts")
    counting = [
        insn.st_mem("W", 10, -4, 0),
        insn.mov64_reg(2, 10),
        insn.alu64_imm("add", 2, -4),
        insn.ld_map_fd(1, map_fd),
        insn.call(bpf.HELPER_NAMES.index("map_lookup_elem")),
        insn.mov64_imm(0, XDP_PASS),
        insn.exit_(),
    ]
    xdp = bpf.prog_load(bpf.PROG_TYPES.index("xdp"), insn.assemble(counting, sys.byteorder), name="ks_xdp")
    sk_lookup = bpf.prog_load(
        bpf.PROG_TYPES.index("sk_lookup"),
        insn.assemble([insn.mov64_imm(0, SK_PASS), insn.exit_()], sys.byteorder),
        expected_attach_type=bpf.ATTACH_TYPES.index("sk_lookup"),
        name="ks_sk_lookup",
    )
    netns = os.open("/proc/self/ns/net", os.O_RDONLY)
    links = {}
    for key, prog, target, attach in (("xdp_link", xdp, 1, "xdp"), ("netns_link", sk_lookup, netns, "sk_lookup")):
        fd, err = bpf.try_link_create(prog, target, bpf.ATTACH_TYPES.index(attach))
        if fd < 0:
            raise bpf.BpfSyscallError(f"BPF_LINK_CREATE {attach}", err)
        links[key] = fd
    os.close(netns)
    answer: dict[str, object] = {"netns_ino": os.stat("/proc/self/ns/net").st_ino, "dir": where}
    for key, fd in {"map": map_fd, "xdp": xdp, "sk_lookup": sk_lookup, **links}.items():
        fds.append(fd)
        path = os.path.join(where, key)
        bpf.obj_pin(fd, path)
        pinned.append(path)
        answer[key] = bpf.INFO[bpf.fd_kind(fd)](fd)["id"]
    return answer


def release() -> dict[str, object]:
    for path in pinned:
        os.unlink(path)
    if pinned:
        os.rmdir(os.path.dirname(pinned[0]))
    for fd in fds:
        os.close(fd)
    pinned.clear()
    fds.clear()
    return {}


def main() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        answer = load(argument) if command == "load" else release()
        print(json.dumps(answer), flush=True)


main()
