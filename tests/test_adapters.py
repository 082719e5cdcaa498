"""The third-party tool adapters (runners/bpftool, runners/xdp-loader, runners/iproute2) driven over the runner
protocol on the host, each inside a network namespace made for the test (a veth pair; nothing outside it is
touched): install shows the kernel's real ids, status agrees across invocations, uninstall leaves nothing, and
what a tool cannot do answers `unsupported`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
ADAPTERS = ("bpftool", "xdp-loader", "iproute2")
TOOLS = {"bpftool": ["bpftool"], "xdp-loader": ["xdp-loader", "bpftool"], "iproute2": ["ip", "tc", "bpftool"]}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")


def _missing(adapter: str) -> str | None:
    gone = [t for t in TOOLS[adapter] + ["nsenter"] if shutil.which(t) is None]
    return f"{', '.join(gone)} not installed (./run installs it)" if gone else None


def _params() -> list[Any]:
    return [pytest.param(a, marks=pytest.mark.skipif(bool(_missing(a)), reason=_missing(a) or "")) for a in ADAPTERS]


def _sh(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _bpftool(*args: str) -> Any:
    done = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=False)
    return json.loads(done.stdout) if done.returncode == 0 else None


@pytest.fixture
def netns() -> Iterator[str]:
    """A network namespace of its own with a veth pair v0/v1 up; deleted (veths and XDP with it) afterwards."""
    name = f"bpfcert-adapters-{os.getpid()}"
    _sh("ip", "netns", "add", name)
    try:
        _sh("ip", "-n", name, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
        for dev in ("v0", "v1", "lo"):
            _sh("ip", "-n", name, "link", "set", dev, "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


class Adapter:
    """One adapter process in the namespace, spoken to in JSON lines."""

    def __init__(self, name: str, netns: str, state: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "BPFCERT_ADAPTER_STATE": str(state)}
        argv = ["nsenter", f"--net=/run/netns/{netns}", sys.executable, "runner.py"]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT / "runners" / name, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.start = self.ask("start", protocol_version=1)

    def ask(self, cmd: str, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"{cmd}: the adapter died (exit {self.proc.wait()})"
        return dict(json.loads(line))

    def close(self) -> None:
        assert self.ask("stop") == {"ok": True}
        assert self.proc.wait(timeout=10) == 0


@pytest.fixture
def adapters(netns: str, tmp_path: Path) -> Iterator[Any]:
    """start(name) → a running Adapter; all are stopped (and whatever they installed removed) afterwards."""
    started: list[Adapter] = []

    def start(name: str) -> Adapter:
        started.append(Adapter(name, netns, tmp_path / f"state-{name}"))
        return started[-1]

    yield start
    for adapter in started:
        if adapter.proc.poll() is None:
            for package in adapter.ask("list").get("packages", []):
                adapter.ask("uninstall", name=package["name"])
            adapter.close()


def _wait_gone(what: str, ident: int) -> bool:
    """True once the kernel has no prog/map `ident` (a map is freed after an RCU grace period)."""
    deadline = time.monotonic() + 5
    while _bpftool(what, "show", "id", str(ident)) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _xdp_prog_id(netns: str, dev: str) -> int | None:
    (link,) = json.loads(_sh("ip", "-n", netns, "-j", "link", "show", "dev", dev))
    prog_id = link.get("xdp", {}).get("prog", {}).get("id")
    return None if prog_id is None else int(prog_id)


@pytest.mark.parametrize("name", _params())
def test_claims_are_those_of_runner_json(name: str, adapters: Any) -> None:
    meta = json.loads((ROOT / "runners" / name / "runner.json").read_text())
    start = adapters(name).start
    assert start["ok"] and start["protocol_version"] == 1
    assert start["claims"] == meta["claims"] and start["runtime"]["name"] == meta["name"]
    assert start["runtime"]["version"] != "unknown"
    assert "runtime-upgrade" not in meta["claims"]["profiles"]
    assert {"upgrade:link-update", "upgrade:make-before-break", "rollback", "signature"}.isdisjoint(
        meta["claims"]["capabilities"]
    )


@pytest.mark.parametrize("name", _params())
def test_install_status_uninstall_show_the_kernel(name: str, netns: str, adapters: Any) -> None:
    first = adapters(name)
    installed = first.ask("install", package=str(EXAMPLES / "xdp-counter-v1"), options={"interface": "v0"})
    assert installed["ok"], installed
    state = installed["package"]
    assert (state["name"], state["version"]) == ("xdp-counter", "1.0.0")
    (prog,) = state["programs"]
    info = _bpftool("prog", "show", "id", str(prog["id"]))
    assert (info["name"], info["type"]) == ("count_packets", "xdp")
    assert prog["attach"] == {"kind": "xdp", "target": "v0"}
    assert _xdp_prog_id(netns, "v0") == prog["id"]
    assert {m["id"] for m in state["maps"]} == set(info["map_ids"])
    counters = next(m for m in state["maps"] if m["name"] == "proto_counters")
    assert _bpftool("map", "show", "id", str(counters["id"]))["name"] == "proto_counters"
    assert all(os.path.lexists(p) for p in state["pins"])
    assert (
        first.ask("install", package=str(EXAMPLES / "xdp-counter-v1"), options={"interface": "v0"})["error"]["code"]
        == "already-installed"
    )
    for cmd, args in (
        ("upgrade", {"package": str(EXAMPLES / "xdp-counter-v2")}),
        ("rollback", {"name": "xdp-counter"}),
    ):
        refused = first.ask(cmd, **args)
        assert refused["error"]["code"] == "unsupported" and name.split("-")[0] in refused["error"]["message"]
    first.close()

    second = adapters(name)  # a new invocation reads the state the first one left
    assert second.ask("list") == {"ok": True, "packages": [{"name": "xdp-counter", "version": "1.0.0"}]}
    assert second.ask("status", name="xdp-counter") == {"ok": True, "package": state}
    assert second.ask("uninstall", name="xdp-counter") == {"ok": True, "name": "xdp-counter"}
    assert second.ask("list") == {"ok": True, "packages": []}
    assert second.ask("status", name="xdp-counter")["error"]["code"] == "not-installed"
    assert _xdp_prog_id(netns, "v0") is None
    assert _wait_gone("prog", prog["id"])
    assert all(_wait_gone("map", m["id"]) for m in state["maps"])
    assert not [p for p in state["pins"] if os.path.lexists(p)]
    assert not Path(f"/sys/fs/bpf/bpfcert-{name}").exists()


@pytest.mark.parametrize("name", _params())
def test_what_the_tool_cannot_attach_is_unsupported(name: str, adapters: Any) -> None:
    adapter = adapters(name)
    refused = adapter.ask("install", package=str(EXAMPLES / "socket-filter"), options={"interface": "v0"})
    assert refused["error"]["code"] == "unsupported" and "socket_filter" in refused["error"]["message"]
    tunables = {"interface": "v0", "tunables": {"sample_rate": 2}}
    refused = adapter.ask("install", package=str(EXAMPLES / "xdp-counter-v1"), options=tunables)
    assert refused["error"]["code"] == "unsupported" and "tunables" in refused["error"]["message"]
    assert adapter.ask("install", package=str(EXAMPLES / "xdp-counter-v1"), options={})["error"]["code"] == (
        "bad-request"
    )
    assert adapter.ask("list") == {"ok": True, "packages": []}


def _clsact(netns: str) -> bool:
    return any(q["kind"] == "clsact" for q in json.loads(_sh("tc", "-n", netns, "-j", "qdisc", "show", "dev", "v0")))


@pytest.mark.parametrize("name", _params())
def test_failed_attach_leaves_nothing(name: str, netns: str, adapters: Any, tmp_path: Path) -> None:
    obj = EXAMPLES / "xdp-counter-v1" / "xdp_counter.bpf.o"
    # Someone else's program on v0 (`ip -n` pins its map on a bpffs of its own mount namespace, not ours).
    _sh("ip", "-n", netns, "link", "set", "dev", "v0", "xdp", "obj", str(obj), "sec", "xdp")
    before = _xdp_prog_id(netns, "v0")
    adapter = adapters(name)
    refused = adapter.ask("install", package=str(EXAMPLES / "xdp-counter-v1"), options={"interface": "v0"})
    assert refused["error"]["code"] == "attach-failed", refused
    assert adapter.ask("list") == {"ok": True, "packages": []}
    assert _xdp_prog_id(netns, "v0") == before
    leftovers = ["/sys/fs/bpf/proto_counters", "/sys/fs/bpf/xdp/globals/proto_counters", f"/sys/fs/bpf/bpfcert-{name}"]
    assert not [p for p in leftovers if os.path.lexists(p)]


def _repackaged(tmp_path: Path, example: str, **program: Any) -> Path:
    """A copy of an example package whose single program entry is changed by `program`."""
    pkg = tmp_path / example
    shutil.copytree(EXAMPLES / example, pkg)
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["programs"][0].update(program)
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    return pkg


@pytest.mark.skipif(bool(_missing("iproute2")), reason=_missing("iproute2") or "")
def test_iproute2_tc_verifier_rejection_leaves_nothing(netns: str, adapters: Any, tmp_path: Path) -> None:
    # The XDP object loaded as a tc (sched_cls) program reads packet data through a scalar: the verifier refuses.
    pkg = _repackaged(tmp_path, "xdp-counter-v1", type="sched_cls", attach={"direction": "ingress"})
    adapter = adapters("iproute2")
    refused = adapter.ask("install", package=str(pkg), options={"interface": "v0"})
    assert refused["error"]["code"] == "verifier-rejected", refused
    assert adapter.ask("list") == {"ok": True, "packages": []}
    assert not _clsact(netns)
    assert not os.path.lexists("/sys/fs/bpf/tc/globals/proto_counters")


TC_SOURCE = """
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 1); } seen
    SEC(".maps");
SEC("tc") int tc_count(struct __sk_buff *skb)
{ __u32 k = 0; __u64 *v = bpf_map_lookup_elem(&seen, &k); if (v) __sync_fetch_and_add(v, 1); return TC_ACT_OK; }
char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.skipif(bool(_missing("iproute2")) or shutil.which("clang") is None, reason="needs iproute2 and clang")
def test_iproute2_attaches_tc_and_removes_its_clsact(netns: str, adapters: Any, tmp_path: Path) -> None:
    src = tmp_path / "tc_count.c"
    src.write_text(TC_SOURCE)
    pkg = _repackaged(tmp_path, "xdp-counter-v1", name="tc_count", section="tc", type="sched_cls", attach={})
    obj = pkg / "xdp_counter.bpf.o"
    _sh("clang", "-O2", "-g", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(obj))
    adapter = adapters("iproute2")
    installed = adapter.ask("install", package=str(pkg), options={"interface": "v0"})
    assert installed["ok"], installed
    (prog,) = installed["package"]["programs"]
    assert prog["attach"] == {"kind": "tc", "target": "v0:ingress"}
    (tc_filter,) = [
        f for f in json.loads(_sh("tc", "-n", netns, "-j", "filter", "show", "dev", "v0", "ingress")) if "options" in f
    ]
    assert tc_filter["options"]["prog"]["id"] == prog["id"]
    assert adapter.ask("uninstall", name="xdp-counter")["ok"]
    assert json.loads(_sh("tc", "-n", netns, "-j", "filter", "show", "dev", "v0", "ingress")) == []
    assert not _clsact(netns)
    assert _wait_gone("prog", prog["id"])
