"""bpftool as a runtime: `bpftool prog loadall` pins the object's programs, `bpftool net attach` attaches the XDP
program through netlink (no BPF link), uninstall detaches and removes the pins. bpftool keeps no versions, so
there is no upgrade or rollback, and it checks no digest, signature or `requires`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tool_adapter as ta  # noqa: E402

MODES = {"native": "xdp", "generic": "xdpgeneric", "offload": "xdpoffload"}  # `xdp`: the kernel picks


class Bpftool(ta.ToolAdapter):
    tool = "bpftool"
    kinds: ClassVar[dict[str, str]] = {"xdp": "xdp"}
    why_not = "bpftool 7.1 `net attach` attaches XDP (and flow dissector) programs only"

    def map_pin_dir(self, record: dict[str, Any]) -> Path:
        return ta.BPFFS  # libbpf's default pin root: bpftool has no option to choose another

    def load_and_attach(self, record: dict[str, Any], program: dict[str, Any], obj: Path) -> None:
        root = self.pin_root(record) / record["name"]
        root.mkdir(parents=True, exist_ok=True)
        record["pins"].append(str(root))
        progs = root / "progs"
        record["pins"].append(str(progs))
        ta.run(["bpftool", "prog", "loadall", str(obj), str(progs)], "invalid-package")
        pin = progs / program["name"]
        record["pins"] += [str(p) for p in progs.iterdir()]
        record["program"]["pin"] = str(pin)
        record["program"]["mode"] = ta.xdp_mode(program, MODES)
        cmd = ["bpftool", "net", "attach", record["program"]["mode"], "pinned", str(pin), "dev", record["interface"]]
        ta.run(cmd, "attach-failed")

    def _attached_id(self, record: dict[str, Any]) -> int | None:
        shown = ta.bpftool_json(["net", "show", "dev", record["interface"]])
        return next((x["id"] for entry in shown for x in entry.get("xdp", [])), None)

    def kernel_programs(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        prog = record["program"]
        prog_id = ta.bpftool_json(["prog", "show", "pinned", prog["pin"]])["id"]
        attach = {"kind": "xdp", "target": record["interface"]} if self._attached_id(record) == prog_id else None
        return [{"name": prog["name"], "id": prog_id, "type": prog["type"], "attach": attach, "link_id": None}]

    def detach(self, record: dict[str, Any]) -> None:
        prog_id = ta.bpftool_json(["prog", "show", "pinned", record["program"]["pin"]])["id"]
        if self._attached_id(record) == prog_id:
            ta.run(["bpftool", "net", "detach", record["program"]["mode"], "dev", record["interface"]])


if __name__ == "__main__":
    start = ta.start_reply(
        HERE,
        vendor="the Linux kernel BPF maintainers",
        version=ta.tool_version(["bpftool", "version"]),
        homepage="https://github.com/libbpf/bpftool",
        source="https://github.com/libbpf/bpftool",
    )
    no_versions = (
        "bpftool has no upgrade or rollback: it keeps no package versions (this adapter does not script one"
        " out of prog loadall and net attach overwrite)"
    )
    Bpftool().serve(start, upgrade=no_versions, rollback=no_versions)
