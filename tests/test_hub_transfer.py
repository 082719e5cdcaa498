"""What keeps pulling many packages fast (bench/bench_hub.py measures it), each shown failing when undone: a
registry client's connections are kept for its next requests (HEADs and empty bodies included), a package's blobs
are fetched at once, a layer whose verified digest is its artifact's sha256 is not hashed again, and the
environment's proxies are read once per registry yet still honoured."""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from bpfcert.hub import reference, transfer
from bpfcert.hub.registry import Registry
from bpfcert.hub.server import BINARY, LocalRegistry

ROOT = Path(__file__).resolve().parent.parent
V1, V2 = str(ROOT / "examples/xdp-counter-v1"), str(ROOT / "examples/xdp-counter-v2")
needs_registry = pytest.mark.skipif(shutil.which(BINARY) is None, reason=f"{BINARY} not installed")


@needs_registry
def test_one_client_reuses_its_connections_across_pulls(shared_registry: LocalRegistry,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib3.connection

    refs = [reference.parse(f"{shared_registry.url}/reuse:{tag}") for tag in ("1", "2")]
    for ref, path in zip(refs, (V1, V2), strict=True):
        transfer.push([path], ref)
    opened: list[str] = []
    connect = urllib3.connection.HTTPConnection.connect
    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect",
                        lambda conn: (opened.append(conn.host), connect(conn))[1])
    client = Registry(refs[0])
    try:
        for _ in range(3):
            for ref in refs:
                transfer.fetch(ref, source=client)  # 6 pulls, 18 requests
                assert client.manifest_digest(ref)  # a HEAD: no body, yet the connection stays usable
    finally:
        client.close()
    assert 0 < len(opened) <= transfer.ROUND_TRIPS


def test_a_packages_blobs_are_fetched_at_once() -> None:
    """Two calls that each wait for the other finish only when they run together."""
    meet = threading.Barrier(2, timeout=5)
    assert transfer.at_once(lambda n: (meet.wait(), n * 10)[1], [1, 2]) == [10, 20]


@needs_registry
def test_verified_layers_are_not_hashed_again(shared_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = reference.parse(f"{shared_registry.url}/hashes:1")
    transfer.push([V1], ref)
    client = Registry(ref)
    try:
        document = transfer.document(client.manifest(ref), str(ref))
        hashed: list[int] = []
        real = hashlib.sha256

        def counting(data: bytes = b"", **kw: Any) -> Any:
            hashed.append(len(data))
            return real(data, **kw)

        monkeypatch.setattr(hashlib, "sha256", counting)
        files = transfer.unpack(client, ref, document)
    finally:
        client.close()
    assert len(files) == 1 + len(document["layers"])
    assert len(hashed) == len(files)  # each blob once, against its descriptor; not again against bpfpkg.json


def test_proxies_from_the_environment_are_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = Registry(reference.parse("oci://registry.example.org/x:1"))
    try:
        assert client.oras.session.proxies.get("https") == "http://proxy.invalid:3128"
        assert client.oras.session.trust_env is False  # read once, here, not on every request
    finally:
        client.close()


@needs_registry
def test_small_blobs_are_sent_without_asking_large_ones_only_when_missing(
    shared_registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bpfcert.hub import registry as client

    sent: list[str] = []
    request = Registry.request

    def recording(self: Registry, method: str, path: str, **kw: Any) -> Any:
        sent.append(f"{method} {path.partition('?')[0].rsplit('/', 2)[-2]}")
        return request(self, method, path, **kw)

    monkeypatch.setattr(Registry, "request", recording)
    ref = reference.parse(f"{shared_registry.url}/asking:1")
    transfer.push([V1], ref)
    assert not [s for s in sent if s.startswith("HEAD")] and "POST uploads" in sent  # a round trip saved per blob
    monkeypatch.setattr(client, "ASK_FIRST", 1)
    sent.clear()
    transfer.push([V1], ref.at(tag="2"))
    assert sorted(sent) == ["HEAD blobs", "HEAD blobs", "PUT manifests"]  # present already: nothing re-sent
