"""A foreign architecture's guest userland: Debian packages of that architecture (python3.11, its standard library,
libc6, libbpf1, static busybox for the initramfs, and what they depend on) unpacked without running maintainer
scripts, merged into /usr as Debian's usrmerge lays it out, cached per (architecture, package versions).

bpfcert's own dependencies that are compiled (jsonschema-rs, cryptography, ...) cannot run from the host's venv
in such a guest: their wheels for this architecture, at the host's versions, are unpacked into the root's `site/`,
which the guest lays over the venv's site-packages (pip download from the host's package index). Where there is no
wheel for the architecture (s390x), Debian's build of that module for it (`DEBIAN_FALLBACKS`: cryptography from
python3-cryptography) goes into `site/` instead; jsonschema-rs has none, and bpfcert validates with the pure-Python
jsonschema there (bpfcert.json_schema).

Layout under the cache dir: `userland/<debian-arch>-<digest>/` with `userland.json` (architecture, every package's
version and .deb sha256, every wheel's version and sha256) and `root/` (the files). The guest's /usr is this
root's usr; the rest of its tree is the host's (bpfcert.targets.initramfs).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bpfcert.bundled import PACKAGE
from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets.debian import USERLAND_SUITE, PrivateApt, cache_dir, extract_deb, sha256_file
from bpfcert.targets.machines import Arch

# What the guest agent, the probes and the runners need (iproute2: `ip` for the traffic ops); their Depends and
# Pre-Depends come along.
ROOT_PACKAGES = ("python3.11-minimal", "libpython3.11-stdlib", "libbpf1", "busybox-static", "iproute2")
# Essential-set packages that libraries depend on but a userland run without dpkg does not use.
SKIPPED = frozenset({"dpkg", "debconf", "perl-base", "tar", "install-info", "debianutils", "coreutils", "base-files"})
BUSYBOX = "usr/bin/busybox"
MERGED = ("bin", "sbin", "lib")  # top-level directories that are links into /usr under usrmerge
SITE = "site"  # in the root: the compiled dependencies' wheels for this architecture
# A compiled dependency without a wheel for the architecture -> the Debian packages (of USERLAND_SUITE, for that
# architecture) whose dist-packages hold a build of it; their modules are copied into `site/`.
DEBIAN_FALLBACKS = {"cryptography": ("python3-cryptography", "python3-cffi-backend")}
DIST_PACKAGES = "usr/lib/python3/dist-packages"


def _apt_args(*args: str) -> tuple[str, ...]:
    return (args[0], f"-oAPT::Default-Release={USERLAND_SUITE}", *args[1:])


def resolve(apt: PrivateApt) -> dict[str, str]:
    """The userland's packages and versions: ROOT_PACKAGES and what they depend on (Depends and Pre-Depends,
    the first alternative of each, as USERLAND_SUITE has them; virtual packages and SKIPPED left out)."""
    flags = ("--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances")
    graph = dependency_graph(apt.run("apt-cache", *_apt_args("depends", "--recurse", *flags, *ROOT_PACKAGES)))
    names: set[str] = set()
    todo = set(ROOT_PACKAGES)
    while todo:
        names |= todo
        todo = {d for n in todo for d in graph.get(n, ())} - names - SKIPPED
    shown = apt.run("apt-cache", *_apt_args("show", "--no-all-versions", *sorted(names)))
    versions: dict[str, str] = {}
    for stanza in shown.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version): (.+)$", stanza, re.MULTILINE))
        if "Package" in fields and "Version" in fields:
            versions[fields["Package"]] = fields["Version"]
    missing = [n for n in ROOT_PACKAGES if n not in versions]
    if missing:
        raise TargetError(f"no {', '.join(missing)} for {apt.arch.debian} in {USERLAND_SUITE}", TargetErrorKind.FETCH)
    return versions


def dependency_graph(depends_output: str) -> dict[str, set[str]]:
    """What each package in `apt-cache depends` output needs: per Depends/PreDepends group (a line starting "|"
    continues into the next), the first alternative that is not a virtual "<package>". One `--recurse` call
    lists every package reachable, each once, so the walk over this graph needs no further apt call."""
    graph: dict[str, set[str]] = {}
    needs: set[str] = set()
    group: list[str] = []
    for line in depends_output.splitlines():
        if line and not line[0].isspace():
            needs = graph.setdefault(line.strip(), set())
            group = []
            continue
        match = re.match(r"^ ( |\|)(?:Pre)?Depends: (\S+)", line)
        if not match:
            continue
        group.append(match.group(2))
        if match.group(1) == "|":
            continue
        needs.update([n for n in group if not n.startswith("<")][:1])
        group = []
    return graph


def _key(arch: Arch, versions: dict[str, str]) -> str:
    listing = "\n".join(f"{n}={v}" for n, v in sorted(versions.items()))
    return f"{arch.debian}-{hashlib.sha256(listing.encode()).hexdigest()[:16]}"


def cached(arch: Arch) -> Path | None:
    """The most recently built cached userland of `arch` (its root), offline; None if there is none."""
    metas = sorted((cache_dir() / "userland").glob(f"{arch.debian}-*/userland.json"), key=lambda p: p.stat().st_mtime)
    return metas[-1].parent / "root" if metas else None


def build(apt: PrivateApt, *, log: Callable[[str], object] = print) -> Path:
    """The userland of apt's architecture at today's package versions (and the host's compiled dependencies'
    versions): found in the cache, else downloaded, unpacked and merged (the directory appears whole or not at
    all). Its root."""
    versions = resolve(apt)
    wheels = compiled_distributions()
    pinned = versions | {f"wheel:{n}": v for n, v in wheels.items()}
    pinned |= {f"fallback:{n}": " ".join(p) for n, p in DEBIAN_FALLBACKS.items() if n in wheels}
    target = cache_dir() / "userland" / _key(apt.arch, pinned)
    if (target / "userland.json").is_file():
        (target / "userland.json").touch()  # the newest in use: `cached` picks it
        return target / "root"
    log(f"{apt.arch.debian} userland: downloading {len(versions)} packages")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as tmp:
        work = Path(tmp)
        debs = work / "debs"
        debs.mkdir()
        apt.run("apt-get", *_apt_args("download", *(f"{n}={v}" for n, v in sorted(versions.items()))), cwd=debs)
        root = work / "out" / "root"
        root.mkdir(parents=True)
        sha256 = {}
        for deb in sorted(debs.glob("*.deb")):
            sha256[deb.name.split("_")[0]] = sha256_file(deb)
            extract_deb(deb, root)
        merge_usr(root)
        if not (root / "usr/bin/python3.11").is_file():
            raise TargetError(f"{apt.arch.debian} userland has no /usr/bin/python3.11", TargetErrorKind.FETCH)
        (root / "usr/bin/python3").symlink_to("python3.11")
        compile_stdlib(root)
        wheels_found = unpack_wheels(apt.arch, wheels, work / "wheels", root / SITE, log)
        wheels_found |= debian_fallbacks(apt, wheels_found, work / "fallbacks", root / SITE, log)
        meta = {
            "arch": apt.arch.name,
            "suite": USERLAND_SUITE,
            "packages": {n: {"version": v, "sha256": sha256.get(n)} for n, v in sorted(versions.items())},
            "wheels": wheels_found,
        }
        (work / "out" / "userland.json").write_text(json.dumps(meta, indent=2) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        (work / "out").rename(target)
    return target / "root"


def compiled_distributions() -> dict[str, str]:
    """bpfcert's dependencies (pyproject.toml's, else its installed metadata's), and theirs, that ship compiled
    modules here: name -> installed version."""
    from importlib import metadata

    pyproject = PACKAGE.parent / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        todo = list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
    else:
        todo = list(metadata.requires("bpfcert") or [])
    compiled: dict[str, str] = {}
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = re.match(r"[A-Za-z0-9._-]+", requirement)
        if name is None or "extra ==" in requirement or name.group(0).lower() in seen:
            continue
        seen.add(name.group(0).lower())
        try:
            dist = metadata.distribution(name.group(0))
        except metadata.PackageNotFoundError:
            continue
        if any(str(f).endswith(".so") for f in dist.files or ()):
            compiled[dist.metadata["Name"]] = dist.version
        todo += dist.requires or []
    return compiled


def unpack_wheels(
    arch: Arch, wheels: dict[str, str], downloads: Path, site: Path, log: Callable[[str], object]
) -> dict[str, Any]:
    """Download `wheels` (name -> version) built for `arch` and unpack them into `site`; what was unpacked (version,
    wheel sha256) and, as None, what has no wheel for this architecture (logged: whatever imports it cannot run
    in the guest)."""
    import zipfile

    downloads.mkdir(parents=True, exist_ok=True)
    site.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform={tag}_{arch.name}" for tag in ("manylinux_2_28", "manylinux_2_17", "manylinux2014")]
    found: dict[str, Any] = {}
    for name, version in sorted(wheels.items()):
        before = set(downloads.iterdir())
        argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", *platforms]
        argv += ["--python-version=3.11", "--implementation=cp", f"--dest={downloads}", f"{name}=={version}"]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        wheel = next(iter(set(downloads.iterdir()) - before), None)
        if proc.returncode != 0 or wheel is None:
            log(f"{arch.debian} userland: no {name} {version} wheel for {arch.name}; what imports it cannot run there")
            found[name] = None
            continue
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        found[name] = {"version": version, "sha256": sha256_file(wheel)}
    return found


def debian_fallbacks(
    apt: PrivateApt, wheels: dict[str, Any], work: Path, site: Path, log: Callable[[str], object]
) -> dict[str, Any]:
    """For each compiled dependency that got no wheel (None in `wheels`) and has a DEBIAN_FALLBACKS entry: its
    Debian packages downloaded and their dist-packages copied into `site` (the guest's overlay puts them over the
    host's build). What was used: name -> {"debian": {package: {"version", "sha256"}}}."""
    used: dict[str, Any] = {}
    for name, packages in DEBIAN_FALLBACKS.items():
        if name not in wheels or wheels[name] is not None:
            continue
        debs, tree = work / name / "debs", work / name / "tree"
        debs.mkdir(parents=True)
        apt.run("apt-get", *_apt_args("download", *packages), cwd=debs)
        found: dict[str, Any] = {}
        for deb in sorted(debs.glob("*.deb")):
            package, version = deb.name.split("_")[:2]
            found[package] = {"version": version.replace("%3a", ":"), "sha256": sha256_file(deb)}
            extract_deb(deb, tree)
        if not (tree / DIST_PACKAGES).is_dir():
            log(f"{apt.arch.debian} userland: {', '.join(packages)} hold no {DIST_PACKAGES}; {name} cannot run there")
            continue
        shutil.copytree(tree / DIST_PACKAGES, site, symlinks=True, dirs_exist_ok=True)
        log(f"{apt.arch.debian} userland: {name} from Debian's {', '.join(sorted(found))} (no wheel)")
        used[name] = {"debian": found}
    return used


def compile_stdlib(root: Path) -> None:
    """Write the userland's standard library bytecode with this (host) python where it is a 3.11 too: the guest
    sees the userland read-only, and compiling at each start costs seconds under TCG. A host of another version
    writes nothing the guest would read, so it writes nothing."""
    import compileall
    import sys

    if sys.version_info[:2] == (3, 11):
        compileall.compile_dir(str(root / "usr/lib/python3.11"), quiet=2, workers=1)


def merge_usr(root: Path) -> None:
    """Move /bin, /sbin and /lib under /usr and leave links in their place (Debian's merged-/usr layout), so that
    the guest's /usr alone carries every file of the userland."""
    for name in MERGED:
        top = root / name
        if top.is_symlink() or not top.exists():
            continue
        for item in sorted(top.rglob("*"), key=lambda p: len(p.parts)):
            dest = root / "usr" / item.relative_to(root)
            if item.is_dir() and not item.is_symlink():
                dest.mkdir(parents=True, exist_ok=True)
            elif not dest.exists() and not dest.is_symlink():
                dest.parent.mkdir(parents=True, exist_ok=True)
                item.rename(dest)
        shutil.rmtree(top)
        top.symlink_to(f"usr/{name}")
