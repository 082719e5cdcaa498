"""HUB-CLI-004 on every target: the runtime under test installs xdp-counter 1.0.0 from an OCI image layout the
harness exported (on the host, from a private registry on the host's loopback, to a path the guests see through
their read-only view of the host's files: guests get no network), reports the digest it pinned, and upgrades hot to
2.0.0 from the same layout, the pin moving with it. Without --runtime/--runner this module certifies the reference
runtime (it installs through bpfcert's own hub client), so the default test run shows HUB-CLI-004 on every target;
`bpfcert certify` runs it only with --profile hub-client. A big-endian kernel's runtime gets the bpfeb builds."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from bpfcert.checks.hub import HubUnderTest, check_pinned_install
from bpfcert.errors import RunnerProtocolError
from bpfcert.pytest_plugin import runner_under_test
from bpfcert.runners.client import RunnerClient
from bpfcert.runners.discovery import Runner
from bpfcert.runners.protocol import Failure, Options, PackageState, VersionChange
from bpfcert.targets.series import HOST
from bpfcert.targets.target import Target
from conformance.test_runtime import V1, V2, Record, judged, started

pytestmark = pytest.mark.hub_client  # `bpfcert certify` deselects these unless --profile hub-client

@pytest.fixture(scope="session")
def runner(request: pytest.FixtureRequest) -> Runner:
    """The runtime under test, else the reference runtime (overrides the plugin's fixture in this module)."""
    return runner_under_test(request.config, default="reference")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], tuple[Path, dict[str, str]]]:
    """examples directory -> an OCI image layout holding its xdp-counter 1.0.0 and 2.0.0 (tags -> digests),
    exported from a registry once per directory (a big-endian kernel's runtime installs the bpfeb builds)."""
    from bpfcert.hub import reference, transfer
    from bpfcert.hub.server import BINARY, LocalRegistry

    if shutil.which(BINARY) is None:
        pytest.skip(f"{BINARY} is not installed (Debian package docker-registry)")
    made: dict[Path, tuple[Path, dict[str, str]]] = {}

    def export(examples: Path) -> tuple[Path, dict[str, str]]:
        if examples not in made:
            work = tmp_path_factory.mktemp("hub-export")
            digests = {}
            with LocalRegistry(work / "registry") as registry:
                for tag, package in (("1.0.0", examples / V1), ("2.0.0", examples / V2)):
                    ref = reference.parse(f"{registry.url}/xdp-counter:{tag}")
                    transfer.push([str(package)], ref)
                    digests[tag] = transfer.copy(ref, reference.parse(f"oci-layout:{work}/layout:{tag}"))
            made[examples] = work / "layout", digests
        return made[examples]

    return export


def test_hub_cli_004_install_from_an_exported_layout_then_upgrade(
    runtime: RunnerClient | RunnerProtocolError, record: Record,
    exported: Callable[[Path], tuple[Path, dict[str, str]]], target: Target, examples: Path,
) -> None:
    client = started(runtime, record, "HUB-CLI-004", target)
    if "attach:xdp" not in client.runner.claims.capabilities:
        pytest.skip(f"{client.runner.name} does not claim attach:xdp, which xdp-counter needs")
    layout, digests = exported(examples)  # in the target kernel's byte order
    pin_root = f"/sys/fs/bpf/bpfcert-hub-{uuid.uuid4().hex[:12]}"  # emptied by the uninstall
    hub = HubUnderTest(f"oci-layout:{layout}", (str(examples / V1), str(examples / V2)), target=client.target.name)
    installed = client.install(f"oci-layout:{layout}:1.0.0", Options(interface="lo", pin_root=pin_root))
    try:
        if isinstance(installed, Failure):
            judged(record, [hub.result("HUB-CLI-004", False, f"install from the layout refused: {installed.code}: "
                                       f"{installed.message}")])
            return
        assert isinstance(installed, PackageState)
        judged(record, [check_pinned_install("HUB-CLI-004", installed.source or {}, digests["1.0.0"], hub)])
        upgraded = client.upgrade(f"oci-layout:{layout}:2.0.0")
        moved = upgraded.package.source if isinstance(upgraded, VersionChange) else None
        judged(record, [check_pinned_install("HUB-CLI-004", moved or {}, digests["2.0.0"], hub)])
    finally:
        client.uninstall("xdp-counter")
        if client.target.name == HOST:
            with contextlib.suppress(OSError):
                os.rmdir(pin_root)
