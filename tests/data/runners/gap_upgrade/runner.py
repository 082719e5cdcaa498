"""The reference runtime (runners/reference) with a broken upgrade: instead of swapping the program in the XDP link
(BPF_LINK_UPDATE), it detaches the link (BPF_LINK_DETACH), waits GAP seconds with no program on the interface, then
attaches the new program with a new link pinned in the old one's place. Everything else is the reference's."""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "runners" / "reference"))

from refruntime import __main__ as cli
from refruntime import libbpf, runtime

from bpfcert.targets import bpf
from bpfcert.uapi import ATTACH_TYPES

GAP = 0.05


def detach_then_attach(link_pin: Path, prog_pin: Path) -> None:
    with runtime._pinned(link_pin) as link, runtime._pinned(prog_pin) as prog:
        if libbpf.link_info(link)[2] == libbpf.prog_info(prog)[1]:
            return
        ifindex = bpf.link_info(link)["ifindex"]
        libbpf._check_int(libbpf._lib.bpf_link_detach(link), "bpf_link_detach")
        time.sleep(GAP)
        new = libbpf.link_create(prog, ifindex, ATTACH_TYPES.index("xdp"))
    os.unlink(link_pin)
    libbpf.obj_pin(new, str(link_pin))
    os.close(new)


runtime._swap_link = detach_then_attach
cli.START["runtime"] = {**cli.START["runtime"], "name": "gap-upgrade", "source": "tests/data/runners/gap_upgrade"}
sys.exit(cli.main(["serve"]))
