"""Hub checks (profiles `hub` and `hub-client`): one function per requirement ID, each exercising a live registry
through bpfcert's hub client and judging what it serves back.

A `HubUnderTest` names the registry, a repository prefix of the run's own (every check works in fresh
repositories, so checks do not see each other's tags), the two package versions the checks publish, and optionally
the registry's storage directory (the tampering check edits a blob there, then puts it back; without it that check
is skipped).
`interfere(step, facts)` is called at named steps after the check pushed; it does nothing in a certification and
lets the tests break the real registry's storage there (tamper a blob, move a tag) to show each check failing."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bpfcert.errors import HubError
from bpfcert.hub import artifact, transfer
from bpfcert.hub.reference import Reference, parse
from bpfcert.hub.registry import Page, Registry
from bpfcert.results import Result, Status

Interfere = Callable[[str, dict[str, Any]], None]


def _nothing(step: str, facts: dict[str, Any]) -> None:
    """No interference: what a certification passes."""


@dataclass
class HubUnderTest:
    """The registry under test (`url` oci://HOST:PORT) and what the checks publish to it."""

    url: str
    packages: tuple[str, str]  # two versions of one package (directories): v1, then v2
    storage: Path | None = None  # the registry's filesystem storage root, if the checks may edit it
    prefix: str = field(default_factory=lambda: f"bpfcert-conformance/{secrets.token_hex(4)}")
    interfere: Interfere = _nothing
    target: str = "hub"

    def ref(self, name: str, tag: str = "", digest: str = "") -> Reference:
        return parse(f"{self.url}/{self.prefix}/{name}").at(tag=tag, digest=digest)

    @property
    def subject(self) -> str:
        """What every row of these checks is about: `hub:HOST:PORT`."""
        return f"hub:{self.url.removeprefix('oci://')}"

    def result(self, req_id: str, ok: bool, message: str, **evidence: Any) -> Result:
        return Result.of(req_id, Status.PASS if ok else Status.FAIL, message, target=self.target,
                         subject=self.subject, evidence=evidence)

    def error(self, req_id: str, exc: Exception) -> Result:
        return Result.of(req_id, Status.ERROR, f"could not be checked: {exc}", target=self.target,
                         subject=self.subject)


def _files(path: str) -> dict[str, bytes]:
    pkg = artifact.read_package(path)
    return {artifact.MANIFEST_NAME: pkg.config, **pkg.files}


def _unique(hub: HubUnderTest, path: str, scratch: Path) -> str:
    """A copy of the package at `path` whose manifest (config blob) no other check shares: a tampered config
    then breaks only this check's package (registries store a blob once for all repositories)."""
    copy = scratch / f"unique-{secrets.token_hex(4)}"
    shutil.copytree(path, copy, ignore=shutil.ignore_patterns("src"))
    manifest = json.loads((copy / artifact.MANIFEST_NAME).read_text())
    manifest["description"] = f"{manifest.get('description', '')} (hub check {copy.name})".strip()
    (copy / artifact.MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return str(copy)


def format_problems(document: dict[str, Any], package: dict[str, Any]) -> list[str]:
    """What keeps a pulled manifest (native or bpfman variant) from following STANDARD.md section 9."""
    problems: list[str] = []
    config: dict[str, Any] = document["config"] if isinstance(document.get("config"), dict) else {}
    layers = [x for x in document.get("layers") or [] if isinstance(x, dict)]
    if document.get("mediaType") != artifact.MANIFEST_TYPE:
        problems.append(f"mediaType {document.get('mediaType')!r}, not {artifact.MANIFEST_TYPE}")
    if config.get("mediaType") == artifact.IMAGE_CONFIG_TYPE:  # the bpfman variant (9.2)
        if [x.get("mediaType") for x in layers] != [artifact.TAR_GZIP_TYPE]:
            problems.append("the bpfman variant holds exactly one tar+gzip layer")
    else:
        if document.get("artifactType") != artifact.ARTIFACT_TYPE:
            problems.append(f"artifactType {document.get('artifactType')!r}, not {artifact.ARTIFACT_TYPE}")
        if config.get("mediaType") != artifact.CONFIG_TYPE:
            problems.append(f"config mediaType {config.get('mediaType')!r}, not {artifact.CONFIG_TYPE}")
        paths = [a.get("path") for a in package.get("artifacts", []) if isinstance(a, dict)]
        titles = [x.get("annotations", {}).get(artifact.TITLE) for x in layers]
        if sorted(map(str, titles)) != sorted(map(str, paths)):
            problems.append(f"layer titles {titles} are not the artifact paths {paths}")
        if any(x.get("mediaType") != artifact.OBJECT_TYPE for x in layers):
            problems.append(f"a layer is not {artifact.OBJECT_TYPE}")
    expected = artifact.summary_annotations(package)
    served: dict[str, Any] = document["annotations"] if isinstance(document.get("annotations"), dict) else {}
    wrong = sorted(k for k in expected if served.get(k) != expected[k])
    if wrong:
        problems.append(f"annotations missing or not the package's: {', '.join(wrong)}")
    return problems


def check_format(document: dict[str, Any], package: dict[str, Any], subject: str, target: str = "hub") -> Result:
    """HUB-FMT-001: a pulled manifest follows the hub format for the package it holds."""
    problems = format_problems(document, package)
    return Result.of("HUB-FMT-001", Status.FAIL if problems else Status.PASS,
                     "; ".join(problems) or "the manifest follows the hub format", subject=subject, target=target)


def check_round_trip(hub: HubUnderTest) -> Result:
    """HUB-PUB-001: push, then pull by tag: the same manifest digest and byte-identical package files."""
    v1 = hub.packages[0]
    ref = hub.ref("round-trip", "1.0.0")
    try:
        pushed = transfer.push([v1], ref)
        hub.interfere("pushed", {"ref": ref, "digest": pushed})
        pulled = transfer.fetch(ref)
    except HubError as exc:
        return hub.result("HUB-PUB-001", False, f"push then pull by tag failed: {exc}", reference=str(ref))
    sent = _files(v1)
    differ = sorted(k for k in sent.keys() | pulled.files.keys() if sent.get(k) != pulled.files.get(k))
    ok = pulled.digest == pushed and not differ
    return hub.result("HUB-PUB-001", ok, "the pulled package is byte-identical to the pushed one" if ok else
                      f"pulled {pulled.digest} for pushed {pushed}; files that differ: {', '.join(differ) or 'none'}",
                      reference=str(ref), pushed=pushed, pulled=pulled.digest, differ=differ)


def check_digest_immutable(hub: HubUnderTest) -> Result:
    """HUB-DIG-001: after the tag is pushed again with another version, a pull by the first digest still returns
    the first version, and the tag the second."""
    v1, v2 = hub.packages
    ref = hub.ref("immutable", "stable")
    try:
        first = transfer.push([v1], ref)
        second = transfer.push([v2], ref)
        hub.interfere("re-pushed", {"ref": ref, "first": first, "second": second})
        pinned = transfer.fetch(ref.at(digest=first))
        tagged = transfer.fetch(ref)
    except HubError as exc:
        return hub.result("HUB-DIG-001", False, f"a pull after re-pushing the tag failed: {exc}", reference=str(ref))
    problems = []
    if pinned.files != _files(v1):
        problems.append(f"the pull by {first} did not return the first version")
    if tagged.digest != second:
        problems.append(f"the tag names {tagged.digest}, not the re-pushed {second}")
    return hub.result("HUB-DIG-001", not problems, "; ".join(problems) or "the digest pull is unaffected by the "
                      "re-push of its tag", first=first, second=second, tag_now=tagged.digest)


def check_annotations(hub: HubUnderTest) -> Result:
    """HUB-ANN-001: the manifest served carries name, version, description, source, licences and the requires
    summary as published, readable without fetching a blob."""
    v1 = hub.packages[0]
    ref = hub.ref("annotations", "1.0.0")
    expected = artifact.summary_annotations(artifact.read_package(v1).manifest)
    registry = Registry(ref)
    try:
        digest = transfer.push([v1], ref)
        hub.interfere("pushed", {"ref": ref, "digest": digest})
        served = transfer.document(registry.manifest(ref), str(ref)).get("annotations", {})
    except HubError as exc:
        return hub.result("HUB-ANN-001", False, f"cannot read the manifest: {exc}", reference=str(ref))
    finally:
        registry.close()
    wrong = sorted(k for k in expected if served.get(k) != expected[k])
    ok = not wrong and artifact.REQUIRES in served
    return hub.result("HUB-ANN-001", ok, "the manifest's annotations are served as published" if ok else
                      f"annotations missing or changed: {', '.join(wrong)}", expected=expected, served=served)


def check_tags_listed(hub: HubUnderTest) -> Result:
    """HUB-LST-001: the tags list shows every version published."""
    v1, v2 = hub.packages
    ref = hub.ref("versions")
    versions = {"1.0.0": v1, "2.0.0": v2}
    registry = Registry(ref)
    try:
        for tag, path in versions.items():
            transfer.push([path], ref.at(tag=tag))
            hub.interfere("pushed", {"ref": ref.at(tag=tag), "tag": tag})
        tags = registry.tags(ref.repository)
    except HubError as exc:
        return hub.result("HUB-LST-001", False, f"cannot publish or list: {exc}", reference=str(ref))
    finally:
        registry.close()
    missing = sorted(set(versions) - set(tags))
    return hub.result("HUB-LST-001", not missing, f"tags missing from the list: {', '.join(missing)}" if missing
                      else "every published version is in the tags list", published=sorted(versions), listed=tags)


def check_pagination(hub: HubUnderTest) -> Result:
    """HUB-LST-002: tags list and catalogue pages of `n=1` follow the Link header and list every name once."""
    v1 = hub.packages[0]
    ref = hub.ref("paginated")
    registry = Registry(ref)
    problems: list[str] = []
    evidence: dict[str, Any] = {}
    try:
        for tag in ("a", "b", "c"):
            transfer.push([v1], ref.at(tag=tag))
        transfer.push([v1], hub.ref("paginated-too", "a"))
        listings: dict[str, tuple[list[str], Callable[[str | None], Page]]] = {
            "tags": (registry.tags(ref.repository), lambda url: registry.tags_page(ref.repository, 1, url)),
            "catalogue": (registry.catalogue(), lambda url: registry.catalogue_page(1, url)),
        }
        for what, (everything, page) in listings.items():
            seen, pages = _walk(page, what, problems)
            if sorted(seen) != sorted(everything) or len(seen) != len(set(seen)):
                problems.append(f"paging the {what} by 1 gave {len(seen)} names, the whole list {len(everything)}")
            evidence[what] = {"pages": pages, "names": len(everything)}
    except HubError as exc:
        return hub.result("HUB-LST-002", False, f"cannot page: {exc}")
    finally:
        registry.close()
    return hub.result("HUB-LST-002", not problems, "; ".join(problems) or "tags and catalogue paginate by n and "
                      "Link", **evidence)


def _walk(page: Callable[[str | None], Page], what: str, problems: list[str]) -> tuple[list[str], int]:
    """Every name of a listing fetched one page of n=1 at a time, following the Link header; pages fetched."""
    seen: list[str] = []
    next_url: str | None = None
    for pages in range(1, 1001):
        current = page(next_url)
        if len(current.items) > 1:
            problems.append(f"a {what} page of n=1 held {len(current.items)} names")
        seen += current.items
        next_url = current.next
        if not next_url:
            return seen, pages
    problems.append(f"the {what} pagination did not end after 1000 pages")
    return seen, 1000


def check_signature_found(hub: HubUnderTest, key_pem: bytes, public_key: str) -> Result:
    """HUB-SIG-001: the signature artifact pushed under `sha256-<hex>.sig` is served for the package's digest."""
    ref = hub.ref("signed", "1.0.0")
    try:
        digest = transfer.push([hub.packages[0]], ref, sign_key=key_pem)
        hub.interfere("signed", {"ref": ref, "digest": digest})
        pulled = transfer.fetch(ref, transfer.Policy(require_signature=True, trusted_keys=(public_key,)))
    except HubError as exc:
        return hub.result("HUB-SIG-001", False, f"the signature artifact was not served for the digest: {exc}",
                          reference=str(ref))
    return hub.result("HUB-SIG-001", pulled.signature == "verified", f"the signature artifact "
                      f"{artifact.signature_tag(digest)} is found and verifies", digest=digest)


def check_tag_moves(hub: HubUnderTest) -> Result:
    """HUB-TAG-001: moving one tag (pushing another version under it) leaves the other tags and digest pins."""
    v1, v2 = hub.packages
    ref = hub.ref("moving")
    try:
        first = transfer.push([v1], ref.at(tag="current"))
        transfer.push([v1], ref.at(tag="pinned"))
        transfer.push([v2], ref.at(tag="current"))
        hub.interfere("moved", {"ref": ref, "first": first})
        other = transfer.fetch(ref.at(tag="pinned"))
        by_digest = transfer.fetch(ref.at(digest=first))
    except HubError as exc:
        return hub.result("HUB-TAG-001", False, f"moving one tag broke another or a digest pin: {exc}")
    ok = other.digest == first and by_digest.digest == first
    return hub.result("HUB-TAG-001", ok, "the other tag and the digest pin are unchanged" if ok else
                      f"after moving 'current', 'pinned' names {other.digest} instead of {first}",
                      first=first, pinned_now=other.digest)


def check_tag_delete(hub: HubUnderTest) -> Result:
    """HUB-DEL-001 (SHOULD): deleting one tag leaves the other tags of the same manifest and its digest pin.
    The registry API deletes manifests; a registry that refuses DELETE by tag leaves only the delete by digest,
    which removes every tag of the manifest: reported as what the server does."""
    v1 = hub.packages[0]
    ref = hub.ref("deleting")
    registry = Registry(ref)
    try:
        digest = transfer.push([v1], ref.at(tag="old"))
        transfer.push([v1], ref.at(tag="keep"))
        status = registry.delete_manifest(ref.at(tag="old"))
        after = {tag: registry.manifest_digest(ref.at(tag=tag)) for tag in ("old", "keep")}
        pinned = registry.manifest_digest(ref.at(digest=digest))
    except HubError as exc:
        return hub.result("HUB-DEL-001", False, f"cannot delete or look up: {exc}")
    finally:
        registry.close()
    evidence = {"delete_by_tag_status": status, "after": after, "digest_pin": pinned}
    if status not in (200, 202):
        return hub.result("HUB-DEL-001", False, f"DELETE by tag answered HTTP {status}: one tag cannot be deleted "
                          "alone (a delete by digest removes every tag of the manifest)", **evidence)
    ok = after["old"] is None and after["keep"] == digest and pinned == digest
    return hub.result("HUB-DEL-001", ok, "deleting one tag left the other tag and the digest pin" if ok else
                      f"after deleting 'old': tags {after}, digest pin {pinned}", **evidence)


def check_tampered_blob_refused(hub: HubUnderTest, scratch: Path) -> Result:
    """HUB-CLI-001: a blob changed in the registry's storage is refused by the client with a digest error, and
    nothing is written. The blob (a config no other package shares) is put back afterwards."""
    from bpfcert.hub.server import blob_path

    if hub.storage is None:
        return Result.of("HUB-CLI-001", Status.SKIP, "the registry's storage is not reachable, so no blob can be "
                         "tampered with: give its filesystem root (--hub-storage DIR) to run this check",
                         target=hub.target, subject=hub.subject)
    ref = hub.ref("tampered", "1.0.0")
    out = scratch / f"pulled-{secrets.token_hex(4)}"
    try:
        digest = transfer.push([_unique(hub, hub.packages[0], scratch)], ref)
        registry = Registry(ref)
        try:
            config = transfer.document(registry.manifest(ref), str(ref))["config"]["digest"]
        finally:
            registry.close()
        blob = blob_path(hub.storage, config)
        if not blob.is_file():
            return hub.error("HUB-CLI-001", HubError(f"the blob just pushed ({config}) is not at {blob}: is "
                                                    f"{hub.storage} this registry's storage root?"))
        hub.interfere("pushed", {"ref": ref, "digest": digest, "blob": blob})
        original = blob.read_bytes()
        data = bytearray(original)
        data[data.index(b"(hub check")] ^= 0x20  # one letter's case: same size, other digest
        blob.write_bytes(bytes(data))
        try:
            transfer.write(transfer.fetch(ref), out)
        finally:
            blob.write_bytes(original)
    except HubError as exc:
        ok = exc.kind == "digest-mismatch" and not (out.exists() and any(out.iterdir()))
        return hub.result("HUB-CLI-001", ok, f"refused: {exc}" if ok else f"refused for another reason: {exc}",
                          kind=exc.kind)
    except (OSError, ValueError) as exc:
        return hub.error("HUB-CLI-001", exc)
    return hub.result("HUB-CLI-001", False, f"the tampered package was accepted and written to {out}")


def check_layout_round_trip(hub: HubUnderTest, scratch: Path) -> Result:
    """HUB-CLI-002: export to an OCI image layout and import into another repository keep the digest; so does a
    copy by an independent client (skopeo, when installed), and bpfcert still verifies its result."""
    ref = hub.ref("exported", "1.0.0")
    layout = scratch / f"layout-{secrets.token_hex(4)}"
    evidence: dict[str, Any] = {}
    try:
        digest = transfer.push([hub.packages[0]], ref)
        exported = transfer.copy(ref, parse(f"oci-layout:{layout}:1.0.0"))
        hub.interfere("exported", {"ref": ref, "digest": digest, "layout": layout})
        imported = transfer.copy(parse(f"oci-layout:{layout}:1.0.0"), hub.ref("imported", "1.0.0"))
        again = transfer.fetch(hub.ref("imported", "1.0.0")).digest
        evidence = {"pushed": digest, "exported": exported, "imported": again}
        if shutil.which("skopeo"):
            copied = scratch / f"skopeo-{secrets.token_hex(4)}"
            run = subprocess.run(
                ["skopeo", "copy", "--quiet", "--src-tls-verify=false", f"docker://{ref.registry}/{ref.repository}:"
                 f"{ref.tag}", f"oci:{copied}:1.0.0"], capture_output=True, text=True, timeout=60, check=False)
            if run.returncode != 0:
                return hub.result("HUB-CLI-002", False, f"skopeo copy failed: {run.stderr.strip()[-300:]}")
            evidence["skopeo"] = transfer.fetch(parse(f"oci-layout:{copied}:1.0.0")).digest
    except HubError as exc:
        return hub.result("HUB-CLI-002", False, f"export or import failed: {exc}", **evidence)
    changed = sorted(k for k, v in evidence.items() if v != digest)
    return hub.result("HUB-CLI-002", not changed and imported == digest, f"digests changed: {', '.join(changed)}"
                      if changed else "export, import and an independent copy keep the digest", **evidence)


def check_signature_required(hub: HubUnderTest, key_pem: bytes, public_key: str) -> Result:
    """HUB-CLI-003: under a signature-required policy, an unsigned package and one signed by an untrusted key are
    refused, a package signed by a trusted key is accepted."""
    from bpfcert.signing import generate_key

    policy = transfer.Policy(require_signature=True, trusted_keys=(public_key,))
    other_pem, _ = generate_key()
    outcomes: dict[str, str] = {}
    try:
        for name, key in (("unsigned", None), ("untrusted", other_pem), ("trusted", key_pem)):
            ref = hub.ref(f"policy-{name}", "1.0.0")
            transfer.push([hub.packages[0]], ref, sign_key=key)
            hub.interfere("pushed", {"ref": ref, "case": name})
            try:
                outcomes[name] = transfer.fetch(ref, policy).signature
            except HubError as exc:
                outcomes[name] = f"refused ({exc.kind}): {exc}"
    except HubError as exc:
        return hub.error("HUB-CLI-003", exc)
    ok = outcomes["trusted"] == "verified" and all(outcomes[n].startswith("refused (signature)")
                                                   for n in ("unsigned", "untrusted"))
    return hub.result("HUB-CLI-003", ok, "unsigned and untrusted packages refused, the trusted one accepted" if ok
                      else f"the policy was not enforced: {outcomes}", **outcomes)


def check_pinned_install(req_id: str, installed: dict[str, Any], expected: str, hub: HubUnderTest) -> Result:
    """HUB-CLI-004: a runtime that installed from a reference reports the digest it pinned, and it is the digest
    the reference resolved to."""
    pinned = installed.get("digest")
    return hub.result(req_id, pinned == expected, f"the runtime pinned {pinned}" + ("" if pinned == expected else
                      f", the reference resolved to {expected}"), pinned=pinned, expected=expected)

