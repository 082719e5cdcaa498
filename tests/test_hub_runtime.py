"""HUB-CLI-004 on the host: the reference runtime installs xdp-counter from a real registry by tag (pulled and
verified by bpfcert's hub client), pins the digest it installed, and upgrades hot to a new tag, the pin moving with
it; and it installs from an OCI image layout (what the harness exports for guests, which have no network).

The runtime runs in the host's network namespace (the registry listens on the host's loopback) and attaches to
one end of a veth pair of the test's own, with its own bpffs and state directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bpfcert.checks.hub import HubUnderTest, check_pinned_install
from bpfcert.hub import reference, transfer
from bpfcert.hub.server import BINARY, LocalRegistry
from bpfcert.results import Status

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "runners" / "reference"
V1, V2 = str(REPO / "examples/xdp-counter-v1"), str(REPO / "examples/xdp-counter-v2")


def _usable() -> str | None:
    if os.geteuid() != 0:
        return "needs root (bpf, veth, bpffs mounts)"
    if shutil.which(BINARY) is None:
        return f"needs {BINARY}"
    return None


pytestmark = pytest.mark.skipif(_usable() is not None, reason=str(_usable()))


class Runtime:
    """`python -m refruntime` with a bpffs, a state directory and a veth end of this test's own."""

    def __init__(self, tmp: Path) -> None:
        self.bpffs, self.veth = tmp / "bpffs", f"hub{uuid.uuid4().hex[:8]}"
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "BPFCERT_REFERENCE_STATE": str(tmp / "state"),
                    "BPFCERT_REFERENCE_BPFFS": str(self.bpffs / "bpfcert")}

    def run(self, *args: str, check: bool = True) -> Any:
        proc = subprocess.run([sys.executable, "-m", "refruntime", *args], cwd=RUNNER, env=self.env,
                              capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stderr
            return json.loads(proc.stdout)
        return proc.returncode, proc.stderr


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    rt = Runtime(tmp_path)
    rt.bpffs.mkdir()
    subprocess.run(["mount", "-t", "bpf", "bpf", str(rt.bpffs)], check=True)
    subprocess.run(["ip", "link", "add", rt.veth, "type", "veth", "peer", "name", f"{rt.veth}p"], check=True)
    subprocess.run(["ip", "link", "set", rt.veth, "up"], check=True)
    try:
        yield rt
    finally:
        rt.run("uninstall", "xdp-counter", check=False)
        subprocess.run(["ip", "link", "del", rt.veth], check=False)
        subprocess.run(["umount", "-l", str(rt.bpffs)], check=False)



def test_install_by_tag_pins_the_digest_and_upgrade_moves_it(runtime: Runtime, registry: LocalRegistry) -> None:
    hub = HubUnderTest(registry.url, (V1, V2), target="host")
    first = transfer.push([V1], reference.parse(f"{registry.url}/xdp-counter:1.0.0"))
    second = transfer.push([V2], reference.parse(f"{registry.url}/xdp-counter:2.0.0"))
    installed = runtime.run("install", f"{registry.url}/xdp-counter:1.0.0", "--interface", runtime.veth)
    assert check_pinned_install("HUB-CLI-004", installed["package"]["source"], first, hub).status is Status.PASS
    assert installed["package"]["version"] == "1.0.0"
    upgraded = runtime.run("upgrade", f"{registry.url}/xdp-counter:2.0.0")
    assert upgraded["attachments"] == [{"program": "count_packets", "method": "link-update"}]  # hot
    status = runtime.run("status", "xdp-counter")["package"]
    assert status["version"] == "2.0.0"
    assert check_pinned_install("HUB-CLI-004", status["source"], second, hub).status is Status.PASS
    # the check fails on a runtime whose pin did not move with the upgrade
    assert check_pinned_install("HUB-CLI-004", installed["package"]["source"], second, hub).status is Status.FAIL
    rolled = runtime.run("rollback", "xdp-counter")["package"]
    assert rolled["source"]["digest"] == first


def test_install_from_an_exported_layout(runtime: Runtime, registry: LocalRegistry, tmp_path: Path) -> None:
    ref = reference.parse(f"{registry.url}/xdp-counter:1.0.0")
    digest = transfer.push([V1], ref)
    transfer.copy(ref, reference.parse(f"oci-layout:{tmp_path}/exported:1.0.0"))
    installed = runtime.run("install", f"oci-layout:{tmp_path}/exported:1.0.0", "--interface", runtime.veth)
    assert installed["package"]["source"] == {"reference": f"oci-layout:{tmp_path}/exported:1.0.0", "digest": digest}


def test_tampered_or_unsigned_reference_is_refused(runtime: Runtime, registry: LocalRegistry) -> None:
    from bpfcert.signing import generate_key

    ref = reference.parse(f"{registry.url}/xdp-counter:1.0.0")
    transfer.push([V1], ref)
    _, public = generate_key()
    runtime.env["BPFCERT_REFERENCE_TRUSTED_KEYS"] = public
    code, err = runtime.run("install", str(ref), "--interface", runtime.veth, check=False)
    assert code == 1 and err.startswith("refruntime: bad-signature: ") and "HUB-CLI-003" in err
    del runtime.env["BPFCERT_REFERENCE_TRUSTED_KEYS"]
    blob = registry.blob_path("sha256:" + json.loads(Path(V1, "bpfpkg.json").read_text())["artifacts"][0]["sha256"])
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    code, err = runtime.run("install", str(ref), "--interface", runtime.veth, check=False)
    assert code == 1 and err.startswith("refruntime: invalid-package: ") and "digest mismatch" in err
    assert runtime.run("list") == {"packages": []}


def test_the_default_run_certifies_the_reference_runtime_from_the_hub(tmp_path: Path) -> None:
    """conformance/test_runtime_hub.py without --runtime runs (the reference runtime), it does not skip."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "conformance/test_runtime_hub.py", "--target", "host", "-q",
                           "-rs", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "base")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "1 passed" in proc.stdout and "skipped" not in proc.stdout, proc.stdout
