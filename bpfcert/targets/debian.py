"""Debian's archive as bpfcert uses it: the cache directory, a private apt configuration per architecture (its own
sources, lists and archives; nothing installed on the host), and unpacking a .deb without its maintainer scripts."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets.machines import ARCHES, SERIES_SPECS, Arch

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
USERLAND_SUITE = "bookworm"  # a foreign guest's userland: python3.11, as on the host, so its bytecode is shared


def cache_dir() -> Path:
    """The bpfcert cache directory (not created)."""
    if os.environ.get("BPFCERT_CACHE"):
        return Path(os.environ["BPFCERT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bpfcert"


class PrivateApt:
    """apt-get/apt-cache for one Debian architecture confined to `root`: own sources, lists, archives and an empty
    dpkg status."""

    def __init__(self, root: Path, arch: Arch = ARCHES["x86_64"]) -> None:
        self.root = root
        self.arch = arch

    @classmethod
    def of(cls, arch: Arch) -> PrivateApt:
        """The private apt of `arch` in the cache: <cache>/apt for amd64, <cache>/apt-<debian-arch> otherwise."""
        return cls(cache_dir() / ("apt" if arch.debian == "amd64" else f"apt-{arch.debian}"), arch)

    def options(self) -> list[str]:
        r = self.root
        return [
            f"-oDir::Etc::sourcelist={r / 'sources.list'}",
            f"-oDir::Etc::sourceparts={r / 'sources.list.d'}",
            f"-oDir::Etc::preferences={r / 'preferences'}",
            f"-oDir::Etc::preferencesparts={r / 'preferences.d'}",
            f"-oDir::Etc::trustedparts={'/etc/apt/trusted.gpg.d'}",
            f"-oDir::State={r / 'state'}",
            f"-oDir::State::status={r / 'state' / 'status'}",
            f"-oDir::Cache={r / 'cache'}",
            f"-oAPT::Architecture={self.arch.debian}",
            f"-oAPT::Architectures::={self.arch.debian}",
            "-oAcquire::Languages=none",
            "-oDebug::NoLocking=1",
        ]

    def configure(self) -> None:
        """Write the private sources list: the suite of every series built for this architecture (and the foreign
        userland's suite) from the host's Debian mirrors."""
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        mirror, security = host_mirrors()
        lines = []
        suites = [s.suite for s in SERIES_SPECS.values() if self.arch.name in s.arches]
        for suite in dict.fromkeys([*suites, USERLAND_SUITE]):
            lines.append(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {suite} main")
            if suite != "sid":
                lines.append(f"deb [signed-by={DEBIAN_KEYRING}] {security} {suite}-security main")
        (self.root / "sources.list").write_text("\n".join(lines) + "\n")

    def run(self, tool: str, *args: str, cwd: Path | None = None) -> str:
        argv = [tool, *self.options(), *args]
        try:
            proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise TargetError(f"{tool} not found: fetching kernels needs apt (Debian)", TargetErrorKind.FETCH) from None
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise TargetError(f"{tool} {args[0]} failed: {last}", TargetErrorKind.FETCH)
        return proc.stdout


def host_mirrors() -> tuple[str, str]:
    """The Debian and Debian-security mirror URIs the host's apt is configured with (defaults otherwise)."""
    mirror, security = DEFAULT_MIRROR, DEFAULT_SECURITY_MIRROR
    paths = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in paths:
        if path.suffix not in ("", ".list", ".sources"):
            continue
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"(?:^deb(?:\s+\[[^]]*\])?\s+|^URIs:\s*)(\S+)", text, re.MULTILINE):
            uri = uri.rstrip("/")
            if uri.endswith("/debian-security"):
                security = uri
            elif uri.endswith("/debian"):
                mirror = uri
    return mirror, security


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file (a .deb)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def extract_deb(deb: Path, root: Path) -> None:
    """Unpack a .deb's files under `root` (no maintainer script runs); TargetError("fetch") on failure."""
    proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TargetError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}", TargetErrorKind.FETCH)
