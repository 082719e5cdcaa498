"""What the third-party tool adapters (bpftool, xdp-loader, iproute2) share: running the tool, the package's
manifest, the state file that lets list/status/uninstall work across invocations, and kernel ids read back
through `bpftool -j`.

Not a runner itself (no runner.json): each adapter's runner.py puts this folder on sys.path and imports it.
Every failure is a `RunnerFailure` with a protocol error code and one line naming the tool's own words."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

from bpfcert.runners.serve import RunnerFailure, serve

BPFFS = Path("/sys/fs/bpf")
BPF_OBJ_NAME_LEN = 16  # the kernel keeps the first 15 characters of a program or map name
TOOL_TIMEOUT = 60.0
_VERIFIER_WORDS = ("BPF program load failed", "BEGIN PROG LOAD LOG", "Permission denied (-13)")


def run(argv: list[str], code: str = "internal") -> str:
    """Run a tool; its stdout, or `RunnerFailure(code)` with the tool's last stderr line (verifier rejections
    are recognised whatever `code` says)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerFailure("internal", f"{argv[0]}: {exc}") from None
    if done.returncode != 0:
        err = done.stderr + done.stdout
        if any(word in err for word in _VERIFIER_WORDS):
            code = "verifier-rejected"
        lines = [line.strip() for line in err.splitlines() if line.strip() and not line.startswith("Warning:")]
        why = lines[-1] if lines else f"exit status {done.returncode}"
        raise RunnerFailure(code, f"{' '.join(argv[:3])}: {why}")
    sys.stderr.write(done.stderr)
    return done.stdout


def tool_version(argv: list[str]) -> str:
    """The first version-looking word a tool prints for `argv` (e.g. `bpftool version`), or "unknown"."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    found = re.search(r"v?(\d+\.\d+(?:\.\d+)?)", out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def start_reply(folder: Path, vendor: str, version: str, homepage: str, source: str) -> dict[str, Any]:
    """The `start` reply; name and claims come from the folder's runner.json, so the two cannot disagree."""
    meta = json.loads((folder / "runner.json").read_text())
    runtime = {"name": meta["name"], "vendor": vendor, "version": version, "homepage": homepage, "source": source}
    return {"runtime": runtime, "claims": meta["claims"]}


def ensure_bpffs() -> None:
    """Mount bpffs on /sys/fs/bpf where nothing is (bpftool does the same before pinning; libxdp needs it)."""
    with open("/proc/self/mountinfo") as mounts:
        if any(line.split(" - ")[1].startswith("bpf ") and line.split()[4] == str(BPFFS) for line in mounts):
            return
    run(["mount", "-t", "bpf", "bpf", str(BPFFS)])


# --- the package --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def opened_package(path: str) -> Iterator[tuple[dict[str, Any], Path]]:
    """(manifest, package root) of a directory or archive whose manifest follows the schema, read as the tool's
    user would read it by hand: no digest, signature or `requires` check — the tools do none."""
    from bpfcert.errors import BpfcertError
    from bpfcert.package import open_package, validate_manifest

    try:
        pkg = open_package(path)
    except BpfcertError as exc:
        raise RunnerFailure("invalid-package", str(exc)) from None
    with pkg:
        if pkg.manifest is None or pkg.problems:
            why = pkg.problems[0].message if pkg.problems else "no manifest"
            raise RunnerFailure("invalid-package", f"{path}: {why}")
        errors = validate_manifest(pkg.manifest)
        if errors:
            raise RunnerFailure("invalid-package", f"{path}: manifest {errors[0]}")
        yield pkg.manifest, pkg.root


def artifact_path(root: Path, program: dict[str, Any]) -> Path:
    """The object file a manifest program lives in, inside the package root."""
    path = (root / str(program["artifact"])).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise RunnerFailure("invalid-package", f"artifact {program['artifact']} is not a file in the package")
    return path


def loaded_programs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The manifest's programs that are loaded (autoload unset or true)."""
    return [p for p in manifest.get("programs", []) if p.get("autoload", True)]


def refuse_tunables(options: dict[str, Any], tool: str) -> None:
    if options.get("tunables"):
        raise RunnerFailure("unsupported", f"{tool} cannot set .rodata tunables; it loads the object's defaults")


def interface(options: dict[str, Any], program: dict[str, Any]) -> str:
    """The interface to attach to: options.interface, else the manifest's."""
    name = options.get("interface") or program.get("attach", {}).get("interface")
    if not isinstance(name, str) or not name:
        raise RunnerFailure("bad-request", "XDP and tc programs need options.interface")
    return name


def xdp_mode(program: dict[str, Any], modes: dict[str, str]) -> str:
    """The tool's word for the manifest's XDP mode. `native`, the default, becomes the tool's default mode: the
    kernel attaches in driver mode where the driver has XDP and in generic mode otherwise (lo)."""
    return modes[str(program.get("attach", {}).get("mode", "native"))]


def map_pins(manifest: dict[str, Any], directory: Path) -> dict[str, str]:
    """{map name: pin path} of the manifest's maps pinned by name, as libbpf pins them under `directory`."""
    return {m["name"]: str(directory / m["name"]) for m in manifest.get("maps", []) if m.get("pinning") == "by_name"}


def existing(paths: list[str]) -> list[str]:
    return [p for p in paths if os.path.lexists(p)]


def remove_pins(paths: list[str]) -> None:
    """Unlink pins (files first, then directories, deepest first); ones already gone are fine."""
    for path in sorted(paths, key=lambda p: (os.path.isdir(p), -p.count("/"))):
        with contextlib.suppress(FileNotFoundError):
            if os.path.isdir(path) and not os.path.islink(path):
                os.rmdir(path)
            else:
                os.unlink(path)


# --- kernel ids -----------------------------------------------------------------------------------------------


def bpftool_json(args: list[str]) -> Any:
    return json.loads(run(["bpftool", "-j", *args]) or "null")


def prog_info(prog_id: int) -> dict[str, Any]:
    return dict(bpftool_json(["prog", "show", "id", str(prog_id)]))


def package_state(record: dict[str, Any], programs: list[dict[str, Any]], pins: list[str]) -> dict[str, Any]:
    """The protocol's PackageState from a state record and the programs found in the kernel (each with its
    kernel `id`); the maps are those the programs use, named as the manifest names them."""
    declared = {m["name"][: BPF_OBJ_NAME_LEN - 1]: m["name"] for m in record.get("maps", [])}
    pinned = record.get("map_pins", {})
    maps: dict[int, dict[str, Any]] = {}
    for prog in programs:
        for map_id in prog_info(prog["id"]).get("map_ids", []):
            info = bpftool_json(["map", "show", "id", str(map_id)])
            name = declared.get(info["name"], info["name"])
            maps[map_id] = {"name": name, "id": map_id, "type": info["type"], "pin": pinned.get(name)}
    return {
        "name": record["name"],
        "version": record["version"],
        "programs": programs,
        "maps": sorted(maps.values(), key=lambda m: m["id"]),
        "pins": sorted(pins),
    }


# --- state across invocations ---------------------------------------------------------------------------------


class StateStore:
    """One JSON file per installed package under $BPFCERT_ADAPTER_STATE (default /var/lib/bpfcert-<tool>; on a
    read-only /var, as in bpfcert's guests, /run/bpfcert-<tool>)."""

    def __init__(self, tool: str) -> None:
        chosen = os.environ.get("BPFCERT_ADAPTER_STATE")
        candidates = [Path(chosen)] if chosen else [Path(f"/var/lib/bpfcert-{tool}"), Path(f"/run/bpfcert-{tool}")]
        self.directory = candidates[0]
        for directory in candidates:
            with contextlib.suppress(OSError):
                directory.mkdir(parents=True, exist_ok=True)
                self.directory = directory
                return

    def _file(self, name: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise RunnerFailure("bad-request", f"not a package name: {name!r}")
        return self.directory / f"{name}.json"

    def get(self, name: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._file(name).read_text()))
        except FileNotFoundError:
            raise RunnerFailure("not-installed", f"{name} is not installed") from None

    def has(self, name: str) -> bool:
        return self._file(name).exists()

    def put(self, record: dict[str, Any]) -> None:
        path = self._file(record["name"])
        tmp = path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(record, indent=1))
            tmp.replace(path)
        except OSError as exc:
            raise RunnerFailure("internal", f"cannot record state in {self.directory}: {exc.strerror}") from None

    def remove(self, name: str) -> None:
        self._file(name).unlink(missing_ok=True)

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.directory.glob("*.json"))]


class ToolAdapter:
    """install/status/uninstall/list for a tool that loads one program of a package and attaches it to an
    interface. A subclass says which program types it attaches (`kinds`: manifest type → attach kind) and does
    the tool's own steps in `load_and_attach`, `kernel_programs` and `detach`."""

    tool = ""
    kinds: ClassVar[dict[str, str]] = {}
    why_not: str = ""  # what the tool cannot attach, for the `unsupported` message

    def __init__(self) -> None:
        self.store = StateStore(self.tool)

    def pin_root(self, record: dict[str, Any]) -> Path:
        """The directory under which this tool's packages get their own pin folders (options.pin_root)."""
        return Path(record["options"].get("pin_root") or BPFFS / f"bpfcert-{self.tool}")

    def map_pin_dir(self, record: dict[str, Any]) -> Path:
        """Where the tool's libbpf pins the maps the object marks `pinning: by_name`."""
        raise NotImplementedError

    def load_and_attach(self, record: dict[str, Any], program: dict[str, Any], obj: Path) -> None:
        """Load and attach; add to record["pins"] each bpffs path as soon as it exists (cleanup removes them)."""
        raise NotImplementedError

    def kernel_programs(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The package's programs as the kernel holds them now: {name, id, type, attach, link_id}."""
        raise NotImplementedError

    def detach(self, record: dict[str, Any]) -> None:
        """Detach the package's program if it is still the one attached."""
        raise NotImplementedError

    def install(self, request: dict[str, Any]) -> dict[str, Any]:
        options, path = request.get("options") or {}, request.get("package")
        if not isinstance(options, dict) or not isinstance(path, str):
            raise RunnerFailure("bad-request", "install takes a package path and an options object")
        refuse_tunables(options, self.tool)
        with opened_package(path) as (manifest, root):
            name = manifest["name"]
            if self.store.has(name):
                raise RunnerFailure("already-installed", f"{name} {self.store.get(name)['version']} is installed")
            programs = loaded_programs(manifest)
            if len(programs) != 1:
                raise RunnerFailure(
                    "unsupported", f"the {self.tool} adapter loads one program per package; {name} has {len(programs)}"
                )
            program = programs[0]
            if program["type"] not in self.kinds:
                raise RunnerFailure(
                    "unsupported", f"{self.tool} cannot attach {program['type']} programs: {self.why_not}"
                )
            record = {
                "name": name,
                "version": manifest["version"],
                "package": path,
                "program": {"name": program["name"], "type": program["type"], "section": program["section"]},
                "interface": interface(options, program),
                "maps": [{"name": m["name"]} for m in manifest.get("maps", [])],
                "pins": [],
                "options": options,
            }
            ensure_bpffs()
            record["map_pins"] = map_pins(manifest, self.map_pin_dir(record))
            shared = set(existing(list(record["map_pins"].values())))  # reused by libbpf, not this package's

            def made_map_pins() -> list[str]:
                return [p for p in existing(list(record["map_pins"].values())) if p not in shared]

            try:
                self.load_and_attach(record, program, artifact_path(root, program))
            except RunnerFailure:
                remove_pins(record["pins"] + made_map_pins())
                self._drop_pin_root(record)
                raise
            record["pins"] += made_map_pins()
        self.store.put(record)
        return {"package": self.state(record)}

    def state(self, record: dict[str, Any]) -> dict[str, Any]:
        return package_state(record, self.kernel_programs(record), existing(record["pins"]))

    def status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"package": self.state(self.store.get(str(request.get("name"))))}

    def uninstall(self, request: dict[str, Any]) -> dict[str, Any]:
        record = self.store.get(str(request.get("name")))
        self.detach(record)
        remove_pins(record["pins"])
        self.store.remove(record["name"])
        self._drop_pin_root(record)
        return {"name": record["name"]}

    def _drop_pin_root(self, record: dict[str, Any]) -> None:
        """Remove the default pin root once no package's pins are left in it (a chosen pin_root is the user's)."""
        if not record["options"].get("pin_root"):
            with contextlib.suppress(OSError):  # missing, or still holding another package's pins
                self.pin_root(record).rmdir()

    def list(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {"packages": [{"name": r["name"], "version": r["version"]} for r in self.store.all()]}

    def serve(self, start: dict[str, Any], **unsupported: str) -> None:
        """Answer the protocol; each `unsupported` command answers `unsupported` with its reason."""

        def refusal(reason: str) -> Any:
            def refuse(_request: dict[str, Any]) -> dict[str, Any]:
                raise RunnerFailure("unsupported", reason)

            return refuse

        handlers = {"install": self.install, "status": self.status, "uninstall": self.uninstall, "list": self.list}
        serve(start, {**handlers, **{cmd: refusal(why) for cmd, why in unsupported.items()}})
