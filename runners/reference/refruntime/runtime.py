"""The package manager's operations: install, list, status, upgrade, rollback, uninstall, and the reconcile that
runs under the lock before each of them.

Every operation stages what it makes under `<package>/staged-<N>/` on bpffs, commits the package's record (one SQLite
transaction: the commit point), then moves the staged pins into place and removes what the record no longer names.
`reconcile` finishes or undoes an operation that was killed at any step, from the record and the pins alone:
a staged generation the record names is moved into place, any other is removed (links swapped to it are swapped
back first), pins and package directories no record names are removed, and a package whose pins vanished is
dropped, so `list` always tells what the kernel and bpffs hold."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from bpfcert.runners.serve import RunnerFailure
from bpfcert.uapi import MAP_TYPES, PROG_TYPES
from refruntime import bpffs, libbpf
from refruntime.hub import fetched
from refruntime.loader import UPDATABLE, load_version
from refruntime.state import Store, state_dir

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any, TypeVar

    from refruntime.state import Record

    T = TypeVar("T")

# Fault injection for the crash-consistency tests: SIGKILL ourselves when reaching the named step
# ("install:staged", "install:committed", "upgrade:swapped", "upgrade:committed", "uninstall:committed").
CRASH_ENV = "BPFCERT_REFERENCE_CRASH_AT"


def _step(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        import signal  # only here: its enums cost start-up time in a TCG guest

        os.kill(os.getpid(), signal.SIGKILL)


class Runtime:
    """One state directory (records, lock, kept package files) and a default pin root."""

    def __init__(self, state: Path | None = None, pin_root: Path | None = None) -> None:
        self.store = Store(state or state_dir())
        self.pin_root = pin_root or bpffs.default_root()

    def close(self) -> None:
        self.store.close()

    def locked(self, operation: Callable[..., T], *args: Any) -> T:
        """Run one operation under the lock, after reconciling; a failure the protocol has no code for is
        `internal`, in one line."""
        with self.store.locked():
            try:
                self.reconcile()
                return operation(*args)
            except (OSError, libbpf.LibbpfError) as exc:
                raise RunnerFailure("internal", f"{type(exc).__name__}: {exc}") from None

    # --- operations -------------------------------------------------------------------------------------------

    def install(self, package: str, options: dict[str, Any]) -> dict[str, Any]:
        with fetched(package) as (path, source), _opened(path, self.store) as (manifest, root):
            name = manifest["name"]
            if self.store.get(name) is not None:
                installed = self.store.get(name) or {}
                raise RunnerFailure(
                    "already-installed", f"{name} {installed.get('version')} is installed; upgrade or uninstall it"
                )
            pin_root = Path(options["pin_root"]) if options.get("pin_root") else self.pin_root
            bpffs.ensure_root(pin_root)
            pin_dir = pin_root / name
            if pin_dir.exists() and pin_dir not in self.store.claimed():
                raise RunnerFailure("already-installed", f"{pin_dir} exists and is not this runtime's (another state?)")
            self.store.claim(pin_dir)
            record: Record = {
                "name": name,
                "version": manifest["version"],
                "generation": 1,
                "pin_dir": str(pin_root / name),
                "options": options,
                "previous": None,
                "source": source,
            }
            self._stage(record, manifest, root, None)
            _step("install:staged")
            self.store.put(record)
            _step("install:committed")
        self._finish(record)
        return {"package": self.package_state(record)}

    def upgrade(self, package: str, options: dict[str, Any]) -> dict[str, Any]:
        with fetched(package) as (path, source), _opened(path, self.store) as (manifest, root):
            current = self._installed(manifest["name"])
            return self._replace(current, manifest, root, {**current["options"], **options}, source)

    def rollback(self, name: str) -> dict[str, Any]:
        current = self._installed(name)
        previous = current.get("previous")
        if not previous:
            raise RunnerFailure("no-previous-version", f"{name} {current['version']} has no previous version")
        with _opened(previous["files"], None) as (manifest, root):
            return self._replace(current, manifest, root, previous["options"], previous.get("source"))

    def uninstall(self, name: str) -> dict[str, Any]:
        record = self._installed(name)
        self.store.delete(name)  # commit point: what follows is what reconcile would do for an unrecorded dir
        _step("uninstall:committed")
        bpffs.remove_tree(Path(record["pin_dir"]))
        self.store.release(Path(record["pin_dir"]))
        shutil.rmtree(self.store.packages_dir / name, ignore_errors=True)
        return {"name": name}

    def list(self) -> dict[str, Any]:
        return {"packages": [{"name": r["name"], "version": r["version"]} for r in self.store.records().values()]}

    def status(self, name: str) -> dict[str, Any]:
        return {"package": self.package_state(self._installed(name))}

    # --- steps ------------------------------------------------------------------------------------------------

    def _installed(self, name: str) -> Record:
        record = self.store.get(name)
        if record is None:
            raise RunnerFailure("not-installed", f"{name} is not installed")
        return record

    def _stage(self, record: Record, manifest: dict[str, Any], root: Path, current: Record | None) -> dict[str, Path]:
        """Keep the package files, load into the staging directory and fill the record; on failure remove both."""
        package_dir = Path(record["pin_dir"])
        staging = bpffs.staging_dir(package_dir, record["generation"])
        files = self.store.packages_dir / record["name"] / str(record["generation"])
        try:
            shutil.rmtree(files, ignore_errors=True)
            shutil.copytree(root, files, symlinks=True)
            loaded = load_version(manifest, root, record["options"], staging, current, package_dir)
        except BaseException:
            bpffs.remove_tree(staging)
            shutil.rmtree(files, ignore_errors=True)
            if current is None:
                with contextlib.suppress(OSError):
                    package_dir.rmdir()
            raise
        record.update(programs=loaded.programs, maps=loaded.maps, files=str(files))
        return loaded.swaps

    def _replace(
        self, current: Record, manifest: dict[str, Any], root: Path, options: dict[str, Any],
        source: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Upgrade or roll back: stage the new version (preserved maps reused), swap updatable links to it, commit,
        then move its pins into place (make-before-break for the other attachments: the new link is attached
        before the old one's pin is replaced)."""
        name = current["name"]
        if manifest.get("name") != name:
            raise RunnerFailure("invalid-package", f"the package is {manifest.get('name')!r}, not {name!r}")
        record: Record = {
            "name": name,
            "version": manifest["version"],
            "generation": current["generation"] + 1,
            "pin_dir": current["pin_dir"],
            "options": options,
            "previous": {"version": current["version"], "files": current["files"], "options": current["options"],
                         "source": current.get("source")},
            "source": source,
        }
        swaps = self._stage(record, manifest, root, current)
        package_dir = Path(current["pin_dir"])
        try:
            for prog_name, staged in swaps.items():
                _swap_link(package_dir / f"links/{prog_name}", staged)
        except BaseException:
            self._undo_staging(current)
            raise
        _step("upgrade:swapped")
        self.store.put(record)
        _step("upgrade:committed")
        self._finish(record)
        attachments = [
            {"program": p["name"], "method": "link-update" if p["name"] in swaps else "make-before-break"}
            for p in record["programs"]
            if p["attach"]
        ]
        return {
            "package": self.package_state(record),
            "attachments": attachments,
            "from_version": current["version"],
            "to_version": record["version"],
        }

    def _finish(self, record: Record) -> None:
        """After the commit: move the record's staged pins into place, make every updatable link run the record's
        program, remove pins and kept files the record does not name."""
        package_dir = Path(record["pin_dir"])
        for generation, staged in bpffs.staged_generations(package_dir).items():
            if generation == record["generation"]:
                bpffs.move_into_place(staged, package_dir)
        self._undo_staging(record)
        named = {p["pin"] for p in record["programs"]} | {p["link"] for p in record["programs"] if p["link"]}
        named |= {m["pin"] for m in record["maps"]}
        for rel in bpffs.pins_under(package_dir):
            if rel not in named:
                os.unlink(package_dir / rel)
        keep = {record["files"], (record.get("previous") or {}).get("files")}
        kept_dir = self.store.packages_dir / record["name"]
        for files in kept_dir.iterdir() if kept_dir.is_dir() else ():
            if str(files) not in keep:
                shutil.rmtree(files, ignore_errors=True)

    def _undo_staging(self, record: Record) -> None:
        """Swap every updatable link back to the record's program, then remove every staging directory."""
        package_dir = Path(record["pin_dir"])
        for p in record["programs"]:
            if p["attach"] and p["attach"]["kind"] in UPDATABLE:
                with contextlib.suppress(OSError, libbpf.LibbpfError):
                    _swap_link(package_dir / p["link"], package_dir / p["pin"])
        for staged in bpffs.staged_generations(package_dir).values():
            bpffs.remove_tree(staged)

    def reconcile(self) -> None:
        """Make the records and the pins agree (see the module docstring)."""
        records = self.store.records()
        for record in records.values():
            try:
                self._finish(record)
                missing = [rel for rel in _record_pins(record) if not (Path(record["pin_dir"]) / rel).exists()]
            except OSError as exc:
                missing = [str(exc)]
            if missing:  # removed behind our back: what is left of it is not a working package
                self.store.delete(record["name"])
                bpffs.remove_tree(Path(record["pin_dir"]))
        records = self.store.records()
        owned = {Path(r["pin_dir"]) for r in records.values()}
        for pin_dir in self.store.claimed():
            if pin_dir not in owned:
                bpffs.remove_tree(pin_dir)
                self.store.release(pin_dir)
        for files in self.store.packages_dir.iterdir() if self.store.packages_dir.is_dir() else ():
            if files.name not in records:
                shutil.rmtree(files, ignore_errors=True)

    # --- what the kernel holds --------------------------------------------------------------------------------

    def package_state(self, record: Record) -> dict[str, Any]:
        """The protocol's PackageState, read from the kernel through the pins (ids and types are the kernel's)."""
        package_dir = Path(record["pin_dir"])
        programs = []
        for p in record["programs"]:
            with _pinned(package_dir / p["pin"]) as fd:
                prog_type, prog_id, _ = libbpf.prog_info(fd)
            link_id = None
            if p["link"]:
                with _pinned(package_dir / p["link"]) as fd:
                    _, link_id, _ = libbpf.link_info(fd)
            programs.append(
                {
                    "name": p["name"],
                    "id": prog_id,
                    "type": _enum_name(PROG_TYPES, prog_type),
                    "attach": p["attach"],
                    "link_id": link_id,
                }
            )
        maps = []
        for m in record["maps"]:
            with _pinned(package_dir / m["pin"]) as fd:
                info = libbpf.map_info(fd)
            maps.append(
                {
                    "name": m["name"],
                    "id": info.id,
                    "type": _enum_name(MAP_TYPES, info.type),
                    "pin": str(package_dir / m["pin"]),
                }
            )
        pins = [str(package_dir / rel) for rel in bpffs.pins_under(package_dir)]
        state = {"name": record["name"], "version": record["version"], "programs": programs, "maps": maps, "pins": pins}
        if record.get("source"):
            state["source"] = record["source"]  # installed from a hub: the reference and the digest pinned
        return state


def _record_pins(record: Record) -> list[str]:
    return (
        [p["pin"] for p in record["programs"]]
        + [p["link"] for p in record["programs"] if p["link"]]
        + [m["pin"] for m in record["maps"]]
    )


def _enum_name(names: tuple[str, ...], value: int) -> str:
    return names[value] if 0 <= value < len(names) else str(value)


@contextlib.contextmanager
def _pinned(path: Path) -> Iterator[int]:
    fd = libbpf.obj_get(str(path))
    try:
        yield fd
    finally:
        os.close(fd)


def _swap_link(link_pin: Path, prog_pin: Path) -> None:
    """Make the pinned link run the pinned program (BPF_LINK_UPDATE), unless it already does."""
    with _pinned(link_pin) as link, _pinned(prog_pin) as prog:
        if libbpf.link_info(link)[2] != libbpf.prog_info(prog)[1]:
            libbpf.link_update(link, prog)


@contextlib.contextmanager
def _opened(package: str, store: Store | None) -> Iterator[tuple[dict[str, Any], Path]]:
    """The manifest and root of a package that passed verification: the signature when present (bad-signature),
    the static checks (invalid-package with the failed MUST requirements) and the running kernel's support for
    its `requires` (requirements-unmet). The first two are remembered in `store` by the digest of a package
    directory's content, passed or refused (invalid-package), so that the same bytes are not checked again (a
    changed byte is new content); `requires` is judged again unless this kernel, as booted and with the modules it
    has loaded, met the same manifest's before (`_require`). Kept package files (rollback, no `store`) are not
    verified again."""
    directory = _package_directory(package)
    digest = content_digest(directory) if store is not None and directory is not None else None
    known = _known(directory, digest, store)
    if known is not None:
        if store is not None:
            _require(known[0], store)
        yield known
        return
    from bpfcert.errors import BpfcertError
    from bpfcert.package import open_package

    try:
        pkg = open_package(package)
    except BpfcertError as exc:
        raise RunnerFailure("invalid-package", str(exc)) from None  # for a directory, a race: not the content's
    with pkg:
        manifest = pkg.manifest
        if store is not None:
            _verify(pkg, store, digest)
        assert isinstance(manifest, dict)
        yield manifest, pkg.root


def _package_directory(package: str) -> Path | None:
    """A package directory holding a bpfpkg.json, resolved; None for anything else (an archive, a YAML manifest),
    which only bpfcert's package reader opens."""
    import stat

    root = Path(package)
    try:
        if not stat.S_ISDIR(root.stat().st_mode) or not stat.S_ISREG(os.lstat(root / "bpfpkg.json").st_mode):
            return None
    except OSError:
        return None
    return root.resolve()


def _known(directory: Path | None, digest: str | None, store: Store | None) -> tuple[dict[str, Any], Path] | None:
    """The manifest and root of a package directory whose content (`digest`) passed verification before (kept
    package files, no `store`: copies of such content), read without bpfcert's package reader: its bpfpkg.json is
    among the bytes that passed, and the reader's imports are much of a fresh process's first install in a TCG
    guest. RunnerFailure if that content was refused before; None for new content or no package directory."""
    import json

    if directory is None:
        return None
    if store is not None and digest is not None:
        refusal = store.refusal(digest)
        if refusal is not None:
            raise RunnerFailure(*refusal)
        if not store.verified(digest):
            return None
    manifest = json.loads((directory / "bpfpkg.json").read_bytes())
    return (manifest, directory) if isinstance(manifest, dict) else None


def _verify(pkg: Any, store: Store, digest: str | None) -> None:
    """The signature and static checks, skipped for package directory content (`digest`) that passed before; the
    verdict is remembered only for such content. An archive or a manifest named by path is checked each time: the
    directory around a named manifest may hold other manifests, so its content is not what was judged."""
    if digest is None or not store.verified(digest):
        try:
            _check(pkg)
        except RunnerFailure as exc:  # remembered when the content is invalid, not a signature trusted later
            if digest is not None and exc.code == "invalid-package":
                store.remember_refused(digest, exc.code, str(exc))
            raise
        if digest is not None:
            store.remember_verified(digest)
    _require(pkg.manifest, store)


def _require(manifest: dict[str, Any], store: Store) -> None:
    """RunnerFailure requirements-unmet when the running kernel does not meet the manifest's `requires`. A kernel
    that met them is remembered by boot and loaded modules (what it offers changes with neither, but for modules:
    kfuncs), so a restarted runtime neither probes again nor imports the probes; an unmet answer is not kept."""
    question = _kernel_question(manifest)
    if question is not None and store.requirements_met(question):
        return
    from refruntime.requirements import unmet

    reasons = unmet(manifest)
    if reasons:
        raise RunnerFailure("requirements-unmet", "; ".join(reasons))
    if question is not None:
        store.remember_requirements_met(question)


def _kernel_question(manifest: dict[str, Any]) -> str | None:
    """sha256 of the manifest, this boot's id and the names of the loaded modules; None when the kernel does
    not say which boot this is."""
    import hashlib
    import json

    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as f:
            boot = f.read().strip()
    except OSError:
        return None
    try:
        with open("/proc/modules", "rb") as f:
            modules = sorted(line.split(b" ", 1)[0] for line in f)
    except OSError:  # no module support
        modules = []
    digest = hashlib.sha256(json.dumps(manifest, sort_keys=True).encode())
    digest.update(b"\0" + boot + b"\0" + b"\0".join(modules))
    return digest.hexdigest()


def content_digest(root: Path) -> str:
    """sha256 over every entry under `root`: its relative path, its kind, and a file's bytes or a link's target
    (nothing else is opened: a FIFO or device is not read)."""
    import hashlib
    import stat

    entries = []  # relative paths, walked with os.walk: pathlib's rglob costs several times more in a TCG guest
    for top, dirs, files in os.walk(root):  # a link to a directory is listed, not followed
        entries += [os.path.relpath(os.path.join(top, name), root) for name in dirs + files]
    digest = hashlib.sha256()
    for rel in sorted(entries, key=lambda rel: rel.split(os.sep)):  # in path order, component by component
        path = os.path.join(root, rel)
        mode = os.lstat(path).st_mode
        digest.update(f"{rel}\0{stat.S_IFMT(mode)}\0".encode(errors="surrogateescape"))
        if stat.S_ISLNK(mode):
            digest.update(os.readlink(path).encode(errors="surrogateescape"))
        elif stat.S_ISREG(mode):
            with open(path, "rb") as f:
                digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def _check(pkg: Any) -> None:
    """The signature when present and the static checks."""
    from bpfcert.checks import check_package
    from bpfcert.results import Status
    from bpfcert.signing import verify_manifest

    manifest = pkg.manifest
    if isinstance(manifest, dict) and "signature" in manifest:
        problem = verify_manifest(manifest)
        if problem:
            raise RunnerFailure("bad-signature", problem)
    report = check_package(pkg)
    failed = sorted({r.id for r in report.results if r.status is Status.FAIL and r.level == "MUST"})
    if failed or not isinstance(manifest, dict):
        first = next((r.message for r in report.results if r.status is Status.FAIL), "no manifest")
        raise RunnerFailure("invalid-package", f"failed {', '.join(failed) or 'PKG-MAN-001'}: {first}")
