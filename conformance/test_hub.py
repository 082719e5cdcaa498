"""The hub suite (profiles hub and hub-client) against a live registry: the one `--hub oci://HOST:PORT` names
(`bpfcert certify --hub URL`; with `--hub-storage DIR`, its storage, where the tampering check may edit a blob),
else a private Debian docker-registry started on loopback for the session, whose storage that check edits. Every
check's Result is recorded; a MUST failure fails its test, a SHOULD failure is a warning in the report
(HUB-LST-002, HUB-DEL-001)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from bpfcert import bundled
from bpfcert.checks import hub as checks
from bpfcert.hub.server import BINARY, LocalRegistry
from bpfcert.results import Result, Status
from bpfcert.signing import generate_key

Record = Callable[[Result | Iterable[Result]], list[Result]]


@pytest.fixture(scope="module")
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[checks.HubUnderTest]:
    examples = bundled.directory("examples")
    packages = (str(examples / "xdp-counter-v1"), str(examples / "xdp-counter-v2"))
    url = request.config.getoption("--hub", None)
    if url:
        storage = request.config.getoption("--hub-storage", None)
        yield checks.HubUnderTest(url, packages, storage=Path(storage) if storage else None)
        return
    if shutil.which(BINARY) is None:
        pytest.skip(f"{BINARY} is not installed (Debian package docker-registry) and no --hub was given")
    registry = LocalRegistry(tmp_path_factory.mktemp("registry"))
    registry.start()
    request.addfinalizer(registry.stop)
    yield checks.HubUnderTest(registry.url, packages, storage=registry.storage)


@pytest.fixture(scope="module")
def signing_key() -> tuple[bytes, str]:
    return generate_key()


def judged(record: Record, result: Result) -> None:
    """Record the row; a MUST row that is not PASS (or SKIP) fails the test, with its message."""
    record(result)
    if result.level == "MUST":
        assert result.status in (Status.PASS, Status.SKIP), f"{result.id}: {result.message}"
    else:
        assert result.status is not Status.ERROR, f"{result.id}: {result.message}"


def test_round_trip_is_byte_identical(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-PUB-001"""
    judged(record, checks.check_round_trip(hub))


def test_digest_pull_is_immutable(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-DIG-001"""
    judged(record, checks.check_digest_immutable(hub))


def test_annotations_are_served(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-ANN-001"""
    judged(record, checks.check_annotations(hub))


def test_tags_list_every_version(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-LST-001"""
    judged(record, checks.check_tags_listed(hub))


def test_listings_paginate(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-LST-002 (SHOULD)"""
    judged(record, checks.check_pagination(hub))


def test_signature_artifact_is_found(hub: checks.HubUnderTest, record: Record,
                                     signing_key: tuple[bytes, str]) -> None:
    """HUB-SIG-001"""
    judged(record, checks.check_signature_found(hub, *signing_key))


def test_moving_a_tag_keeps_the_others(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-TAG-001"""
    judged(record, checks.check_tag_moves(hub))


def test_deleting_a_tag_keeps_the_others(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-DEL-001 (SHOULD): distribution 2.8 refuses DELETE by tag (400), reported as a warning."""
    judged(record, checks.check_tag_delete(hub))


def test_published_format(hub: checks.HubUnderTest, record: Record) -> None:
    """HUB-FMT-001: what bpfcert push publishes, in both formats, as served back."""
    from bpfcert.hub import artifact, transfer
    from bpfcert.hub.registry import Registry

    for fmt in artifact.FORMATS:
        ref = hub.ref(f"format-{fmt}", "1.0.0")
        transfer.push([hub.packages[0]], ref, fmt)
        registry = Registry(ref)
        try:
            document = transfer.document(registry.manifest(ref), str(ref))
        finally:
            registry.close()
        package = artifact.read_package(hub.packages[0]).manifest
        judged(record, checks.check_format(document, package, f"hub:{ref}", target=hub.target))


def test_tampered_blob_is_refused(hub: checks.HubUnderTest, record: Record, tmp_path: Path) -> None:
    """HUB-CLI-001"""
    judged(record, checks.check_tampered_blob_refused(hub, tmp_path))


def test_layout_round_trip_keeps_digests(hub: checks.HubUnderTest, record: Record, tmp_path: Path) -> None:
    """HUB-CLI-002"""
    judged(record, checks.check_layout_round_trip(hub, tmp_path))


def test_signature_policy_is_enforced(hub: checks.HubUnderTest, record: Record,
                                      signing_key: tuple[bytes, str]) -> None:
    """HUB-CLI-003"""
    judged(record, checks.check_signature_required(hub, *signing_key))
