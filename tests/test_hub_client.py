"""The hub client and format (bpfcert/hub/) and the hub checks shown FAILING on violating cases made in a real
Debian docker-registry's storage (a tampered blob, a moved or lost tag, a lost signature) and on clients that skip
what HUB-CLI-* demand. Registries run on 127.0.0.1 only, one per test module or per violating test."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bpfcert.checks import hub as checks
from bpfcert.errors import HubError
from bpfcert.hub import artifact, reference, transfer
from bpfcert.hub.layout import Layout
from bpfcert.hub.registry import Registry
from bpfcert.hub.server import BINARY, LocalRegistry
from bpfcert.results import Status
from bpfcert.signing import generate_key

ROOT = Path(__file__).resolve().parent.parent
V1, V2 = str(ROOT / "examples/xdp-counter-v1"), str(ROOT / "examples/xdp-counter-v2")
needs_registry = pytest.mark.skipif(shutil.which(BINARY) is None, reason=f"{BINARY} not installed")



def hub_of(registry: LocalRegistry, **kw: Any) -> checks.HubUnderTest:
    return checks.HubUnderTest(registry.url, (V1, V2), storage=registry.storage, **kw)


def repoint_tag(storage: Path, repository: str, tag: str, digest: str) -> None:
    """Make the registry's storage say `tag` names `digest` (what a hub that moves the wrong tag would do)."""
    link = storage / "docker/registry/v2/repositories" / repository / "_manifests/tags" / tag / "current/link"
    link.write_text(digest)
    index = link.parent.parent / "index/sha256" / digest.split(":")[1]
    index.mkdir(parents=True, exist_ok=True)
    (index / "link").write_text(digest)


def drop_tag(storage: Path, repository: str, tag: str) -> None:
    shutil.rmtree(storage / "docker/registry/v2/repositories" / repository / "_manifests/tags" / tag)


# --- references, format, verification (no registry) ------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("oci://127.0.0.1:5000/a/b:1.0", reference.Reference("127.0.0.1:5000", "a/b", "1.0")),
    ("oci://localhost/x@sha256:" + "a" * 64, reference.Reference("localhost", "x", "", "sha256:" + "a" * 64)),
    ("oci-layout:/tmp/dir:v1", reference.Reference(layout="/tmp/dir", tag="v1")),
    ("oci-layout:rel/dir", reference.Reference(layout="rel/dir")),
])
def test_references_parse(text: str, expected: reference.Reference) -> None:
    assert reference.parse(text) == expected
    assert str(reference.parse(text)) == text


@pytest.mark.parametrize("text", [
    "docker://h/x:1", "oci://h:5000/UPPER:1", "oci://h:5000/x:bad tag", "oci://h:5000/x@sha256:abc",
    "oci://h:5000", "oci://bad host/x", "oci-layout::tag",
])
def test_bad_references_are_one_line_errors(text: str) -> None:
    with pytest.raises(HubError) as caught:
        reference.parse(text)
    assert caught.value.kind == "format" and "\n" not in str(caught.value)


def test_loopback_is_plain_http_elsewhere_https() -> None:
    assert reference.parse("oci://127.0.0.1:5000/x").base_url == "http://127.0.0.1:5000"
    assert reference.parse("oci://[::1]:5000/x").base_url == "http://[::1]:5000"
    assert reference.parse("oci://registry.example:443/x").base_url == "https://registry.example:443"


def test_the_artifact_is_deterministic_and_follows_the_format() -> None:
    package = artifact.read_package(V1)
    first, second = artifact.build(package), artifact.build(artifact.read_package(V1))
    assert first.manifest == second.manifest  # same package, same digest: no timestamps
    document = json.loads(first.manifest)
    assert checks.format_problems(document, package.manifest) == []
    assert document["config"]["digest"] == artifact.digest_of(Path(V1, "bpfpkg.json").read_bytes())
    layer = document["layers"][0]
    assert layer["digest"] == "sha256:" + package.manifest["artifacts"][0]["sha256"]
    assert json.loads(document["annotations"][artifact.REQUIRES]) == {
        "kernel": ">=5.2", "prog_types": ["xdp"], "btf": False}


def test_format_check_fails_on_a_foreign_manifest() -> None:
    """HUB-FMT-001 fails on what a generic OCI client publishes (oras' default media types, no annotations)."""
    package = artifact.read_package(V1)
    document = json.loads(artifact.build(package).manifest)
    document.pop("artifactType")
    document["config"]["mediaType"] = "application/vnd.unknown.config.v1+json"
    document["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar"
    del document["annotations"]["org.opencontainers.image.version"]
    result = checks.check_format(document, package.manifest, "hub:x")
    assert result.status is Status.FAIL
    for words in ("artifactType", "config mediaType", "is not application/vnd.bpfcert.object", "version"):
        assert words in result.message


def test_bpfman_variant_has_the_labels_and_a_reproducible_layer() -> None:
    built = artifact.build(artifact.read_package(V1), "bpfman")
    assert built.manifest == artifact.build(artifact.read_package(V1), "bpfman").manifest
    config = json.loads(built.blobs[0].data)
    assert json.loads(config["config"]["Labels"]["io.ebpf.programs"]) == {"count_packets": "xdp"}
    assert json.loads(config["config"]["Labels"]["io.ebpf.maps"]) == {"proto_counters": "hash"}
    files = artifact.untar_layer(built.blobs[1].data)
    assert list(files) == ["xdp_counter.bpf.o", "bpfpkg.json"]


def test_an_index_holds_one_manifest_per_byte_order(tmp_path: Path) -> None:
    big = tmp_path / "eb"
    shutil.copytree(V1, big, ignore=shutil.ignore_patterns("src"))
    manifest = json.loads((big / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["arch"] = "bpfeb"
    (big / "bpfpkg.json").write_text(json.dumps(manifest))
    index, _ = transfer.build([V1, str(big)])
    entries = json.loads(index.manifest)["manifests"]
    assert [e["annotations"][artifact.ARCH] for e in entries] == ["bpfel", "bpfeb"]
    with pytest.raises(HubError, match="one package per byte order"):
        transfer.build([V1, V1])


def test_signature_verifies_only_for_its_digest_and_trusted_key() -> None:
    pem, public = generate_key()
    subject = {"mediaType": artifact.MANIFEST_TYPE, "digest": "sha256:" + "1" * 64, "size": 10}
    payload = artifact.build_signature(subject, pem).blobs[1].data
    assert artifact.verify_signature(payload, subject["digest"], [public]) is None
    assert "not sha256:2" in str(artifact.verify_signature(payload, "sha256:" + "2" * 64, [public]))
    assert "untrusted" in str(artifact.verify_signature(payload, subject["digest"], [generate_key()[1]]))
    forged = json.loads(payload)
    forged["signed"]["size"] = 11
    assert "does not verify" in str(artifact.verify_signature(artifact.encode(forged), subject["digest"], [public]))
    small = base64.b64encode(bytes(32)).decode()  # a point of small order: an all-zero signature may verify
    zero = dict(forged, public_key=small, value=base64.b64encode(bytes(64)).decode(), signed=subject)
    assert "small order" in str(artifact.verify_signature(artifact.encode(zero), subject["digest"], [small]))
    with pytest.raises(HubError, match="cannot use the signing key") as caught:
        artifact.build_signature(subject, b"not a key")
    assert caught.value.kind == "signature"


def test_layout_refuses_tampered_blobs_and_links(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "lay")
    layout.create()
    data = b"{}"
    layout.put_blob(data)
    blob = tmp_path / "lay/blobs/sha256" / artifact.digest_of(data)[7:]
    assert layout.blob("r", {"digest": artifact.digest_of(data), "size": 2}) == data
    blob.write_bytes(b"[]")
    with pytest.raises(HubError, match="digest mismatch") as caught:
        layout.blob("r", {"digest": artifact.digest_of(data), "size": 2})
    assert caught.value.kind == "digest-mismatch"
    blob.unlink()
    blob.symlink_to("/etc/hostname")
    with pytest.raises(HubError, match="cannot read blob"):
        layout.blob("r", {"digest": artifact.digest_of(data), "size": 2})


def test_hostile_bpfman_layers_are_refused() -> None:
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        link = tarfile.TarInfo("evil.o")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    with pytest.raises(HubError, match="only regular files"):
        artifact.untar_layer(gzip.compress(raw.getvalue()))
    with pytest.raises(HubError, match="not tar\\+gzip"):
        artifact.untar_layer(b"not gzip")


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/../../b", "", "a\\b"])
def test_pulled_artifact_paths_stay_inside(name: str) -> None:
    with pytest.raises(HubError, match="unsafe artifact path"):
        artifact.safe_path(name)


# --- the client on a real registry ------------------------------------------------------------------------------


@needs_registry
def test_push_pull_round_trip_and_skopeo_copy_keep_the_digest(registry: LocalRegistry, tmp_path: Path) -> None:
    """bpfcert push, skopeo copy registry -> oci:DIR:tag, bpfcert pull from that layout: same digest, verified."""
    ref = reference.parse(f"{registry.url}/examples/xdp-counter:1.0.0")
    digest = transfer.push([V1], ref)
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        pytest.skip("skopeo not installed")
    subprocess.run([skopeo, "copy", "--quiet", "--src-tls-verify=false", f"docker://{registry.address}/"
                    f"examples/xdp-counter:1.0.0", f"oci:{tmp_path}/sk:1.0.0"], check=True, timeout=60)
    pulled = transfer.fetch(reference.parse(f"oci-layout:{tmp_path}/sk:1.0.0"))
    assert pulled.digest == digest
    out = transfer.write(pulled, tmp_path / "out")
    assert (out / "bpfpkg.json").read_bytes() == Path(V1, "bpfpkg.json").read_bytes()
    assert (out / "xdp_counter.bpf.o").read_bytes() == Path(V1, "xdp_counter.bpf.o").read_bytes()


@needs_registry
def test_cli_pull_of_a_tampered_blob_exits_2_and_writes_nothing(registry: LocalRegistry, tmp_path: Path) -> None:
    ref = reference.parse(f"{registry.url}/t:1")
    transfer.push([V1], ref)
    blob = registry.blob_path("sha256:" + json.loads(Path(V1, "bpfpkg.json").read_text())["artifacts"][0]["sha256"])
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    run = subprocess.run([sys.executable, "-m", "bpfcert", "pull", str(ref), "-o", str(tmp_path / "out")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "digest mismatch" in run.stderr and "Traceback" not in run.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("option", ["--sign-key", "--trusted-key"])
def test_cli_key_that_is_no_regular_file_exits_2_without_blocking(tmp_path: Path, option: str) -> None:
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)  # read_bytes()/read_text() on it would wait for a writer forever
    command = ["push", V1, "oci://127.0.0.1:9/x:1"] if option == "--sign-key" else \
        ["pull", "oci://127.0.0.1:9/x:1", "-o", str(tmp_path / "out")]
    run = subprocess.run([sys.executable, "-m", "bpfcert", *command, option, str(fifo)], capture_output=True,
                         text=True, cwd=ROOT, timeout=30)
    assert run.returncode == 2, run.stderr
    assert "not a regular file" in run.stderr and run.stderr.count("\n") == 1


@needs_registry
def test_cli_push_ls_export_import(registry: LocalRegistry, tmp_path: Path) -> None:
    def bpfcert(*argv: str) -> str:
        run = subprocess.run([sys.executable, "-m", "bpfcert", *argv], capture_output=True, text=True, cwd=ROOT,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        return run.stdout

    pushed = bpfcert("push", V1, f"{registry.url}/x:1.0.0")
    assert pushed.startswith(f"pushed {registry.url}/x:1.0.0@sha256:")
    digest = pushed.split("@", 1)[1].strip()
    bpfcert("push", V2, f"{registry.url}/x:2.0.0")
    assert bpfcert("hub", "ls", f"{registry.url}/x").split() == ["2.0.0", "1.0.0"]
    assert json.loads(bpfcert("hub", "ls", registry.url, "--format", "json")) == {"repositories": ["x"]}
    exported = bpfcert("hub", "export", f"{registry.url}/x:2.0.0", str(tmp_path / "lay"))
    imported = bpfcert("hub", "import", str(tmp_path / "lay"), f"{registry.url}/mirror:2.0.0")
    assert exported == imported
    assert "verdict: conformant" in bpfcert("check", f"{registry.url}/mirror:2.0.0")
    assert json.loads(bpfcert("check", f"{registry.url}/x@{digest}", "--format", "json"))["verdict"] == "conformant"


@needs_registry
def test_unreachable_registry_is_a_one_line_error() -> None:
    from bpfcert.hub.server import free_port

    with pytest.raises(HubError, match="unreachable") as caught:
        transfer.fetch(reference.parse(f"oci://127.0.0.1:{free_port()}/x:1"))
    assert caught.value.kind == "unreachable"


# --- each check failing on a violating case --------------------------------------------------------------------


@needs_registry
def test_round_trip_fails_on_a_tampered_blob(registry: LocalRegistry) -> None:
    def tamper(step: str, facts: dict[str, Any]) -> None:
        blob = registry.blob_path(artifact.digest_of(Path(V1, "bpfpkg.json").read_bytes()))  # the config
        blob.write_bytes(blob.read_bytes().replace(b"xdp-counter", b"xdp-c0unter"))

    result = checks.check_round_trip(hub_of(registry, interfere=tamper))
    assert result.status is Status.FAIL and "digest mismatch" in result.message


@needs_registry
def test_digest_pull_fails_when_the_registry_overwrote_the_first_version(registry: LocalRegistry) -> None:
    def overwrite(step: str, facts: dict[str, Any]) -> None:
        registry.blob_path(facts["first"]).write_bytes(registry.blob_path(facts["second"]).read_bytes())

    result = checks.check_digest_immutable(hub_of(registry, interfere=overwrite))
    assert result.status is Status.FAIL and "digest mismatch" in result.message


@needs_registry
def test_tag_moves_fails_on_a_moved_tag(registry: LocalRegistry) -> None:
    hub = hub_of(registry)

    def move_the_other(step: str, facts: dict[str, Any]) -> None:
        current = Registry(facts["ref"]).manifest_digest(facts["ref"].at(tag="current"))
        assert current is not None
        repoint_tag(registry.storage, facts["ref"].repository, "pinned", current)

    hub.interfere = move_the_other
    result = checks.check_tag_moves(hub)
    assert result.status is Status.FAIL and "'pinned' names" in result.message


@needs_registry
def test_signature_found_fails_when_the_signature_tag_is_lost(registry: LocalRegistry) -> None:
    def lose(step: str, facts: dict[str, Any]) -> None:
        drop_tag(registry.storage, facts["ref"].repository, artifact.signature_tag(facts["digest"]))

    pem, public = generate_key()
    result = checks.check_signature_found(hub_of(registry, interfere=lose), pem, public)
    assert result.status is Status.FAIL and "no signature artifact" in result.message


@needs_registry
def test_tags_listed_fails_when_a_version_is_lost(registry: LocalRegistry) -> None:
    hub = hub_of(registry)
    ref = hub.ref("versions")

    def lose(step: str, facts: dict[str, Any]) -> None:
        if facts["tag"] == "2.0.0":
            drop_tag(registry.storage, ref.repository, "1.0.0")

    hub.interfere = lose
    result = checks.check_tags_listed(hub)
    assert result.status is Status.FAIL and "1.0.0" in result.message


@needs_registry
def test_annotations_fail_when_the_tag_names_a_stripped_manifest(registry: LocalRegistry) -> None:
    """A hub that rewrites manifests on push (here: drops the annotations) fails HUB-ANN-001."""
    hub = hub_of(registry)

    def strip(step: str, facts: dict[str, Any]) -> None:
        ref = facts["ref"]
        document = json.loads(registry.blob_path(facts["digest"]).read_bytes())
        document["annotations"] = {}
        Registry(ref).put_manifest(ref.at(tag="stripped"), artifact.encode(document), artifact.MANIFEST_TYPE)
        stripped = Registry(ref).manifest_digest(ref.at(tag="stripped"))
        assert stripped is not None
        repoint_tag(registry.storage, ref.repository, ref.tag, stripped)

    hub.interfere = strip
    result = checks.check_annotations(hub)
    assert result.status is Status.FAIL and "org.opencontainers.image.title" in result.message


@needs_registry
def test_tamper_check_fails_for_a_client_that_does_not_verify(registry: LocalRegistry, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """HUB-CLI-001 passes for bpfcert's client and fails for one that skips the digest checks."""
    assert checks.check_tampered_blob_refused(hub_of(registry), tmp_path).status is Status.PASS
    from bpfcert.hub import registry as client

    monkeypatch.setattr(client, "check_descriptor", lambda data, descriptor, what: None)
    monkeypatch.setattr(client, "check_digest", lambda data, digest, what: None)
    monkeypatch.setattr(transfer, "unpack", lambda source, ref, data: _unchecked_unpack(source, ref, data))
    result = checks.check_tampered_blob_refused(hub_of(registry), tmp_path)
    assert result.status is Status.FAIL and "accepted" in result.message


def _unchecked_unpack(source: transfer.Source, ref: reference.Reference, data: dict[str, Any]) -> dict[str, bytes]:
    files = {artifact.MANIFEST_NAME: source.blob(ref.repository, data["config"])}
    for layer in data["layers"]:
        files[layer["annotations"][artifact.TITLE]] = source.blob(ref.repository, layer)
    return files


@needs_registry
def test_layout_round_trip_fails_on_a_tampered_export(registry: LocalRegistry, tmp_path: Path) -> None:
    def tamper(step: str, facts: dict[str, Any]) -> None:
        blob = facts["layout"] / "blobs/sha256" / facts["digest"][7:]
        blob.write_bytes(blob.read_bytes().replace(b"xdp-counter", b"xdp-c0unter"))

    result = checks.check_layout_round_trip(hub_of(registry, interfere=tamper), tmp_path)
    assert result.status is Status.FAIL and "digest mismatch" in result.message


@needs_registry
def test_signature_policy_fails_for_a_client_that_accepts_any_signature(
    registry: LocalRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HUB-CLI-003: missing or untrusted signatures under a signature-required policy are refused by bpfcert; a
    client that does not look them up fails the check."""
    pem, public = generate_key()
    assert checks.check_signature_required(hub_of(registry), pem, public).status is Status.PASS
    monkeypatch.setattr(transfer, "signature_of", lambda source, ref, digest, policy: "verified")
    result = checks.check_signature_required(hub_of(registry), pem, public)
    assert result.status is Status.FAIL and "not enforced" in result.message


@needs_registry
def test_tag_delete_reports_what_distribution_does(registry: LocalRegistry) -> None:
    """HUB-DEL-001 (SHOULD) on distribution 2.8: DELETE by tag is refused with 400, reported as a failed SHOULD."""
    result = checks.check_tag_delete(hub_of(registry))
    assert result.level == "SHOULD"
    assert result.status is Status.FAIL and "HTTP 400" in result.message
    assert result.evidence["after"]["keep"] is not None


@needs_registry
def test_pagination_reports_that_distribution_ignores_n_on_tags(registry: LocalRegistry) -> None:
    """HUB-LST-002 (SHOULD) on distribution 2.8: the catalogue pages by n with a Link header, the tags list does not
    (it answers every tag, no Link): the check fails on the tags only."""
    result = checks.check_pagination(hub_of(registry))
    assert result.level == "SHOULD" and result.status is Status.FAIL
    assert "a tags page of n=1 held 3 names" in result.message and "catalogue" not in result.message
    assert result.evidence["catalogue"]["pages"] == result.evidence["catalogue"]["names"] == 2


def test_check_of_a_reference_fetches_its_manifest_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bpfcert check REF` judges HUB-FMT-001 on the manifest the pull verified, not on a second fetch of it."""
    from bpfcert.hub.pulled import check_reference

    item = artifact.build(artifact.read_package(V1))
    layout = Layout(tmp_path / "lay")
    layout.create()
    for blob in item.blobs:
        layout.put_blob(blob.data)
    layout.put_blob(item.manifest)
    layout.tag("1.0.0", item.descriptor)
    fetched: list[str] = []
    manifest = Layout.manifest
    monkeypatch.setattr(Layout, "manifest", lambda self, ref: fetched.append(str(ref)) or manifest(self, ref))
    report = check_reference(f"oci-layout:{tmp_path}/lay:1.0.0", None)
    assert [r.status for r in report.results if r.id == "HUB-FMT-001"] == [Status.PASS]
    assert len(fetched) == 1, fetched
