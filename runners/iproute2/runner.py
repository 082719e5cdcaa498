"""iproute2 as a runtime: `ip link set dev X xdp obj OBJ sec S` attaches an XDP program, `tc filter add dev X
ingress|egress bpf da obj OBJ sec S` (on a clsact qdisc) a tc program; `xdp off` / `tc filter del` detach. The
program ids come back from `ip -j link` and `tc -j filter show`. iproute2's loader pins maps marked by-name under
/sys/fs/bpf/xdp/globals or /sys/fs/bpf/tc/globals and pins nothing else. No upgrade or rollback; no digest,
signature or `requires` check."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

from bpfcert.runners.serve import RunnerFailure

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tool_adapter as ta  # noqa: E402

MODES = {"native": "xdp", "generic": "xdpgeneric", "offload": "xdpoffload"}  # `xdp`: the kernel picks


def _json(argv: list[str]) -> Any:
    return json.loads(ta.run(argv) or "[]")


class Iproute2(ta.ToolAdapter):
    tool = "iproute2"
    kinds: ClassVar[dict[str, str]] = {"xdp": "xdp", "sched_cls": "tc"}
    why_not = "ip link attaches XDP programs and tc filter attaches sched_cls programs, nothing else"

    def map_pin_dir(self, record: dict[str, Any]) -> Path:
        return ta.BPFFS / ("xdp" if record["program"]["type"] == "xdp" else "tc") / "globals"

    def load_and_attach(self, record: dict[str, Any], program: dict[str, Any], obj: Path) -> None:
        prog, dev = record["program"], record["interface"]
        if prog["type"] == "xdp":
            prog["mode"] = ta.xdp_mode(program, MODES)
            ta.run(
                ["ip", "link", "set", "dev", dev, prog["mode"], "obj", str(obj), "sec", prog["section"]],
                "attach-failed",
            )
            return
        prog["direction"] = program.get("attach", {}).get("direction", "ingress")
        if not any(q["kind"] == "clsact" for q in _json(["tc", "-j", "qdisc", "show", "dev", dev])):
            ta.run(["tc", "qdisc", "add", "dev", dev, "clsact"], "attach-failed")
            prog["added_clsact"] = True
        before = {f["options"]["prog"]["id"] for f in self._filters(record)}
        cmd = [
            "tc",
            "filter",
            "add",
            "dev",
            dev,
            prog["direction"],
            "bpf",
            "da",
            "obj",
            str(obj),
            "sec",
            prog["section"],
        ]
        try:
            ta.run(cmd, "attach-failed")
        except RunnerFailure:
            self._drop_clsact(record)
            raise
        added = [f for f in self._filters(record) if f["options"]["prog"]["id"] not in before]
        prog["pref"], prog["handle"] = added[0]["pref"], added[0]["options"]["handle"]

    def _filters(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The bpf filters on the package's hook that hold a program."""
        shown = _json(["tc", "-j", "filter", "show", "dev", record["interface"], record["program"]["direction"]])
        return [f for f in shown if "prog" in f.get("options", {})]

    def _drop_clsact(self, record: dict[str, Any]) -> None:
        if record["program"].get("added_clsact"):
            ta.run(["tc", "qdisc", "del", "dev", record["interface"], "clsact"])

    def _attached_id(self, record: dict[str, Any]) -> int | None:
        prog = record["program"]
        if prog["type"] == "xdp":
            (link,) = _json(["ip", "-j", "link", "show", "dev", record["interface"]])
            prog_id = link.get("xdp", {}).get("prog", {}).get("id")
            return None if prog_id is None else int(prog_id)
        mine = (prog["pref"], prog["handle"])
        return next(
            (f["options"]["prog"]["id"] for f in self._filters(record) if (f["pref"], f["options"]["handle"]) == mine),
            None,
        )

    def kernel_programs(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        prog = record["program"]
        prog_id = self._attached_id(record)
        if prog_id is None:
            raise RunnerFailure("internal", f"{prog['name']} is no longer attached to {record['interface']}")
        kind = self.kinds[prog["type"]]
        target = record["interface"] if kind == "xdp" else f"{record['interface']}:{prog['direction']}"
        attach = {"kind": kind, "target": target}
        return [{"name": prog["name"], "id": prog_id, "type": prog["type"], "attach": attach, "link_id": None}]

    def detach(self, record: dict[str, Any]) -> None:
        prog, dev = record["program"], record["interface"]
        if self._attached_id(record) is None:
            return
        if prog["type"] == "xdp":
            ta.run(["ip", "link", "set", "dev", dev, prog["mode"], "off"])
            return
        pref, handle = str(prog["pref"]), prog["handle"]
        ta.run(["tc", "filter", "del", "dev", dev, prog["direction"], "pref", pref, "handle", handle, "bpf"])
        self._drop_clsact(record)


if __name__ == "__main__":
    start = ta.start_reply(
        HERE,
        vendor="the iproute2 maintainers",
        version=ta.tool_version(["ip", "-V"]),
        homepage="https://wiki.linuxfoundation.org/networking/iproute2",
        source="https://git.kernel.org/pub/scm/network/iproute2/iproute2.git",
    )
    no_versions = (
        "iproute2 has no upgrade or rollback: it keeps no package versions, and `ip link set ... xdp obj` can only"
        " replace the program with -force, loading the new object's maps afresh unless they are pinned by name"
    )
    Iproute2().serve(start, upgrade=no_versions, rollback=no_versions)
