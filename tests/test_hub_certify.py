"""`bpfcert certify --hub URL` against a Debian docker-registry on loopback whose storage bpfcert is told of
(`--hub-storage DIR`: HUB-CLI-001 tampers with a blob there, then puts it back) or not (HUB-CLI-001 is a SKIP
saying how to run it); a --hub-storage that is not the registry's storage is unusable input or an ERROR row."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bpfcert.checks import hub as checks
from bpfcert.hub.server import BINARY, BLOBS, LocalRegistry
from bpfcert.results import Report, Result, Status

ROOT = Path(__file__).resolve().parent.parent
V1, V2 = str(ROOT / "examples/xdp-counter-v1"), str(ROOT / "examples/xdp-counter-v2")
pytestmark = pytest.mark.skipif(shutil.which(BINARY) is None, reason=f"{BINARY} not installed")


def certify(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[Result]]:
    """Run `bpfcert certify --output out ARGS` in `cwd`; the process and the HUB-CLI-001 rows of its stream."""
    proc = subprocess.run([sys.executable, "-m", "bpfcert", "certify", "--output", "out", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    stream = cwd / "out" / "results.jsonl"
    rows = Report.from_stream(stream).results if stream.exists() else []
    return proc, [r for r in rows if r.id == "HUB-CLI-001"]


def test_without_storage_the_tamper_check_is_skipped_with_its_reason(shared_registry: LocalRegistry,
                                                                      tmp_path: Path) -> None:
    proc, rows = certify(tmp_path, "--hub", shared_registry.url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r.status for r in rows] == [Status.SKIP]
    assert "--hub-storage DIR" in rows[0].message


def test_with_storage_the_tamper_check_runs_and_restores_the_blob(shared_registry: LocalRegistry,
                                                                  tmp_path: Path) -> None:
    proc, rows = certify(tmp_path, "--hub", shared_registry.url, "--hub-storage", str(shared_registry.storage))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r.status for r in rows] == [Status.PASS] and "digest mismatch" in rows[0].message
    blobs = list((shared_registry.storage / BLOBS / "sha256").glob("*/*/data"))
    assert blobs and all(hashlib.sha256(p.read_bytes()).hexdigest() == p.parent.name for p in blobs)


@pytest.mark.parametrize("args", [("--hub-storage", "{storage}"), ("--hub", "{url}", "--hub-storage", "{tmp}")],
                         ids=["without --hub", "not a registry's storage"])
def test_an_unusable_hub_storage_exits_2_before_running(shared_registry: LocalRegistry, tmp_path: Path,
                                                       args: tuple[str, ...]) -> None:
    given = [a.format(storage=shared_registry.storage, url=shared_registry.url, tmp=tmp_path) for a in args]
    proc, _ = certify(tmp_path, *given)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--hub-storage" in proc.stderr
    assert not (tmp_path / "out").exists()


def test_the_storage_of_another_registry_is_an_error_row(shared_registry: LocalRegistry, tmp_path: Path) -> None:
    """HUB-CLI-001 does not judge the client when the blob it pushed is not where --hub-storage says."""
    elsewhere = tmp_path / "other-storage"
    (elsewhere / BLOBS).mkdir(parents=True)
    hub = checks.HubUnderTest(shared_registry.url, (V1, V2), storage=elsewhere)
    result = checks.check_tampered_blob_refused(hub, tmp_path)
    assert result.status is Status.ERROR and str(elsewhere) in result.message
