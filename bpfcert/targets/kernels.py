"""The cache of Debian cloud kernels booted as targets: fetched via a private apt config, listed offline.

Layout under the cache dir ($BPFCERT_CACHE, else $XDG_CACHE_HOME/bpfcert, else ~/.cache/bpfcert):
`apt/` (private sources, lists and archives), `kernels/<debian-version>/` (extracted packages + kernel.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets.series import SERIES_SPECS, SeriesSpec

DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"


@dataclass(frozen=True)
class CachedKernel:
    """One extracted kernel: its exact versions and the paths QEMU and the initramfs builder need."""

    series: str
    version: str  # Debian package version, e.g. "5.10.262-1"
    release: str  # `uname -r` in the guest, e.g. "5.10.0-46-cloud-amd64"
    package: str
    deb_sha256: str
    root: Path

    @property
    def vmlinuz(self) -> Path:
        return self.root / self._meta("vmlinuz")

    @property
    def modules_dir(self) -> Path:
        return self.root / self._meta("modules_dir")

    @property
    def config(self) -> Path:
        return self.root / self._meta("config")

    def _meta(self, key: str) -> str:
        return str(json.loads((self.root / "kernel.json").read_text())[key])


# Compressed-payload magics in a bzImage and the host tools that decompress them (trailing data tolerated).
PAYLOAD_DECOMPRESSORS = {b"\x02\x21\x4c\x18": ["lz4", "-dc"], b"\x28\xb5\x2f\xfd": ["zstd", "-dc"]}


def uncompressed_kernel(kernel: CachedKernel) -> Path | None:
    """The kernel's vmlinux ELF, extracted once from its bzImage, for QEMU's PVH boot (which skips the
    decompression that is slow under emulation); None where the kernel lacks PVH or no decompressor fits."""
    path = kernel.root / "vmlinux"
    if path.is_file():
        return path
    try:
        if "CONFIG_PVH=y" not in kernel.config.read_text():
            return None
        blob = kernel.vmlinuz.read_bytes()
    except OSError:
        return None
    for magic, argv in PAYLOAD_DECOMPRESSORS.items():
        offset = blob.find(magic)
        if offset < 0 or shutil.which(argv[0]) is None:
            continue
        elf = subprocess.run(argv, input=blob[offset:], capture_output=True, check=False).stdout
        if _complete_elf64(elf):
            with tempfile.NamedTemporaryFile(dir=kernel.root, prefix=".vmlinux-", delete=False) as tmp:
                tmp.write(elf)
            os.replace(tmp.name, path)
            return path
    return None


def _complete_elf64(blob: bytes) -> bool:
    """A whole little-endian ELF64 file: its section header table lies inside the bytes."""
    if blob[:5] != b"\x7fELF\x02" or len(blob) < 64:
        return False
    shoff = int.from_bytes(blob[0x28:0x30], "little")
    shentsize, shnum = int.from_bytes(blob[0x3A:0x3C], "little"), int.from_bytes(blob[0x3C:0x3E], "little")
    return shoff > 0 and shoff + shentsize * shnum <= len(blob)


def cache_dir() -> Path:
    """The bpfcert cache directory (not created)."""
    if os.environ.get("BPFCERT_CACHE"):
        return Path(os.environ["BPFCERT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "bpfcert"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def cached_kernels() -> dict[str, CachedKernel]:
    """The newest cached kernel of each series, read offline from kernel.json files."""
    newest: dict[str, CachedKernel] = {}
    for meta_path in sorted((cache_dir() / "kernels").glob("*/kernel.json")):
        try:
            meta = json.loads(meta_path.read_text())
            kernel = CachedKernel(
                meta["series"],
                meta["version"],
                meta["release"],
                meta["package"],
                meta["deb_sha256"],
                meta_path.parent,
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged entry counts as not cached; `fetch` replaces it
        current = newest.get(kernel.series)
        if current is None or _version_key(kernel.version) > _version_key(current.version):
            newest[kernel.series] = kernel
    return newest


def cached_kernel(series: str) -> CachedKernel:
    """The cached kernel of `series`; TargetError("missing-kernel") naming the fetch command if absent."""
    if series not in SERIES_SPECS:
        raise TargetError(
            f"unknown kernel series {series!r} (known: {', '.join(SERIES_SPECS)})", TargetErrorKind.MISSING_KERNEL
        )
    kernel = cached_kernels().get(series)
    if kernel is None:
        raise TargetError(
            f"kernel {series} is not cached; run `bpfcert kernels fetch {series}` first", TargetErrorKind.MISSING_KERNEL
        )
    return kernel


class PrivateApt:
    """apt-get/apt-cache confined to <cache>/apt: own sources, lists, archives and an empty dpkg status."""

    def __init__(self, root: Path) -> None:
        self.root = root

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
            "-oAPT::Architectures::=amd64",
            "-oAcquire::Languages=none",
            "-oDebug::NoLocking=1",
        ]

    def configure(self) -> None:
        """Write the private sources list: every series' suite from the host's Debian mirrors."""
        for sub in ("sources.list.d", "preferences.d", "state/lists/partial", "cache/archives/partial"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        (self.root / "state" / "status").touch()
        mirror, security = host_mirrors()
        lines = []
        for spec in SERIES_SPECS.values():
            lines.append(f"deb [signed-by={DEBIAN_KEYRING}] {mirror} {spec.suite} main")
            if spec.suite != "sid":
                lines.append(f"deb [signed-by={DEBIAN_KEYRING}] {security} {spec.suite}-security main")
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


def _resolve(apt: PrivateApt, spec: SeriesSpec) -> tuple[list[str], str]:
    """The packages of the newest kernel of `spec` and its Debian version."""
    prefix = spec.image_package.split("\\")[0]
    names = [n for n in apt.run("apt-cache", "pkgnames", prefix).split() if re.fullmatch(spec.image_package, n)]
    if not names:
        raise TargetError(f"no package matching {spec.image_package} in {spec.suite}", TargetErrorKind.FETCH)
    shown = apt.run("apt-cache", "show", "--no-all-versions", *names)
    versions: dict[str, str] = {}
    for stanza in shown.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version): (.+)$", stanza, re.MULTILINE))
        if "Package" in fields and "Version" in fields:
            versions[fields["Package"]] = fields["Version"]
    image = max(versions, key=lambda n: _version_key(versions[n]))
    packages = [image] + [image.replace("linux-binary-", prefix_, 1) for prefix_ in spec.companions]
    return packages, versions[image]


def _locate(root: Path) -> dict[str, str]:
    """Paths (relative to root) of vmlinuz, config and the modules dir in extracted kernel packages."""
    for modules_parent in ("lib/modules", "usr/lib/modules"):
        releases = sorted(p for p in (root / modules_parent).glob("*") if p.is_dir())
        if releases:
            modules_dir = releases[-1]
            break
    else:
        raise TargetError(f"no lib/modules directory in the extracted kernel at {root}", TargetErrorKind.FETCH)
    release = modules_dir.name
    candidates = {
        "vmlinuz": [root / "boot" / f"vmlinuz-{release}", modules_dir / "vmlinuz"],
        "config": [root / "boot" / f"config-{release}", modules_dir / "config"],
    }
    found = {"release": release, "modules_dir": str(modules_dir.relative_to(root))}
    for key, paths in candidates.items():
        hit = next((p for p in paths if p.is_file()), None)
        if hit is None:
            raise TargetError(f"no {key} for {release} in the extracted kernel at {root}", TargetErrorKind.FETCH)
        found[key] = str(hit.relative_to(root))
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(series: list[str], *, if_missing: bool = False, log: Any = print) -> list[CachedKernel]:
    """Download and extract the newest kernel of each series (skipping those cached at that version)."""
    unknown = [s for s in series if s not in SERIES_SPECS]
    if unknown:
        raise TargetError(
            f"unknown kernel series {', '.join(unknown)} (known: {', '.join(SERIES_SPECS)})", TargetErrorKind.FETCH
        )
    cached = cached_kernels()
    if if_missing:
        series = [s for s in series if s not in cached]
        if not series:
            return []
    apt = PrivateApt(cache_dir() / "apt")
    apt.configure()
    log("updating the private apt lists")
    apt.run("apt-get", "update")
    fetched: list[CachedKernel] = []
    for name in series:
        packages, version = _resolve(apt, SERIES_SPECS[name])
        target = cache_dir() / "kernels" / version
        if (target / "kernel.json").is_file():
            log(f"{name} already cached ({version})")
            fetched.append(cached_kernel(name))
            continue
        log(f"{name} downloading {' '.join(packages)} ({version})")
        fetched.append(_download_extract(apt, name, packages, version, target))
        log(f"{name} cached ({fetched[-1].release})")
    return fetched


def _download_extract(apt: PrivateApt, series: str, packages: list[str], version: str, target: Path) -> CachedKernel:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        apt.run("apt-get", "download", *packages, cwd=work)
        extracted = work / "root"
        extracted.mkdir()
        sha256 = {}
        for deb in sorted(work.glob("*.deb")):
            sha256[deb.name.split("_")[0]] = _sha256(deb)
            proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(extracted)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise TargetError(f"dpkg-deb -x {deb.name} failed: {proc.stderr.strip()}", TargetErrorKind.FETCH)
        found = _locate(extracted)
        meta = {
            "series": series,
            "version": version,
            "release": found.pop("release"),
            "package": packages[0],
            "deb_sha256": sha256[packages[0]],
            "debs": sha256,
            **found,
        }
        (extracted / "kernel.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        extracted.rename(target)
    return cached_kernel(series)


def command(args: argparse.Namespace) -> int:
    """`bpfcert kernels list|fetch`."""
    if args.action == "fetch":
        fetched = fetch(
            list(args.series) or list(SERIES_SPECS),
            if_missing=args.if_missing,
            log=lambda line: print(f"kernels: {line}", file=sys.stderr, flush=True),
        )
        for kernel in fetched:
            print(f"{kernel.series:5} {kernel.version:24} {kernel.release:32} sha256:{kernel.deb_sha256}")
        return 0
    cached = cached_kernels()
    rows: list[dict[str, Any]] = []
    for series, spec in SERIES_SPECS.items():
        entry = cached.get(series)
        rows.append(
            {
                "series": series,
                "suite": spec.suite,
                "cached": entry is not None,
                "version": entry.version if entry else None,
                "release": entry.release if entry else None,
                "deb_sha256": entry.deb_sha256 if entry else None,
                "path": str(entry.root) if entry else None,
            }
        )
    if args.format == "json":
        print(json.dumps({"cache": str(cache_dir()), "kernels": rows}, indent=2))
        return 0
    print(f"{'series':7}{'suite':10}{'version':18}{'release':32}cached")
    for row in rows:
        cached_text = "yes" if row["cached"] else f"no (bpfcert kernels fetch {row['series']})"
        version, release = row["version"] or "-", row["release"] or "-"
        print(f"{row['series']:7}{row['suite']:10}{version:18}{release:32}{cached_text}")
    return 0
