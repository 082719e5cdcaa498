"""Load one version of a package with libbpf and pin everything it made into a staging directory.

Each artifact is opened, its `.rodata` tunables set, its preserved maps bound to the installed version's (reuse_fd),
loaded, and its maps, programs and new links pinned under `staging/{maps,progs,links}/<name>`. Programs whose
attachment the installed version already holds through an updatable link are not attached: the caller swaps them
into that link (`swaps`). Closing the object afterwards leaves only what is pinned."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys
from pathlib import Path

from bpfcert.runners.serve import RunnerFailure
from bpfcert.uapi import ATTACH_TYPES
from refruntime import bpffs, libbpf

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any

# Link kinds whose program BPF_LINK_UPDATE can swap atomically (XDP 5.9, cgroup 5.7, netns 5.8, tcx 6.6).
UPDATABLE = frozenset({"xdp", "cgroup", "netns", "tcx"})
VERIFIER_TAIL_LINES = 5
_INT_FORMATS = {
    "bool": "?",
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "u64": "Q",
    "s8": "b",
    "s16": "h",
    "s32": "i",
    "s64": "q",
}


class Loaded:
    """What a load staged: the record's program and map entries, and link swaps still to do (name -> staged
    program pin). A plain class: dataclasses imports inspect, a tenth of a second of start-up in a TCG guest."""

    def __init__(self) -> None:
        self.programs: list[dict[str, Any]] = []
        self.maps: list[dict[str, Any]] = []
        self.swaps: dict[str, Path] = {}


def attach_point(program: dict[str, Any], section: str, options: dict[str, Any]) -> dict[str, str] | None:
    """{kind, target} where a manifest program attaches, None for types attached by their user (socket filters,
    sk_msg...); RunnerFailure attach-failed when a needed target (interface, cgroup) is missing."""
    prog_type, attach = program.get("type"), program.get("attach") or {}
    name = program.get("name")
    suffix = section.split("/", 1)[1] if "/" in section else ""

    def needed(key: str) -> str:
        value = options.get(key) or attach.get(key)
        if not isinstance(value, str) or not value:
            raise RunnerFailure("attach-failed", f"program {name} ({prog_type}) needs options.{key} or attach.{key}")
        return value

    if prog_type == "xdp":
        return {"kind": "xdp", "target": needed("interface")}
    if prog_type in ("sched_cls", "sched_act"):
        return {"kind": "tcx", "target": f"{needed('interface')}:{attach.get('direction', 'ingress')}"}
    if prog_type == "tracepoint":
        return {"kind": "tracepoint", "target": (attach.get("tracepoint") or suffix).replace("/", ":", 1)}
    if prog_type in ("raw_tracepoint", "raw_tracepoint_writable"):
        return {"kind": "raw_tracepoint", "target": attach.get("tracepoint") or suffix}
    if prog_type == "kprobe":
        retprobe = attach.get("retprobe") or section.startswith("kretprobe")
        return {"kind": "kretprobe" if retprobe else "kprobe", "target": attach.get("function") or suffix}
    if prog_type in ("tracing", "lsm"):
        return {"kind": section.split("/", 1)[0].split(".")[0], "target": attach.get("function") or suffix}
    if prog_type in (
        "cgroup_skb",
        "cgroup_sock",
        "cgroup_device",
        "cgroup_sock_addr",
        "cgroup_sysctl",
        "cgroup_sockopt",
        "sock_ops",
    ):
        return {"kind": "cgroup", "target": needed("cgroup")}
    if prog_type in ("sk_lookup", "flow_dissector"):
        return {"kind": "netns", "target": attach.get("netns") or "/proc/self/ns/net"}
    return None


def _ifindex(interface: str) -> int:
    """The interface's index in our network namespace (libc's if_nametoindex through ctypes, which is loaded
    anyway: the socket module's enums cost a fresh process a tenth of a second in a TCG guest)."""
    index: int = ctypes.CDLL(None, use_errno=True).if_nametoindex(interface.encode())
    if index == 0:
        raise RunnerFailure("attach-failed", f"no network interface {interface!r}")
    return index


def _attach(prog: int, point: dict[str, str], section: str) -> int:
    """Attach and return the link's fd (ours to close)."""
    kind, target = point["kind"], point["target"]
    if kind == "tcx":
        interface, _, direction = target.partition(":")
        return libbpf.link_create(libbpf.prog_fd(prog), _ifindex(interface), ATTACH_TYPES.index(f"tcx_{direction}"))
    if kind in ("cgroup", "netns"):
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if kind == "cgroup" else 0)
        try:
            fd = os.open(target, flags)
        except OSError as exc:
            raise RunnerFailure("attach-failed", f"cannot open {kind} {target}: {exc.strerror}") from None
        try:
            link = libbpf.attach(prog, kind, fd)
        finally:
            os.close(fd)
    elif kind == "xdp":
        link = libbpf.attach(prog, "xdp", _ifindex(target))
    elif kind == "tracepoint":
        _ensure_tracefs()
        category, _, event = target.partition(":")
        link = libbpf.attach(prog, "tracepoint", category, event)
    elif kind in ("kprobe", "kretprobe"):
        link = libbpf.attach(prog, "kprobe", kind == "kretprobe", target)
    elif kind == "raw_tracepoint":
        link = libbpf.attach(prog, "raw_tracepoint", target)
    else:  # fentry, fexit, fmod_ret, tp_btf, lsm: the target was resolved from the section at open
        link = libbpf.attach(prog, "auto")
    try:
        return os.dup(libbpf.link_fd(link))
    finally:
        libbpf.link_destroy(link)  # closes libbpf's fd only: the dup (then the pin) keeps the attachment


def _ensure_tracefs() -> None:
    """libbpf finds a tracepoint's id in tracefs: mount it where the kernel has it but nobody mounted it."""
    if not os.path.isdir("/sys/kernel/tracing/events") and not os.path.isdir("/sys/kernel/debug/tracing/events"):
        bpffs.mount("tracefs", "/sys/kernel/tracing")


def _tunable_bytes(tunable: dict[str, Any], value: Any, order: str) -> bytes:
    kind = str(tunable.get("type"))
    try:
        if kind.startswith("char["):
            size = int(kind[5:-1])
            text = str(value).encode()
            if len(text) >= size:
                raise ValueError(f"longer than {size - 1} bytes")
            return text.ljust(size, b"\0")
        return struct.pack(order + _INT_FORMATS[kind], value)
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise RunnerFailure("bad-request", f"tunable {tunable.get('name')}={value!r} is not a {kind}: {exc}") from None


def tunable_values(manifest: dict[str, Any], options: dict[str, Any]) -> dict[str, tuple[dict[str, Any], Any]]:
    """name -> (its manifest entry, the value to set): the defaults, overridden by options.tunables."""
    declared = {t["name"]: t for t in (manifest.get("service") or {}).get("tunables", []) if isinstance(t, dict)}
    given = options.get("tunables") or {}
    if not isinstance(given, dict):
        raise RunnerFailure("bad-request", "options.tunables must be an object")
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise RunnerFailure("bad-request", f"unknown tunable(s) {', '.join(unknown)}; declared: {sorted(declared)}")
    values = {n: (t, t["default"]) for n, t in declared.items() if "default" in t}
    values.update({n: (declared[n], v) for n, v in given.items()})
    return values


def _set_tunables(obj: libbpf.Object, values: dict[str, tuple[dict[str, Any], Any]]) -> None:
    if not values:
        return
    offsets = obj.section_variables(".rodata")
    rodata = next((m for n, m in obj.maps().items() if n.endswith(".rodata")), None)
    wanted = {n: v for n, v in values.items() if n in offsets}
    if rodata is None or not wanted:
        return
    data = bytearray(libbpf.map_initial_value(rodata))
    order = "<" if sys.byteorder == "little" else ">"  # libbpf opens only objects in the host's byte order
    for name, (tunable, value) in wanted.items():
        offset, size = offsets[name]
        encoded = _tunable_bytes(tunable, value, order)
        if len(encoded) != size or offset + size > len(data):
            raise RunnerFailure(
                "invalid-package", f"tunable {name} is {size} bytes in .rodata, not a {tunable['type']}"
            )
        data[offset : offset + size] = encoded
    libbpf.map_set_initial_value(rodata, bytes(data))


def _reuse_map(m: int, name: str, pin: Path) -> None:
    """Bind a map of the new version to the installed one's pinned map, refusing a changed layout."""
    fd = libbpf.obj_get(str(pin))
    try:
        info = libbpf.map_info(fd)
        layout = libbpf.map_layout(m)
        if (info.type, info.key_size, info.value_size, info.max_entries) != layout:
            have = (info.type, info.key_size, info.value_size, info.max_entries)
            raise RunnerFailure(
                "invalid-package",
                f"map {name} cannot be preserved: (type, key, value, entries) {layout} differs from installed {have}",
            )
        libbpf.map_reuse_fd(m, fd)  # libbpf keeps its own duplicate
    finally:
        os.close(fd)


def _verifier_tail(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return " | ".join(lines[-VERIFIER_TAIL_LINES:])


def load_version(
    manifest: dict[str, Any],
    root: Path,
    options: dict[str, Any],
    staging: Path,
    installed: dict[str, Any] | None = None,
    package_dir: Path | None = None,
) -> Loaded:
    """Load every artifact that holds a declared program into `staging` (see the module docstring). `installed`
    is the current record when upgrading (its pins under `package_dir`)."""
    out = Loaded()
    tunables = tunable_values(manifest, options)
    preserved = {m["name"] for m in manifest.get("maps", []) if m.get("preserve_on_upgrade")}
    preserved |= set((manifest.get("lifecycle") or {}).get("preserve_maps", []))
    old_maps = {m["name"]: m for m in (installed or {}).get("maps", [])}
    old_attach = {p["name"]: p.get("attach") for p in (installed or {}).get("programs", []) if p.get("link")}
    programs = [p for p in manifest.get("programs", []) if isinstance(p, dict)]
    for artifact in dict.fromkeys(p["artifact"] for p in programs):
        declared = {p["name"]: p for p in programs if p["artifact"] == artifact}
        path = root / artifact
        try:
            obj = libbpf.Object(str(path))
        except libbpf.LibbpfError as exc:
            raise RunnerFailure("invalid-package", f"{artifact}: {exc}") from None
        try:
            progs = obj.programs()
            for name, prog in progs.items():
                wanted = name in declared and declared[name].get("autoload", True) is not False
                obj.set_autoload(prog, wanted)
                if wanted:
                    obj.capture_verifier_log(name, prog)
            missing = sorted(set(declared) - set(progs))
            if missing:
                raise RunnerFailure("invalid-package", f"{artifact} has no program {', '.join(missing)}")
            _set_tunables(obj, tunables)
            maps = obj.maps()
            for name, m in maps.items():
                if name in preserved and name in old_maps and package_dir is not None:
                    _reuse_map(m, name, package_dir / old_maps[name]["pin"])
            try:
                obj.load()
            except libbpf.LibbpfError as exc:
                log = obj.verifier_log()
                if log:
                    raise RunnerFailure("verifier-rejected", f"{artifact}: {_verifier_tail(log)}") from None
                raise RunnerFailure("internal", f"{artifact}: {exc}") from None
            for name, m in maps.items():
                rel = f"maps/{name.replace('.', '_')}"  # bpffs refuses dots (xdp_coun.rodata)
                _pin(libbpf.map_fd(m), staging / rel)
                out.maps.append({"name": name, "pin": rel, "artifact": artifact})
            for name, program in declared.items():
                if program.get("autoload", True) is False:
                    continue
                prog, section = progs[name], libbpf.section_name(progs[name])
                _pin(libbpf.prog_fd(prog), staging / f"progs/{name}")
                point = attach_point(program, section, options)
                entry = {
                    "name": name,
                    "type": program.get("type"),
                    "pin": f"progs/{name}",
                    "attach": point,
                    "link": f"links/{name}" if point else None,
                }
                out.programs.append(entry)
                if point is None:
                    continue
                if point["kind"] in UPDATABLE and old_attach.get(name) == point:
                    out.swaps[name] = staging / entry["pin"]
                    continue
                try:
                    link = _attach(prog, point, section)
                except libbpf.LibbpfError as exc:
                    raise RunnerFailure(
                        "attach-failed", f"program {name} on {point['kind']} {point['target']}: {exc}"
                    ) from None
                try:
                    _pin(link, staging / f"links/{name}", point["kind"])
                finally:
                    os.close(link)
        finally:
            obj.close()
    return out


# BPF links for perf-event attachments (BPF_LINK_TYPE_PERF_EVENT) arrived in 5.15
PERF_EVENT_KINDS = ("tracepoint", "kprobe", "kretprobe")


def _pin(fd: int, path: Path, kind: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        libbpf.obj_pin(fd, str(path))
    except libbpf.LibbpfError as exc:
        if kind in PERF_EVENT_KINDS and exc.errno == errno.EINVAL:
            raise RunnerFailure(
                "unsupported",
                f"this kernel attaches a {kind} through a perf event, not a BPF link (links for perf events arrived "
                "in 5.15), so the attachment cannot be pinned to outlive the runtime's process",
            ) from None
        raise RunnerFailure("attach-failed", str(exc)) from None
