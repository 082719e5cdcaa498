"""A client of one OCI distribution registry. The `oras` SDK provides the HTTP session and the registry
authentication (bearer-token dance, Docker config credentials); the requests are made here, because bpfcert needs
what the SDK does not give: the exact manifest bytes (their digest is the package's identity), index and custom
media types, bounded reads, a timeout instead of retrying for minutes, and the verification of every manifest and
blob against its digest before it is used (the SDK's pull does not verify)."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bpfcert.errors import HubError
from bpfcert.hub.artifact import INDEX_TYPE, MANIFEST_TYPE, Blob
from bpfcert.hub.reference import Reference
from bpfcert.hub.verify import BLOB_MAX_BYTES, MANIFEST_MAX_BYTES, check_descriptor, check_digest, digest_of

if TYPE_CHECKING:
    import requests

TIMEOUT = 30.0  # seconds for one request to a registry
ASK_FIRST = 1 << 20  # a blob this large is uploaded only if the registry does not have it already
CONNECTIONS = 8  # kept open to one registry: enough for the threads that fetch a package's blobs at once
ACCEPT = f"{MANIFEST_TYPE}, {INDEX_TYPE}"


@dataclass(frozen=True)
class Fetched:
    """A manifest or index as served, verified: its bytes, media type and digest."""

    data: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Page:
    """One page of a tags list or catalogue and the `Link` header's next page (a URL path), if any."""

    items: list[str]
    next: str | None


class Registry:
    """The registry a Reference names (plain HTTP on loopback, HTTPS elsewhere); its connections are kept for the
    next request, also from other threads (the blobs of a package are fetched at once)."""

    def __init__(self, ref: Reference) -> None:
        import oras.provider
        import requests.adapters

        self.ref = ref
        self.base = ref.base_url
        self.oras = oras.provider.Registry(hostname=ref.registry, insecure=self.base.startswith("http:"))
        # the environment's proxies and CA bundle, read once for this registry rather than on every request
        session = self.oras.session
        settings = session.merge_environment_settings(self.base, {}, None, None, None)
        session.proxies, session.verify, session.cert = settings["proxies"], settings["verify"], settings["cert"]
        session.trust_env = False
        session.mount(self.base + "/", requests.adapters.HTTPAdapter(pool_maxsize=CONNECTIONS))

    def close(self) -> None:
        self.oras.session.close()

    def request(self, method: str, path: str, *, headers: dict[str, str] | None = None, data: bytes | None = None,
                limit: int = MANIFEST_MAX_BYTES) -> tuple[requests.Response, bytes]:
        """One request (authenticating once through oras on 401), its response and at most `limit` body bytes;
        HubError "unreachable" for a registry that does not answer, "protocol" for a body over the limit."""
        import requests
        import urllib3

        url = path if path.startswith(("http://", "https://")) else self.base + path
        headers = dict(headers or {})
        try:
            response = self._send(method, url, headers, data)
            if response.status_code == 401:
                response.close()
                headers, changed = self.oras.auth.authenticate_request(response, headers)
                if changed:
                    response = self._send(method, url, headers, data)
            try:
                body = response.raw.read(limit + 1, decode_content=True)  # b"" for HEAD, which ends it
            except BaseException:
                response.close()
                raise
            # a body read to its end leaves the connection to the next request; one over the limit closes it
            (response.raw.release_conn if len(body) <= limit else response.close)()
        except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
            raise HubError(f"registry {self.ref.registry} unreachable: {type(exc).__name__}: "
                           f"{str(exc).splitlines()[0][:200]}", "unreachable") from None
        if len(body) > limit:
            raise HubError(f"{method} {path}: the registry answered over {limit} bytes; refused", "protocol")
        return response, body

    def _send(self, method: str, url: str, headers: dict[str, str], data: bytes | None) -> requests.Response:
        response: requests.Response = self.oras.session.request(
            method, url, headers=headers, data=data, stream=True, timeout=TIMEOUT, allow_redirects=True
        )
        return response

    def _fail(self, what: str, response: requests.Response, body: bytes) -> HubError:
        kind = "not-found" if response.status_code == 404 else "protocol"
        detail = body[:200].decode("utf-8", "replace").strip().replace("\n", " ")
        return HubError(f"{what}: HTTP {response.status_code} from {self.ref.registry}"
                        + (f": {detail}" if detail else ""), kind)

    # --- manifests -----------------------------------------------------------------------------------------------

    def manifest(self, ref: Reference) -> Fetched:
        """The manifest or index `ref` names, verified: against the digest asked for, or (by tag) against the
        Docker-Content-Digest the registry claims."""
        response, body = self.request("GET", f"/v2/{ref.repository}/manifests/{ref.pinned}",
                                      headers={"Accept": ACCEPT})
        if response.status_code != 200:
            raise self._fail(f"manifest {ref}", response, body)
        if ref.digest:
            check_digest(body, ref.digest, f"manifest {ref}")
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed:
            check_digest(body, claimed, f"manifest {ref}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Fetched(body, media_type, digest_of(body))

    def manifest_digest(self, ref: Reference) -> str | None:
        """The digest the registry gives for `ref` (HEAD), or None if it has none."""
        response, _ = self.request("HEAD", f"/v2/{ref.repository}/manifests/{ref.pinned}",
                                   headers={"Accept": ACCEPT})
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._fail(f"manifest {ref}", response, b"")
        return response.headers.get("Docker-Content-Digest")

    def put_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """Store a manifest under `ref`'s tag (or digest); its digest, checked against the registry's answer."""
        response, body = self.request("PUT", f"/v2/{ref.repository}/manifests/{ref.pinned}",
                                      headers={"Content-Type": media_type}, data=data)
        if response.status_code not in (200, 201):
            raise self._fail(f"pushing manifest {ref}", response, body)
        digest = digest_of(data)
        claimed = response.headers.get("Docker-Content-Digest")
        if claimed and claimed != digest:
            raise HubError(f"pushing manifest {ref}: the registry says {claimed}, the bytes are {digest}",
                           "digest-mismatch")
        return digest

    def delete_manifest(self, ref: Reference) -> int:
        """DELETE the manifest `ref` names; the HTTP status (202 when deleted: distribution needs a digest)."""
        response, _ = self.request("DELETE", f"/v2/{ref.repository}/manifests/{ref.pinned}")
        return response.status_code

    # --- blobs ---------------------------------------------------------------------------------------------------

    def blob(self, repository: str, descriptor: dict[str, Any]) -> bytes:
        """The blob a descriptor names, verified against its digest and size."""
        digest = str(descriptor.get("digest", ""))
        size = descriptor.get("size")
        if not isinstance(size, int) or size < 0 or size > BLOB_MAX_BYTES:
            raise HubError(f"blob {digest} of {repository}: size {size!r} outside 0..{BLOB_MAX_BYTES}", "format")
        response, body = self.request("GET", f"/v2/{repository}/blobs/{digest}", limit=size)
        if response.status_code != 200:
            raise self._fail(f"blob {digest} of {repository}", response, body)
        check_descriptor(body, descriptor, f"blob {digest} of {self.ref.registry}/{repository}")
        return body

    def put_blob(self, repository: str, blob: Blob) -> None:
        """Upload a blob unless the registry has it already (a blob under ASK_FIRST bytes is sent without asking: the
        question costs a round trip as the upload does): one monolithic POST with its digest, or POST then PUT where
        the registry opens an upload session instead (both in the distribution spec)."""
        digest = blob.descriptor["digest"]
        if len(blob.data) >= ASK_FIRST:
            head, _ = self.request("HEAD", f"/v2/{repository}/blobs/{digest}")
            if head.status_code == 200:
                return
        octets = {"Content-Type": "application/octet-stream"}
        response, body = self.request("POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", data=blob.data,
                                      headers=octets)
        if response.status_code == 201:
            return
        location = response.headers.get("Location")
        if response.status_code != 202 or not location:
            raise self._fail(f"starting the upload of {digest} to {repository}", response, body)
        separator = "&" if "?" in location else "?"
        url = urllib.parse.urljoin(self.base + "/", location) + f"{separator}digest={digest}"
        response, body = self.request("PUT", url, data=blob.data, headers=octets)
        if response.status_code != 201:
            raise self._fail(f"uploading {digest} to {repository}", response, body)

    # --- listings ------------------------------------------------------------------------------------------------

    def tags_page(self, repository: str, n: int | None = None, url: str | None = None) -> Page:
        path = url or f"/v2/{repository}/tags/list" + (f"?n={n}" if n else "")
        return self._page(path, "tags", f"tags of {repository}")

    def catalogue_page(self, n: int | None = None, url: str | None = None) -> Page:
        return self._page(url or "/v2/_catalog" + (f"?n={n}" if n else ""), "repositories", "catalogue")

    def tags(self, repository: str, n: int | None = None) -> list[str]:
        return self._all(lambda url: self.tags_page(repository, n, url))

    def catalogue(self, n: int | None = None) -> list[str]:
        return self._all(lambda url: self.catalogue_page(n, url))

    def _all(self, fetch: Any) -> list[str]:
        items: list[str] = []
        page: Page = fetch(None)
        for _ in range(10_000):  # a registry whose Link header loops stops somewhere
            items += page.items
            if not page.next:
                return items
            page = fetch(page.next)
        raise HubError("the registry's pagination does not end (10,000 pages)", "protocol")

    def _page(self, path: str, key: str, what: str) -> Page:
        import json

        response, body = self.request("GET", path)
        if response.status_code != 200:
            raise self._fail(what, response, body)
        try:
            items = json.loads(body).get(key) or []
        except (ValueError, AttributeError):
            raise HubError(f"{what}: the registry's answer is not a JSON object", "protocol") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise HubError(f"{what}: {key} is not a list of names", "protocol")
        link = response.links.get("next", {}).get("url")
        return Page(items, link)
