"""The cache of Debian kernels booted as targets: fetched via a private apt config per architecture, listed
offline.

Layout under the cache dir ($BPFCERT_CACHE, else $XDG_CACHE_HOME/bpfcert, else ~/.cache/bpfcert):
`apt/` (amd64) and `apt-<debian-arch>/` (private sources, lists and archives), `kernels/<debian-version>/` (amd64)
and `kernels/<debian-version>-<debian-arch>/` (extracted packages + kernel.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets.debian import PrivateApt, cache_dir, extract_deb, sha256_file
from bpfcert.targets.machines import MACHINES, Machine
from bpfcert.targets.series import ALL_ARCH, SERIES_SPECS, TargetName, known_names

FETCH_FALLBACKS = 6  # older kernels tried when the newest cannot be downloaded (a mirror missing a point release)


@dataclass(frozen=True)
class CachedKernel:
    """One extracted kernel: its exact versions and the paths QEMU and the initramfs builder need."""

    series: str
    version: str  # Debian package version, e.g. "5.10.262-1"
    release: str  # `uname -r` in the guest, e.g. "5.10.0-46-cloud-amd64"
    package: str
    deb_sha256: str
    root: Path
    arch: str = "x86_64"  # `uname -m` in the guest

    @property
    def machine(self) -> Machine:
        """The machine table's row this kernel boots on."""
        return MACHINES[(self.series, self.arch)]

    @property
    def name(self) -> str:
        """The target name: "6.1", "6.1/arm64"."""
        return self.machine.name

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
    """A whole ELF64 file (either byte order): its section header table lies inside the bytes."""
    if blob[:5] != b"\x7fELF\x02" or len(blob) < 64 or blob[5] not in (1, 2):
        return False
    order = "<" if blob[5] == 1 else ">"
    shoff: int = struct.unpack_from(f"{order}Q", blob, 0x28)[0]
    shentsize, shnum = struct.unpack_from(f"{order}HH", blob, 0x3A)
    return shoff > 0 and shoff + shentsize * shnum <= len(blob)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", version))


def cached_kernels() -> dict[str, CachedKernel]:
    """The newest cached kernel of each target name, read offline from kernel.json files."""
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
                meta.get("arch", "x86_64"),
            )
            name = kernel.name
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged entry (or one of a machine no longer in the table) counts as not cached
        current = newest.get(name)
        if current is None or _version_key(kernel.version) > _version_key(current.version):
            newest[name] = kernel
    return newest


def _machine(name: str, kind: TargetErrorKind) -> Machine:
    """The machine a VM target name spells; TargetError of `kind` if none."""
    try:
        target = TargetName.parse(name)
        return target.machine
    except (TargetError, KeyError):
        raise TargetError(f"unknown kernel series {name!r} (known: {known_names()[6:]})", kind) from None


def cached_kernel(name: str) -> CachedKernel:
    """The cached kernel of target `name` ("6.1", "6.1/arm64"); TargetError("missing-kernel") naming the fetch
    command if absent."""
    name = _machine(name, TargetErrorKind.MISSING_KERNEL).name
    kernel = cached_kernels().get(name)
    if kernel is None:
        raise TargetError(
            f"kernel {name} is not cached; run `bpfcert kernels fetch {name}` first", TargetErrorKind.MISSING_KERNEL
        )
    return kernel


def _resolve(apt: PrivateApt, machine: Machine, excluded: Collection[str] = ()) -> tuple[list[str], str]:
    """The packages of the newest kernel of `machine` (not among `excluded` image packages) and its Debian
    version."""
    spec, pattern = machine.spec, machine.image_package
    prefix = pattern.split("\\")[0]
    listed = apt.run("apt-cache", "pkgnames", prefix).split()
    names = [n for n in listed if re.fullmatch(pattern, n) and n not in excluded]
    if not names:
        raise TargetError(f"no package matching {pattern} in {spec.suite}", TargetErrorKind.FETCH)
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


def fetch(names: list[str], *, if_missing: bool = False, log: Any = print) -> list[CachedKernel]:
    """Download and extract the newest kernel of each target name (skipping those cached at that version), one
    private apt per architecture; a foreign architecture's guest userland is built (or found cached) alongside."""
    machines = {m.name: m for m in (_machine(n, TargetErrorKind.FETCH) for n in names)}
    cached = cached_kernels()
    if if_missing:
        machines = {n: m for n, m in machines.items() if n not in cached or not _userland_ready(m)}
        if not machines:
            return []
    fetched: list[CachedKernel] = []
    for arch in dict.fromkeys(m.arch for m in machines.values()):
        apt = PrivateApt.of(arch)
        apt.configure()
        log(f"updating the private apt lists ({arch.debian})")
        apt.run("apt-get", "update")
        for machine in machines.values():
            if machine.arch != arch:
                continue
            fetched.append(_fetch_one(apt, machine, log))
        if arch.userland == "debian":
            from bpfcert.targets import userland

            root = userland.build(apt, log=log)
            log(f"{arch.debian} userland ready ({root.parent.name})")
    return fetched


def _fetch_one(apt: PrivateApt, machine: Machine, log: Any) -> CachedKernel:
    """The newest kernel of `machine`, cached already or downloaded now; a kernel the archive lists but cannot
    serve (a mirror's 404) gives way to the next older one, up to FETCH_FALLBACKS times."""
    excluded: list[str] = []
    failure: TargetError | None = None
    while True:
        try:
            packages, version = _resolve(apt, machine, excluded)
        except TargetError:
            if failure is None:
                raise
            raise failure from None  # no older one: the download's error is the reason
        suffix = "" if machine.arch.debian == "amd64" else f"-{machine.arch.debian}"
        target = cache_dir() / "kernels" / f"{version}{suffix}"
        if (target / "kernel.json").is_file():
            log(f"{machine.name} already cached ({version})")
            return cached_kernel(machine.name)
        log(f"{machine.name} downloading {' '.join(packages)} ({version})")
        try:
            kernel = _download_extract(apt, machine, packages, version, target)
        except TargetError as exc:
            if exc.kind != TargetErrorKind.FETCH or len(excluded) >= FETCH_FALLBACKS:
                raise
            log(f"{machine.name} {packages[0]} cannot be downloaded ({exc}); trying the next older one")
            excluded.append(packages[0])
            failure = exc
            continue
        log(f"{machine.name} cached ({kernel.release})")
        return kernel


def _userland_ready(machine: Machine) -> bool:
    """Whether `machine` needs no userland fetched: it runs on the host's, or one of its arch is cached."""
    if machine.arch.userland != "debian":
        return True
    from bpfcert.targets import userland

    return userland.cached(machine.arch) is not None


def _download_extract(
    apt: PrivateApt, machine: Machine, packages: list[str], version: str, target: Path
) -> CachedKernel:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
        work = Path(tmp)
        apt.run("apt-get", "download", *packages, cwd=work)
        extracted = work / "root"
        extracted.mkdir()
        sha256 = {}
        for deb in sorted(work.glob("*.deb")):
            sha256[deb.name.split("_")[0]] = sha256_file(deb)
            extract_deb(deb, extracted)
        found = _locate(extracted)
        meta = {
            "series": machine.spec.series,
            "arch": machine.arch.name,
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
    return cached_kernel(machine.name)


def command(args: argparse.Namespace) -> int:
    """`bpfcert kernels list|fetch`."""
    if args.action == "fetch":
        names = [n for arg in args.series for n in arg.split(",") if n]
        fetched = fetch(
            [n for name in names for n in (ALL_ARCH if name == "all-arch" else (name,))] or list(SERIES_SPECS),
            if_missing=args.if_missing,
            log=lambda line: print(f"kernels: {line}", file=sys.stderr, flush=True),
        )
        for kernel in fetched:
            print(f"{kernel.name:11} {kernel.version:24} {kernel.release:32} sha256:{kernel.deb_sha256}")
        return 0
    cached = cached_kernels()
    rows: list[dict[str, Any]] = []
    for machine in MACHINES.values():
        entry = cached.get(machine.name)
        rows.append(
            {
                "series": machine.name,
                "arch": machine.arch.name,
                "suite": machine.spec.suite,
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
    print(f"{'series':11}{'suite':10}{'version':18}{'release':32}cached")
    for row in rows:
        cached_text = "yes" if row["cached"] else f"no (bpfcert kernels fetch {row['series']})"
        version, release = row["version"] or "-", row["release"] or "-"
        print(f"{row['series']:11}{row['suite']:10}{version:18}{release:32}{cached_text}")
    return 0
