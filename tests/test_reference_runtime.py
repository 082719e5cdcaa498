"""The reference runtime (runners/reference) on the host kernel: install, list, status, upgrade, rollback, uninstall,
refusals and crash consistency, through `python -m refruntime` and through the runner protocol (`serve`).

Each test gets its own network namespace (XDP on its private `lo`), its own bpffs mount as pin root and its own
state directory, so tests and colleagues' runs on the same host never meet. What the kernel holds is read
independently of the runtime, with bpftool and iproute2."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "runners" / "reference"
V1, V2 = REPO / "examples" / "xdp-counter-v1", REPO / "examples" / "xdp-counter-v2"
TRACING, SOCKET_FILTER = REPO / "examples" / "core-tracing", REPO / "examples" / "socket-filter"
MAP = "proto_counters"
UDP = 17


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpf, netns, bpffs mounts)"
    for tool in ("ip", "bpftool"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


pytestmark = pytest.mark.skipif(_usable() is not None, reason=str(_usable()))


class Host:
    """One isolated runtime: a netns, a bpffs pin root and a state directory; runs refruntime inside the netns."""

    def __init__(self, tmp: Path) -> None:
        self.netns = f"r2rt-{uuid.uuid4().hex[:8]}"
        self.bpffs = tmp / "bpffs"
        self.state = tmp / "state"
        self.pin_root = self.bpffs / "bpfcert"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "BPFCERT_REFERENCE_STATE": str(self.state),
            "BPFCERT_REFERENCE_BPFFS": str(self.pin_root),
        }

    def argv(self, *args: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, sys.executable, "-m", "refruntime", *args]

    def cli(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
        """Run a command; its JSON reply (exit 0) or (returncode, stderr)."""
        proc = subprocess.run(
            self.argv(*args), cwd=RUNNER, env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=60
        )
        if check:
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)
        return proc.returncode, proc.stderr

    def in_netns(self, *argv: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.netns, *argv], check=True, capture_output=True, text=True, timeout=30
        ).stdout

    def xdp_prog_on_lo(self) -> int | None:
        """The id of the XDP program attached to the namespace's lo, from iproute2."""
        out = json.loads(
            subprocess.run(
                ["ip", "-n", self.netns, "-j", "-d", "link", "show", "lo"], check=True, capture_output=True, text=True
            ).stdout
        )
        xdp = out[0].get("xdp")
        return int(xdp["prog"]["id"]) if xdp and "prog" in xdp else None

    def send_udp(self, count: int) -> None:
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range({count}): s.sendto(b'x' * 50, ('127.0.0.1', 9))"
        )
        self.in_netns(sys.executable, "-c", code)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path)
    h.bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(h.bpffs)], check=True)
    subprocess.run(["ip", "netns", "add", h.netns], check=True)
    subprocess.run(["ip", "-n", h.netns, "link", "set", "lo", "up"], check=True)
    try:
        yield h
    finally:
        subprocess.run(["ip", "netns", "del", h.netns], check=False)
        subprocess.run(["umount", "-l", str(h.bpffs)], check=False)


def _bpftool(*args: str) -> Any:
    proc = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=30)
    return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() else None


def _exists(kind: str, ident: int) -> bool:
    return _bpftool(kind, "show", "id", str(ident)) is not None


def _kernel_ids(state: dict[str, Any]) -> list[tuple[str, int]]:
    ids = [("prog", p["id"]) for p in state["programs"]] + [("map", m["id"]) for m in state["maps"]]
    return ids + [("link", p["link_id"]) for p in state["programs"] if p["link_id"] is not None]


def _gone(ids: list[tuple[str, int]], timeout: float = 5.0) -> list[tuple[str, int]]:
    """The ids still in the kernel after polling up to `timeout` (maps are freed after an RCU grace period)."""
    deadline = time.monotonic() + timeout
    left = ids
    while left and time.monotonic() < deadline:
        left = [(k, i) for k, i in left if _exists(k, i)]
        if left:
            time.sleep(0.05)
    return left


def _counter(pin: str, key: int) -> tuple[int, int] | None:
    """(packets, bytes) under `key` of the pinned counter map, read with bpftool."""
    out = _bpftool("map", "lookup", "pinned", pin, "key", *[str(b) for b in struct.pack("<I", key)])
    if out is None:
        return None
    packets, nbytes = struct.unpack("<QQ", bytes(int(b, 16) for b in out["value"]))
    return packets, nbytes


def _assert_no_residue(h: Host, state: dict[str, Any]) -> None:
    assert _gone(_kernel_ids(state)) == []
    assert h.xdp_prog_on_lo() is None
    assert not any(h.pin_root.rglob("*")) if h.pin_root.exists() else True
    assert h.cli("list") == {"packages": []}
    assert not any((h.state / "packages").glob("*"))


def _map(state: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in state["maps"] if m["name"] == name)


def test_install_list_status_uninstall_leave_zero_residue(host: Host) -> None:
    state = host.cli("install", str(V1), "--interface", "lo")["package"]
    assert (state["name"], state["version"]) == ("xdp-counter", "1.0.0")
    [prog] = state["programs"]
    assert prog["type"] == "xdp" and prog["attach"] == {"kind": "xdp", "target": "lo"}
    assert host.xdp_prog_on_lo() == prog["id"]
    link = _bpftool("link", "show", "id", str(prog["link_id"]))
    assert link["prog_id"] == prog["id"] and link["type"] == "xdp"
    counters = _map(state, MAP)
    assert _bpftool("map", "show", "id", str(counters["id"]))["type"] == "hash"
    assert set(state["pins"]) == {str(p) for p in host.pin_root.rglob("*") if p.is_file()}
    assert host.cli("list") == {"packages": [{"name": "xdp-counter", "version": "1.0.0"}]}
    assert host.cli("status", "xdp-counter")["package"] == state
    host.send_udp(20)
    packets, nbytes = _counter(counters["pin"], UDP) or (0, 0)
    assert packets >= 20 and nbytes == 0  # v1 counts packets only
    assert host.cli("uninstall", "xdp-counter") == {"name": "xdp-counter"}
    _assert_no_residue(host, state)
    assert host.cli("status", "xdp-counter", check=False) == (
        1,
        "refruntime: not-installed: xdp-counter is not installed\n",
    )


def test_tracepoint_attaches_and_upgrades_make_before_break(host: Host) -> None:
    state = host.cli("install", str(TRACING))["package"]
    [prog] = state["programs"]
    assert prog["attach"] == {"kind": "tracepoint", "target": "sched:sched_process_exec"}
    link = _bpftool("link", "show", "id", str(prog["link_id"]))
    assert link["prog_id"] == prog["id"] and link["type"] in ("perf_event", "tracing")
    up = host.cli("upgrade", str(TRACING))  # perf_event links cannot swap programs: a new link, then the old goes
    assert up["attachments"] == [{"program": "trace_exec", "method": "make-before-break"}]
    new = up["package"]["programs"][0]
    assert new["link_id"] != prog["link_id"] and _exists("link", new["link_id"])
    assert _gone([("link", prog["link_id"]), ("prog", prog["id"])]) == []
    host.cli("uninstall", "core-tracing")
    _assert_no_residue(host, up["package"])


def test_socket_filter_is_loaded_and_pinned_for_its_user(host: Host) -> None:
    state = host.cli("install", str(SOCKET_FILTER))["package"]
    [prog] = state["programs"]
    assert prog["type"] == "socket_filter" and prog["attach"] is None and prog["link_id"] is None
    pin = host.pin_root / "socket-filter" / "progs" / "ipv4_tcp_only"
    assert str(pin) in state["pins"] and _bpftool("prog", "show", "pinned", str(pin))["id"] == prog["id"]
    host.cli("uninstall", "socket-filter")
    _assert_no_residue(host, state)


def test_signed_package_installs(host: Host, tmp_path: Path) -> None:
    from bpfcert.signing import generate_key, sign_manifest

    pkg = _copy(V1, tmp_path / "signed")
    pem, _ = generate_key()
    (pkg / "bpfpkg.json").write_text(json.dumps(sign_manifest(json.loads((pkg / "bpfpkg.json").read_text()), pem)))
    assert host.cli("install", str(pkg), "--interface", "lo")["package"]["version"] == "1.0.0"


def test_tunables_are_set_in_rodata_before_load(host: Host) -> None:
    state = host.cli("install", str(V1), "--interface", "lo", "--tunable", "sample_rate=1000000000")["package"]
    rodata = next(m for m in state["maps"] if m["name"].endswith(".rodata"))
    dump = _bpftool("map", "lookup", "pinned", rodata["pin"], "key", "0", "0", "0", "0")
    assert struct.unpack("<I", bytes(int(b, 16) for b in dump["value"][:4]))[0] == 1_000_000_000
    host.send_udp(20)
    packets = (_counter(_map(state, MAP)["pin"], UDP) or (0, 0))[0]
    assert packets < 5  # one in a billion is counted
    code, err = host.cli("upgrade", str(V2), "--tunable", "no_such=1", check=False)
    assert code == 1 and "bad-request" in err and "no_such" in err


def test_upgrade_keeps_preserved_map_then_rollback(host: Host) -> None:
    v1 = host.cli("install", str(V1), "--interface", "lo")["package"]
    pin = _map(v1, MAP)["pin"]
    value = struct.pack("<QQ", 1234, 5678)
    subprocess.run(
        ["bpftool", "map", "update", "pinned", pin, "key", *map(str, struct.pack("<I", 99)), "value", *map(str, value)],
        check=True,
    )
    up = host.cli("upgrade", str(V2))
    v2 = up["package"]
    assert (up["from_version"], up["to_version"], v2["version"]) == ("1.0.0", "2.0.0", "2.0.0")
    assert up["attachments"] == [{"program": "count_packets", "method": "link-update"}]
    assert v2["programs"][0]["link_id"] == v1["programs"][0]["link_id"]  # the same link, swapped in place
    assert v2["programs"][0]["id"] != v1["programs"][0]["id"]
    assert host.xdp_prog_on_lo() == v2["programs"][0]["id"]
    assert _map(v2, MAP)["id"] == _map(v1, MAP)["id"] and _counter(pin, 99) == (1234, 5678)
    assert _gone([("prog", v1["programs"][0]["id"])]) == []
    host.send_udp(10)
    assert (_counter(pin, UDP) or (0, 0))[1] > 0  # v2 counts bytes
    assert host.cli("list") == {"packages": [{"name": "xdp-counter", "version": "2.0.0"}]}

    back = host.cli("rollback", "xdp-counter")
    assert (back["from_version"], back["to_version"], back["package"]["version"]) == ("2.0.0", "1.0.0", "1.0.0")
    assert back["attachments"] == [{"program": "count_packets", "method": "link-update"}]
    assert _map(back["package"], MAP)["id"] == _map(v1, MAP)["id"] and _counter(pin, 99) == (1234, 5678)
    before = _counter(pin, UDP) or (0, 0)
    host.send_udp(10)
    after = _counter(pin, UDP) or (0, 0)
    assert after[0] >= before[0] + 10 and after[1] == before[1]  # v1 again: packets only
    host.cli("uninstall", "xdp-counter")
    _assert_no_residue(host, back["package"])


def test_rollback_without_previous_version(host: Host) -> None:
    host.cli("install", str(V1), "--interface", "lo")
    code, err = host.cli("rollback", "xdp-counter", check=False)
    assert code == 1 and "no-previous-version" in err


def test_install_twice_is_refused_and_changes_nothing(host: Host) -> None:
    first = host.cli("install", str(V1), "--interface", "lo")["package"]
    code, err = host.cli("install", str(V1), "--interface", "lo", check=False)
    assert code == 1 and "already-installed" in err
    assert host.cli("status", "xdp-counter")["package"] == first


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def _rewrite(pkg: Path, **changes: Any) -> dict[str, Any]:
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest.update(changes)
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    return manifest


def _rejected_program(tmp: Path) -> Path:
    """xdp-counter v1 with the map lookup's NULL check removed: static checks pass, the verifier refuses."""
    pkg = _copy(V1, tmp / "unchecked")
    source = (pkg / "src" / "xdp_counter.c").read_text()
    source = source.replace("\tif (!value) {", "\tif (0) {")
    (pkg / "src" / "xdp_counter.c").write_text(source)
    import importlib.util

    spec = importlib.util.spec_from_file_location("examples_build", REPO / "examples" / "build.py")
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    build.compile_object(pkg, pkg / "src" / "xdp_counter.c", pkg / "xdp_counter.bpf.o")
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = hashlib.sha256((pkg / "xdp_counter.bpf.o").read_bytes()).hexdigest()
    _rewrite(pkg, artifacts=manifest["artifacts"])
    return pkg


def _bad_signature(tmp: Path) -> Path:
    from bpfcert.signing import generate_key, sign_manifest

    pkg = _copy(V1, tmp / "badsig")
    pem, _ = generate_key()
    signed = sign_manifest(json.loads((pkg / "bpfpkg.json").read_text()), pem)
    signed["summary"] = "changed after signing"
    (pkg / "bpfpkg.json").write_text(json.dumps(signed))
    return pkg


def _bad_digest(tmp: Path) -> Path:
    pkg = _copy(V1, tmp / "baddigest")
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    _rewrite(pkg, artifacts=manifest["artifacts"])
    return pkg


def _future_kernel(tmp: Path) -> Path:
    pkg = _copy(V1, tmp / "future")
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    _rewrite(pkg, requires={**manifest["requires"], "kernel": ">=99.0"})
    return pkg


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (_bad_digest, "invalid-package", "PKG-ART"),
        (_bad_signature, "bad-signature", "does not match"),
        (_future_kernel, "requirements-unmet", "outside requires.kernel '>=99.0'"),
        (_rejected_program, "verifier-rejected", "invalid mem access"),
    ],
)
def test_bad_package_refused_with_its_code_and_no_partial_state(
    host: Host, tmp_path: Path, make: Any, code: str, words: str
) -> None:
    pkg = make(tmp_path)
    returncode, err = host.cli("install", str(pkg), "--interface", "lo", check=False)
    assert returncode == 1 and err.startswith(f"refruntime: {code}: ") and words in err, err
    assert len(err.strip().splitlines()) == 1
    served = Served(host)  # a long-lived runtime must not keep what it made either
    try:
        reply = served.ask({"cmd": "install", "package": str(pkg), "options": {"interface": "lo"}})
        assert reply["error"]["code"] == code
        assert served.bpf_fds() == []
    finally:
        served.close()
    assert host.xdp_prog_on_lo() is None
    _assert_no_residue(host, {"programs": [], "maps": []})


def test_verified_content_is_not_checked_again_but_a_changed_byte_is(host: Host, tmp_path: Path) -> None:
    """The runtime remembers the digest of content that passed its checks: the same bytes install without the static
    checks (a check that ran would fail here), an artifact changed behind the manifest's back is checked and refused."""
    pkg = _copy(V1, tmp_path / "pkg")
    host.cli("install", str(pkg), "--interface", "lo")
    host.cli("uninstall", "xdp-counter")
    fails_every_check = tmp_path / "sitecustomize.py"  # imported by the runtime at start: the static checks fail
    fails_every_check.write_text(
        "import bpfcert.checks as c\n"
        "def check_package(pkg, *a): raise SystemExit('the static checks ran')\n"
        "c.check_package = check_package\n"
    )
    host.cli("install", str(pkg), "--interface", "lo", env={"PYTHONPATH": f"{tmp_path}:{REPO}"})
    host.cli("uninstall", "xdp-counter")
    artifact = pkg / "xdp_counter.bpf.o"
    data = bytearray(artifact.read_bytes())
    data[-1] ^= 1
    artifact.write_bytes(bytes(data))
    guarded = {"PYTHONPATH": f"{tmp_path}:{REPO}"}  # the guard is live: new content does meet it
    returncode, err = host.cli("install", str(pkg), "--interface", "lo", env=guarded, check=False)
    assert returncode != 0 and "the static checks ran" in err, err
    returncode, err = host.cli("install", str(pkg), "--interface", "lo", check=False)
    assert returncode == 1 and "invalid-package" in err and "PKG-ART" in err, err


def test_refused_content_is_refused_again_without_the_reader(host: Host, tmp_path: Path) -> None:
    """Content refused as invalid is remembered by its digest (RT-MDL-001 offers the same bad package dozens of
    times): the same bytes are refused with the same one line without bpfcert's package reader (an import of it
    fails here). A bad signature is judged each time (trust is not the content's alone), and so is new content."""
    bad, badsig = _bad_digest(tmp_path), _bad_signature(tmp_path)
    returncode, first = host.cli("install", str(bad), "--interface", "lo", check=False)
    assert returncode == 1 and first.startswith("refruntime: invalid-package: "), first
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'bpfcert.package':\n"
        "            raise ImportError(f'{name} was imported')\n"
        "sys.meta_path.insert(0, Refuse())\n"
    )
    guarded = {"PYTHONPATH": f"{guard}:{REPO}"}
    assert host.cli("install", str(bad), "--interface", "lo", env=guarded, check=False) == (1, first)
    assert host.cli("install", str(badsig), "--interface", "lo", check=False)[0] == 1
    returncode, err = host.cli("install", str(badsig), "--interface", "lo", env=guarded, check=False)
    assert returncode != 0 and "bpfcert.package was imported" in err, err
    manifest = json.loads((bad / "bpfpkg.json").read_text())
    _rewrite(bad, summary=manifest.get("summary", "") + " (changed)")  # new content, still a wrong digest
    returncode, err = host.cli("install", str(bad), "--interface", "lo", env=guarded, check=False)
    assert returncode != 0 and "bpfcert.package was imported" in err, err


def test_a_manifest_named_by_path_does_not_speak_for_the_directory_around_it(host: Host, tmp_path: Path) -> None:
    """The verdict on a manifest named by path is not remembered for its directory, which may hold other manifests:
    a directory whose stray bad.json was refused still installs through its own bpfpkg.json, and one whose
    bpfpkg.json is bad is refused although a valid manifest beside it passed with the same content."""
    pkg = _copy(V1, tmp_path / "pkg")
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    bad = {**manifest, "artifacts": [{**manifest["artifacts"][0], "sha256": "0" * 64}, *manifest["artifacts"][1:]]}
    (pkg / "bad.json").write_text(json.dumps(bad))
    returncode, err = host.cli("install", str(pkg / "bad.json"), "--interface", "lo", check=False)
    assert returncode == 1 and "invalid-package" in err and "PKG-ART" in err, err
    assert host.cli("install", str(pkg), "--interface", "lo")["package"]["version"] == "1.0.0"
    host.cli("uninstall", "xdp-counter")
    (pkg / "bad.json").unlink()
    (pkg / "good.json").write_text(json.dumps(manifest))
    (pkg / "bpfpkg.json").write_text(json.dumps(bad))
    assert host.cli("install", str(pkg / "good.json"), "--interface", "lo")["package"]["version"] == "1.0.0"
    host.cli("uninstall", "xdp-counter")
    returncode, err = host.cli("install", str(pkg), "--interface", "lo", check=False)
    assert returncode == 1 and "invalid-package" in err and "PKG-ART" in err, err


def test_a_restarted_runtime_installs_known_content_without_the_reader_or_the_probes(
    host: Host, tmp_path: Path
) -> None:
    """Each install by hand is a new process, as after every kill in RT-CRS-001 (a start costs seconds in a TCG
    guest): content verified before, on a kernel that met its `requires`, installs without bpfcert's package
    reader, ELF reader or probes being imported (an import of one fails here). A package whose manifest differs
    (a requires.kernel this kernel does not meet) is judged again and refused, and judged again on the next try."""
    pkg = _copy(V1, tmp_path / "pkg")
    host.cli("install", str(pkg), "--interface", "lo")
    host.cli("uninstall", "xdp-counter")
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class Refuse:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name in ('bpfcert.package', 'bpfcert.elf', 'refruntime.requirements', 'bpfcert.targets.probes'):\n"
        "            raise ImportError(f'{name} was imported')\n"
        "sys.meta_path.insert(0, Refuse())\n"
    )
    guarded = {"PYTHONPATH": f"{tmp_path}:{REPO}"}
    state = host.cli("install", str(pkg), "--interface", "lo", "--tunable", "sample_rate=7", env=guarded)["package"]
    assert state["version"] == "1.0.0" and host.xdp_prog_on_lo() is not None
    host.cli("uninstall", "xdp-counter", env=guarded)
    future = str(_future_kernel(tmp_path))
    returncode, err = host.cli("install", future, "--interface", "lo", env=guarded, check=False)
    assert returncode != 0 and "was imported" in err, err  # the guard is live: new content does meet it
    returncode, err = host.cli("install", future, "--interface", "lo", check=False)
    assert returncode == 1 and "requirements-unmet" in err, err
    returncode, err = host.cli("install", future, "--interface", "lo", env=guarded, check=False)
    assert returncode != 0 and "refruntime.requirements was imported" in err, err  # an unmet answer is not kept


def test_the_runner_starts_without_typing_dataclasses_socket_or_tempfile() -> None:
    """What `serve` imports before answering: none of these (each a tenth of a second or more in a TCG guest)."""
    modules = ("typing", "dataclasses", "inspect", "socket", "signal", "tempfile")
    code = f"import refruntime.__main__, sys; print([m for m in {modules} if m in sys.modules])"
    proc = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=RUNNER, env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=60, check=True,
    )
    assert proc.stdout.strip() == "[]", proc.stdout


def test_unknown_interface_is_attach_failed(host: Host) -> None:
    code, err = host.cli("install", str(V1), "--interface", "nosuchif0", check=False)
    assert code == 1 and "attach-failed" in err and "nosuchif0" in err
    _assert_no_residue(host, {"programs": [], "maps": []})


class Served:
    """`python -m refruntime serve` driven line by line."""

    def __init__(self, h: Host) -> None:
        self.proc = subprocess.Popen(
            h.argv("serve"),
            cwd=RUNNER,
            env=h.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        reply: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return reply

    def bpf_fds(self) -> list[str]:
        """The BPF objects (programs, maps, links) the runtime process holds open."""
        fds = Path(f"/proc/{self.proc.pid}/fd")
        targets = [os.readlink(fd) for fd in fds.iterdir() if fd.name.isdigit()]
        return [t for t in targets if t.startswith("anon_inode:bpf")]

    def close(self) -> int:
        with contextlib.suppress(BrokenPipeError):
            assert self.ask({"cmd": "stop"}) == {"ok": True}
        return self.proc.wait(timeout=30)


def test_protocol_lifecycle(host: Host) -> None:
    served = Served(host)
    try:
        assert served.ask({"cmd": "start", "protocol_version": 2})["error"]["code"] == "unsupported"
        start = served.ask({"cmd": "start", "protocol_version": 1})
        runner = json.loads((RUNNER / "runner.json").read_text())
        assert start["ok"] and start["claims"] == runner["claims"] and start["runtime"]["name"] == "bpfcert-reference"
        installed = served.ask({"cmd": "install", "package": str(V1), "options": {"interface": "lo"}})
        assert installed["ok"], installed
        state = installed["package"]
        assert served.ask({"cmd": "list"}) == {"ok": True, "packages": [{"name": "xdp-counter", "version": "1.0.0"}]}
        assert served.ask({"cmd": "status", "name": "xdp-counter"}) == {"ok": True, "package": state}
        assert (
            served.ask({"cmd": "install", "package": str(V1), "options": {"interface": "lo"}})["error"]["code"]
            == "already-installed"
        )
        up = served.ask({"cmd": "upgrade", "package": str(V2), "options": {}})
        assert up["ok"] and up["attachments"] == [{"program": "count_packets", "method": "link-update"}]
        assert served.ask({"cmd": "rollback", "name": "xdp-counter"})["to_version"] == "1.0.0"
        assert served.ask({"cmd": "status"})["error"]["code"] == "bad-request"
        assert served.ask({"cmd": "exec", "program_hex": "", "memory_hex": ""})["error"]["code"] == "unsupported"
        assert served.ask({"cmd": "uninstall", "name": "xdp-counter"}) == {"ok": True, "name": "xdp-counter"}
        assert served.ask({"cmd": "uninstall", "name": "xdp-counter"})["error"]["code"] == "not-installed"
        assert served.bpf_fds() == []
    finally:
        assert served.close() == 0
    _assert_no_residue(host, state)


def test_another_state_sharing_the_pin_root_leaves_ours_alone(host: Host, tmp_path: Path) -> None:
    state = host.cli("install", str(V1), "--interface", "lo")["package"]
    other = {"BPFCERT_REFERENCE_STATE": str(tmp_path / "other-state")}
    assert host.cli("list", env=other) == {"packages": []}  # its reconcile ran over the same pin root
    code, err = host.cli("install", str(V1), "--interface", "lo", env=other, check=False)
    assert code == 1 and "already-installed" in err and "not this runtime's" in err
    assert host.cli("status", "xdp-counter")["package"] == state


def test_busy_while_another_operation_holds_the_lock(host: Host) -> None:
    host.cli("list")  # creates the state directory
    fd = os.open(host.state / "lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, err = host.cli("list", check=False)
        assert code == 1 and "busy" in err
    finally:
        os.close(fd)
    assert host.cli("list") == {"packages": []}


def _crash(h: Host, step: str, *args: str) -> None:
    proc = subprocess.run(
        h.argv(*args),
        cwd=RUNNER,
        env={**h.env, "BPFCERT_REFERENCE_CRASH_AT": step},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr


def _consistent(h: Host) -> list[dict[str, Any]]:
    """After a restart: every listed package's status matches the kernel, and no pin lies outside them."""
    states = [h.cli("status", p["name"])["package"] for p in h.cli("list")["packages"]]
    pins = {str(p) for p in h.pin_root.rglob("*") if p.is_file()}
    assert pins == {pin for s in states for pin in s["pins"]}
    for s in states:
        assert all(_exists(kind, ident) for kind, ident in _kernel_ids(s))
    return states


def test_sigkill_at_each_step_then_restart_reconciles(host: Host) -> None:
    _crash(host, "install:staged", "install", str(V1), "--interface", "lo")
    assert _consistent(host) == [] and host.xdp_prog_on_lo() is None
    _crash(host, "install:committed", "install", str(V1), "--interface", "lo")
    [v1] = _consistent(host)
    assert v1["version"] == "1.0.0" and host.xdp_prog_on_lo() == v1["programs"][0]["id"]

    _crash(host, "upgrade:swapped", "upgrade", str(V2))  # the link already runs v2: reconcile swaps it back
    [state] = _consistent(host)
    assert state == v1 and host.xdp_prog_on_lo() == v1["programs"][0]["id"]
    _crash(host, "upgrade:committed", "upgrade", str(V2))
    [v2] = _consistent(host)
    assert v2["version"] == "2.0.0" and host.xdp_prog_on_lo() == v2["programs"][0]["id"]
    assert _map(v2, MAP)["id"] == _map(v1, MAP)["id"]

    _crash(host, "uninstall:committed", "uninstall", "xdp-counter")
    assert _consistent(host) == []
    _assert_no_residue(host, v2)


def test_sigkill_at_random_moments_of_install(host: Host) -> None:
    """Real SIGKILLs at spread-out delays into an install: whatever was reached, a restart tells the truth."""
    delays = [0.05, 0.15, 0.25, 0.35, 0.45, 0.6]
    for delay in delays:
        proc = subprocess.Popen(
            host.argv("install", str(V1), "--interface", "lo"),
            cwd=RUNNER,
            env=host.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        states = _consistent(host)
        attached = host.xdp_prog_on_lo()
        assert attached == (states[0]["programs"][0]["id"] if states else None)
        if states:
            host.cli("uninstall", "xdp-counter")
    _assert_no_residue(host, {"programs": [], "maps": []})
