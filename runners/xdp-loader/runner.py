"""xdp-loader (Debian xdp-tools, on libxdp) as a runtime: `xdp-loader load` attaches one XDP program (through
libxdp's dispatcher where the kernel allows it, else directly) with its maps pinned under the package's folder,
`xdp-loader status` gives the attached program's id, `xdp-loader unload -i ID` detaches it. XDP only; no
upgrade or rollback; no digest, signature or `requires` check."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from bpfcert.runners.serve import RunnerFailure

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import tool_adapter as ta  # noqa: E402

MODES = {"native": "unspecified", "generic": "skb", "offload": "hw"}  # `unspecified`: the kernel picks


class XdpLoader(ta.ToolAdapter):
    tool = "xdp-loader"
    kinds: ClassVar[dict[str, str]] = {"xdp": "xdp"}
    why_not = "xdp-loader loads XDP programs only"

    def map_pin_dir(self, record: dict[str, Any]) -> Path:
        return self.pin_root(record) / str(record["name"])  # xdp-loader load -p

    def load_and_attach(self, record: dict[str, Any], program: dict[str, Any], obj: Path) -> None:
        pins = self.map_pin_dir(record)
        pins.mkdir(parents=True, exist_ok=True)
        record["pins"].append(str(pins))
        mode = ta.xdp_mode(program, MODES)
        cmd = ["xdp-loader", "load", "-m", mode, "-p", str(pins), "-n", program["name"], record["interface"], str(obj)]
        ta.run(cmd, "attach-failed")
        prog_id = self._attached_id(record)
        if prog_id is None:
            raise RunnerFailure("attach-failed", f"xdp-loader status shows no {program['name']} after load")
        record["program"]["id"] = prog_id

    def _attached_id(self, record: dict[str, Any]) -> int | None:
        """The id `xdp-loader status IFACE` shows for the package's program (the program's own line, not its
        dispatcher's)."""
        name = record["program"]["name"][: ta.BPF_OBJ_NAME_LEN - 1]
        for line in ta.run(["xdp-loader", "status", record["interface"]]).splitlines():
            words = line.split()
            if name in words:
                ids = [w for w in words[words.index(name) + 1 :] if w.isdigit()]
                if ids:
                    return int(ids[0])
        return None

    def kernel_programs(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        prog = record["program"]
        if self._attached_id(record) != prog["id"]:
            raise RunnerFailure("internal", f"xdp-loader status no longer shows program {prog['id']}")
        attach = {"kind": "xdp", "target": record["interface"]}
        return [{"name": prog["name"], "id": prog["id"], "type": prog["type"], "attach": attach, "link_id": None}]

    def detach(self, record: dict[str, Any]) -> None:
        if self._attached_id(record) == record["program"]["id"]:
            ta.run(["xdp-loader", "unload", record["interface"], "-i", str(record["program"]["id"])])


if __name__ == "__main__":
    start = ta.start_reply(
        HERE,
        vendor="the xdp-project",
        version=ta.tool_version(["xdp-loader", "load", "--version"]),
        homepage="https://github.com/xdp-project/xdp-tools",
        source="https://github.com/xdp-project/xdp-tools",
    )
    no_versions = (
        "xdp-loader has no upgrade or rollback: it keeps no package versions, and a new version can only be loaded"
        " beside the old one (both run) or after unloading it (a moment without the package's program)"
    )
    XdpLoader().serve(start, upgrade=no_versions, rollback=no_versions)
