"""References to packages in a hub: `oci://HOST[:PORT]/REPO[:TAG][@sha256:HEX]` for a registry (plain HTTP on
loopback, HTTPS elsewhere), `oci-layout:DIR[:TAG][@sha256:HEX]` for an OCI image layout on disk."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from bpfcert.errors import HubError

REGISTRY_SCHEME = "oci://"
LAYOUT_SCHEME = "oci-layout:"
# the distribution spec's grammar: path components, tag, digest (sha256 only: the one algorithm we verify)
REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
HOST = re.compile(r"(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::[0-9]{1,5})?")
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class Reference:
    """One package (or repository, or registry) in a hub. `registry` is HOST[:PORT] ("" for a layout), `layout`
    the layout directory ("" for a registry), `repository` "" for a whole registry (catalogue)."""

    registry: str = ""
    repository: str = ""
    tag: str = ""
    digest: str = ""
    layout: str = ""

    @property
    def pinned(self) -> str:
        """The tag, or the digest when there is one (what a manifest request asks for)."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def base_url(self) -> str:
        name = self.registry
        host = name[1 : name.index("]")] if name.startswith("[") else name.split(":", 1)[0]
        return f"{'http' if is_loopback(host) else 'https'}://{name}"

    def at(self, *, tag: str = "", digest: str = "") -> Reference:
        """The same repository at another tag or digest."""
        return replace(self, tag=tag, digest=digest)

    def __str__(self) -> str:
        where = f"{LAYOUT_SCHEME}{self.layout}" if self.layout else f"{REGISTRY_SCHEME}{self.registry}"
        if self.repository:
            where += f"/{self.repository}"
        return where + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_reference(text: str) -> bool:
    """Whether `text` names a hub (a registry or a layout) rather than a local package path."""
    return text.startswith((REGISTRY_SCHEME, LAYOUT_SCHEME))


def parse(text: str, *, repository_required: bool = True) -> Reference:
    """The Reference `text` names; HubError (kind "format") saying what is wrong otherwise."""
    if text.startswith(LAYOUT_SCHEME):
        return _parse_layout(text[len(LAYOUT_SCHEME):], text)
    if not text.startswith(REGISTRY_SCHEME):
        raise HubError(f"{text!r} is not a hub reference (expected {REGISTRY_SCHEME}HOST:PORT/REPO:TAG or "
                       f"{LAYOUT_SCHEME}DIR:TAG)", "format")
    rest = text[len(REGISTRY_SCHEME):].rstrip("/")
    host, _, path = rest.partition("/")
    if not HOST.fullmatch(host):
        raise HubError(f"{text!r}: bad registry host {host!r}", "format")
    path, digest = _split_digest(path, text)
    repository, tag = path, ""
    if ":" in path.rsplit("/", 1)[-1]:
        repository, _, tag = path.rpartition(":")
    if not repository:
        if repository_required or tag or digest:
            raise HubError(f"{text!r} names no repository", "format")
        return Reference(registry=host)
    if not REPOSITORY.fullmatch(repository) or len(repository) > 255:
        raise HubError(f"{text!r}: bad repository name {repository!r} (lower case, digits, . _ - and /)", "format")
    if tag and not TAG.fullmatch(tag):
        raise HubError(f"{text!r}: bad tag {tag!r}", "format")
    return Reference(registry=host, repository=repository, tag=tag, digest=digest)


def _split_digest(path: str, text: str) -> tuple[str, str]:
    path, at, digest = path.partition("@")
    if at and not DIGEST.fullmatch(digest):
        raise HubError(f"{text!r}: bad digest {digest!r} (expected sha256: and 64 lower-case hex digits)", "format")
    return path, digest


def _parse_layout(rest: str, text: str) -> Reference:
    rest, digest = _split_digest(rest, text)
    directory, tag = rest, ""
    head, colon, tail = rest.rpartition(":")
    if colon and "/" not in tail:
        directory, tag = head, tail
    if not directory:
        raise HubError(f"{text!r} names no layout directory", "format")
    if tag and not TAG.fullmatch(tag):
        raise HubError(f"{text!r}: bad tag {tag!r}", "format")
    return Reference(layout=directory, tag=tag, digest=digest)
