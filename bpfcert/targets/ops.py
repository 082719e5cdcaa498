"""The operations a target runs on its kernel: op name -> function of JSON-able keyword arguments.

The guest agent and the host target both run an op through bpfcert.targets.agent.lookup: the agent's own
ops (hello, dmesg) answer without this module, the rest are OPS[op](**args): probes, loading and
test-running programs, the kernel's BPF state, runner processes. Results and arguments stay JSON-able
(bytes travel as hex). Stdlib + ctypes only at import: this module starts inside the guest, under TCG.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from errno import EINVAL
from typing import Any

from bpfcert import insn
from bpfcert.targets import bpf
from bpfcert.targets.runner import runner_exchange, runner_start, runner_stop
from bpfcert.targets.traffic import (
    traffic_interface,
    traffic_interface_del,
    traffic_progress,
    traffic_start,
    traffic_stop,
)


def probe(
    helper_prog_types: list[str] | None = None,
    kconfig: list[str] | None = None,
    kfuncs: list[str] | None = None,
) -> dict[str, Any]:
    """The findings of bpfcert.targets.probes for this kernel."""
    from bpfcert.targets import probes

    types = probes.HELPER_PROG_TYPES if helper_prog_types is None else helper_prog_types
    return probes.probe_kernel(types, kconfig or (), kfuncs or ())


def prog_test_run(
    prog_type: str,
    insns_hex: str,
    data_hex: str = "",
    license: str = "GPL",
    repeat: int = 1,
    byteorder: str = "little",
) -> dict[str, Any]:
    """Load a program (type by name, e.g. "xdp"; instructions encoded in `byteorder`, re-encoded in this kernel's)
    and run it once with BPF_PROG_TEST_RUN on `data_hex`."""
    if prog_type not in bpf.PROG_TYPES:
        raise ValueError(f"unknown program type {prog_type!r}")
    code = insn.reorder(bytes.fromhex(insns_hex), byteorder, sys.byteorder)
    fd = bpf.prog_load(bpf.PROG_TYPES.index(prog_type), code, license)
    try:
        run = bpf.prog_test_run(fd, bytes.fromhex(data_hex), repeat=repeat)
    finally:
        bpf.close(fd)
    return {"retval": run.retval, "duration_ns": run.duration_ns, "data_out_hex": run.data_out.hex()}


def isa_kernel() -> dict[str, Any]:
    """What this kernel offers as an ISA engine (bpfcert.targets.isa_run.isa_kernel)."""
    from bpfcert.targets import isa_run

    return isa_run.isa_kernel()


def isa_run(cases: list[list[str]], jit: bool | None = None) -> dict[str, Any]:
    """A batch of ISA cases ([program_hex, memory_hex] each) run on this kernel (bpfcert.targets.isa_run)."""
    from bpfcert.targets import isa_run as runner

    return runner.isa_run(cases, jit)


def kernel_state(bpffs: str = "/sys/fs/bpf") -> dict[str, Any]:
    """Every program, map and link on this kernel and every pin under `bpffs`, read from the kernel itself
    (GET_NEXT_ID, GET_FD_BY_ID, OBJ_GET_INFO_BY_FD, bpffs), not from any runtime's account:
    {"programs", "maps", "links", "pins", "unsupported"}; "unsupported" lists "links" on a kernel that cannot
    enumerate them (before 5.8: EINVAL), whose "links" is then empty."""
    state: dict[str, Any] = {"programs": bpf.objects("prog"), "maps": bpf.objects("map"), "unsupported": []}
    try:
        state["links"] = bpf.objects("link")
    except bpf.BpfSyscallError as exc:
        if exc.errno != EINVAL:
            raise
        state["links"] = []
        state["unsupported"].append("links")
    state["pins"] = bpf.pins(bpffs)
    return state


def map_element(map_id: int, key_hex: str, value_hex: str | None = None) -> dict[str, Any]:
    """Read (and first write, given `value_hex`) one element of the kernel map `map_id`, found by its id, not
    through any runtime: {"value_hex": the value, or None when the key is absent}. Keys and values are bytes in
    the kernel's byte order (the agent's hello says which)."""
    fd = bpf.fd_by_id("map", map_id)
    if fd is None:
        raise LookupError(f"no map with id {map_id}")
    try:
        size = int(bpf.map_info(fd)["value_size"])  # type: ignore[call-overload]
        if value_hex is not None:
            bpf.map_update(fd, bytes.fromhex(key_hex), bytes.fromhex(value_hex))
        value = bpf.map_lookup(fd, bytes.fromhex(key_hex), size)
    finally:
        bpf.close(fd)
    return {"value_hex": None if value is None else value.hex()}


OPS: dict[str, Callable[..., Any]] = {
    "isa_kernel": isa_kernel,
    "isa_run": isa_run,
    "kernel_state": kernel_state,
    "map_element": map_element,
    "probe": probe,
    "prog_test_run": prog_test_run,
    "runner_start": runner_start,
    "runner_exchange": runner_exchange,
    "runner_stop": runner_stop,
    "traffic_interface": traffic_interface,
    "traffic_interface_del": traffic_interface_del,
    "traffic_progress": traffic_progress,
    "traffic_start": traffic_start,
    "traffic_stop": traffic_stop,
}
