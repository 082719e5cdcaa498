"""The bundled example packages: committed objects, truthful manifests, reproducible builds, real loads."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import multiprocessing
import os
import shutil
import struct
import subprocess
from multiprocessing.connection import Connection
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PACKAGES = ["core-tracing", "socket-filter", "xdp-counter-v1", "xdp-counter-v2"]

# UAPI helper IDs (enum bpf_func_id in linux/bpf.h) of every helper the examples call.
HELPER_NAMES = {
    1: "bpf_map_lookup_elem",
    2: "bpf_map_update_elem",
    5: "bpf_ktime_get_ns",
    7: "bpf_get_prandom_u32",
    35: "bpf_get_current_task",
    68: "bpf_skb_load_bytes_relative",
    113: "bpf_probe_read_kernel",
    131: "bpf_ringbuf_reserve",
    132: "bpf_ringbuf_submit",
}
# The kernel's license strings (include/linux/module.h) and the SPDX expressions they stand for.
LICENSE_SPDX = {"GPL": "GPL-2.0-only", "Dual BSD/GPL": "BSD-2-Clause OR GPL-2.0-only"}
TUNABLE_SIZES = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "s8": 1, "s16": 2, "s32": 4, "s64": 8, "bool": 1}


def load_build_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_build", EXAMPLES / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = load_build_script()


def manifest(package: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / package / "bpfpkg.json").read_text())
    return loaded


def artifact_paths(package: str) -> list[Path]:
    return [EXAMPLES / package / a["path"] for a in manifest(package)["artifacts"]]


def helpers_called(path: Path) -> set[str]:
    """Names of the helpers the object's code calls (BPF_JMP|BPF_CALL with src_reg 0)."""
    called: set[str] = set()
    with path.open("rb") as stream:
        for section in ELFFile(stream).iter_sections():
            if not section["sh_flags"] & 0x4 or section["sh_type"] != "SHT_PROGBITS":  # SHF_EXECINSTR
                continue
            code = section.data()
            for offset in range(0, len(code), 8):
                opcode, regs, _off, imm = struct.unpack_from("<BBhi", code, offset)
                if opcode == 0x85 and regs >> 4 == 0:
                    called.add(HELPER_NAMES.get(imm, f"unknown helper #{imm}"))
    return called


def section_string(path: Path, name: str) -> str:
    with path.open("rb") as stream:
        section = ELFFile(stream).get_section_by_name(name)
        assert section is not None, f"{path.name} has no {name} section"
        data: bytes = section.data()
    assert data.endswith(b"\0"), f"{name} is not NUL-terminated"
    return data.rstrip(b"\0").decode()


def rodata_symbols(path: Path) -> dict[str, int]:
    """Symbol name -> size for every symbol in .rodata."""
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        symtab = elf.get_section_by_name(".symtab")
        assert isinstance(symtab, SymbolTableSection)
        return {
            s.name: s["st_size"]
            for s in symtab.iter_symbols()
            if isinstance(s["st_shndx"], int)
            and s["st_shndx"]
            and elf.get_section(s["st_shndx"]).name == ".rodata"
        }


def test_every_package_is_present() -> None:
    found = sorted(p.parent.name for p in EXAMPLES.glob("*/bpfpkg.json"))
    assert found == PACKAGES


@pytest.mark.parametrize("package", PACKAGES)
def test_package_has_sources_and_objects(package: str) -> None:
    sources = sorted((EXAMPLES / package / "src").glob("*.c"))
    assert sources, f"{package} has no C sources"
    assert sorted(p.name for p in artifact_paths(package)) == sorted(build.object_name(s) for s in sources)
    for path in artifact_paths(package):
        assert path.read_bytes()[:4] == b"\x7fELF"


@pytest.mark.parametrize("package", PACKAGES)
def test_manifest_is_canonical_json(package: str) -> None:
    """Written exactly as build.py rewrites it, so a rebuild changes nothing but sha256 values."""
    text = (EXAMPLES / package / "bpfpkg.json").read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


@pytest.mark.parametrize("package", PACKAGES)
def test_manifest_is_schema_valid(package: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = ROOT / "spec" / "package.schema.json"
    if not schema_path.exists():
        pytest.skip("spec/package.schema.json not written yet")
    validator = jsonschema.Draft202012Validator(
        json.loads(schema_path.read_text()), format_checker=jsonschema.FormatChecker()
    )
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(manifest(package))]
    assert errors == []


@pytest.mark.parametrize("package", PACKAGES)
def test_artifact_sha256_matches(package: str) -> None:
    for artifact in manifest(package)["artifacts"]:
        digest = hashlib.sha256((EXAMPLES / package / artifact["path"]).read_bytes()).hexdigest()
        assert digest == artifact["sha256"], f"{artifact['path']}: run python3 examples/build.py"


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_programs_and_maps_are_the_objects_inventory(package: str) -> None:
    m = manifest(package)
    for path in artifact_paths(package):
        inventory = build.inventory(path)
        ours = [p for p in m["programs"] if EXAMPLES / package / p["artifact"] == path]
        assert inventory["programs"] == sorted((p["section"], p["name"]) for p in ours)
        ours = [d for d in m["maps"] if EXAMPLES / package / d["artifact"] == path]
        assert inventory["maps"] == sorted((".maps", d["name"]) for d in ours)


@pytest.mark.parametrize("package", PACKAGES)
def test_declared_maps_match_their_btf_definitions(package: str) -> None:
    from bpfcert.elf import BpfObject

    for path in artifact_paths(package):
        defined = {
            m.name: (m.type, m.key_size or 0, m.value_size or 0, m.max_entries, m.pinning)
            for m in BpfObject.open(path).maps
            if m.kind == "btf"
        }
        declared = {
            d["name"]: (d["type"], d["key_size"], d["value_size"], d["max_entries"], d["pinning"])
            for d in manifest(package)["maps"]
            if EXAMPLES / package / d["artifact"] == path
        }
        assert declared == defined


@pytest.mark.parametrize("package", PACKAGES)
def test_requires_helpers_are_exactly_those_called(package: str) -> None:
    called = set().union(*(helpers_called(p) for p in artifact_paths(package)))
    assert sorted(called) == sorted(manifest(package)["requires"]["helpers"])


@pytest.mark.parametrize("package", PACKAGES)
def test_requires_types_cover_the_declarations(package: str) -> None:
    m = manifest(package)
    assert {p["type"] for p in m["programs"]} == set(m["requires"]["prog_types"])
    # .rodata becomes an internal array map wherever there is one
    internal = {"array"} if any(rodata_symbols(p) for p in artifact_paths(package)) else set()
    assert {d["type"] for d in m["maps"]} | internal == set(m["requires"]["map_types"])


@pytest.mark.parametrize("package", PACKAGES)
def test_license_section_agrees_with_manifest(package: str) -> None:
    for path in artifact_paths(package):
        assert LICENSE_SPDX[section_string(path, "license")] == manifest(package)["license"]


@pytest.mark.parametrize("package", PACKAGES)
def test_tunables_are_rodata_variables_of_their_size(package: str) -> None:
    tunables = manifest(package).get("service", {}).get("tunables", [])
    variables: dict[str, int] = {}
    for path in artifact_paths(package):
        variables.update(rodata_symbols(path))
    assert {t["name"]: TUNABLE_SIZES[t["type"]] for t in tunables} == variables


def test_xdp_counter_upgrade_keeps_the_preserved_map() -> None:
    v1, v2 = manifest("xdp-counter-v1"), manifest("xdp-counter-v2")
    assert v1["name"] == v2["name"]
    assert v2["lifecycle"]["upgrade"] == "hot"
    for m in (v1, v2):
        preserved = {d["name"] for d in m["maps"] if d.get("preserve_on_upgrade")}
        assert preserved == set(m["lifecycle"]["preserve_maps"]) == {"proto_counters"}
    assert v1["maps"] == v2["maps"]
    assert v1["service"]["exports"] == v2["service"]["exports"]
    v1_object, v2_object = artifact_paths("xdp-counter-v1")[0], artifact_paths("xdp-counter-v2")[0]
    assert v1_object.read_bytes() != v2_object.read_bytes()


@pytest.mark.skipif(
    not (shutil.which("clang") and shutil.which("llvm-strip")), reason="clang/llvm-strip not installed"
)
@pytest.mark.parametrize("package", PACKAGES)
def test_rebuild_gives_the_same_inventory(package: str, tmp_path: Path) -> None:
    for source in sorted((EXAMPLES / package / "src").glob("*.c")):
        rebuilt = tmp_path / build.object_name(source)
        build.compile_object(EXAMPLES / package, source, rebuilt)
        assert build.inventory(rebuilt) == build.inventory(EXAMPLES / package / rebuilt.name)


# --- loading on the host kernel (root only): each run gets its own bpffs in a private mount namespace ---

CAN_LOAD = os.geteuid() == 0 and all(shutil.which(t) for t in ("bpftool", "unshare"))
needs_root = pytest.mark.skipif(not CAN_LOAD, reason="needs root, bpftool and unshare")

ETHERNET = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01"


def ipv4(protocol: int, payload: bytes) -> bytes:
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), 0, 0, 64, protocol, 0)
    return ETHERNET + b"\x08\x00" + header + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + payload


IPV4_TCP = ipv4(6, struct.pack("!HHIIBBHHH", 1234, 80, 0, 0, 5 << 4, 0x02, 1024, 0, 0))
IPV4_UDP = ipv4(17, struct.pack("!HHHH", 1234, 53, 8, 0))
IPV6_UDP = (
    ETHERNET
    + b"\x86\xdd"
    + struct.pack("!IHBB16s16s", 6 << 28, 8, 17, 64, b"\0" * 16, b"\0" * 16)
    + b"\0" * 8  # UDP header
)


MOUNT_BPFFS = "mount -t bpf bpf /sys/fs/bpf"


def in_private_bpffs(script: str, tmp_path: Path) -> str:
    """Run a shell script with a fresh bpffs on /sys/fs/bpf that vanishes with the namespace."""
    completed = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-ec", f"{MOUNT_BPFFS}\n{script}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


@needs_root
@pytest.mark.parametrize("package", PACKAGES)
def test_objects_load_on_the_host_kernel(package: str, tmp_path: Path) -> None:
    m = manifest(package)
    pin_dir = {p.name: "/sys/fs/bpf/" + p.name.replace(".", "_") for p in artifact_paths(package)}  # no dots
    script = "".join(f"bpftool prog loadall {EXAMPLES / package / a} {d}\n" for a, d in pin_dir.items())
    script += "".join(
        f"bpftool -j prog show pinned {pin_dir[p['artifact']]}/{p['name']}\n" for p in m["programs"]
    )
    loaded = [json.loads(line) for line in in_private_bpffs(script, tmp_path).splitlines() if line]
    assert [(p["name"], p["type"]) for p in loaded] == [(p["name"], p["type"]) for p in m["programs"]]
    assert all(p["gpl_compatible"] for p in loaded)


@needs_root
def test_xdp_counter_v2_counts_into_v1s_pinned_map(tmp_path: Path) -> None:
    (tmp_path / "tcp4.bin").write_bytes(IPV4_TCP)
    (tmp_path / "udp6.bin").write_bytes(IPV6_UDP)
    v1, v2 = (artifact_paths(f"xdp-counter-{v}")[0] for v in ("v1", "v2"))
    out = in_private_bpffs(
        f"bpftool prog loadall {v1} /sys/fs/bpf/v1\n"
        f"bpftool prog loadall {v2} /sys/fs/bpf/v2\n"  # proto_counters is pinned by name: v2 reuses v1's map
        "bpftool prog run pinned /sys/fs/bpf/v1/count_packets data_in tcp4.bin repeat 1 >/dev/null\n"
        "bpftool prog run pinned /sys/fs/bpf/v2/count_packets data_in tcp4.bin repeat 1 >/dev/null\n"
        "bpftool prog run pinned /sys/fs/bpf/v2/count_packets data_in udp6.bin repeat 3 >/dev/null\n"
        "bpftool -j map dump pinned /sys/fs/bpf/proto_counters\n",
        tmp_path,
    )
    counters = {e["formatted"]["key"]: e["formatted"]["value"] for e in json.loads(out)}
    # v1 counted one TCP frame without bytes, v2 one more with its 54 bytes, then three 62-byte UDP frames
    assert counters == {6: {"packets": 2, "bytes": 54}, 17: {"packets": 3, "bytes": 3 * 62}}


@needs_root
def test_socket_filter_passes_only_ipv4_tcp(tmp_path: Path) -> None:
    (tmp_path / "tcp4.bin").write_bytes(IPV4_TCP)
    (tmp_path / "udp4.bin").write_bytes(IPV4_UDP)
    (tmp_path / "udp6.bin").write_bytes(IPV6_UDP)
    obj = artifact_paths("socket-filter")[0]
    out = in_private_bpffs(
        f"bpftool prog loadall {obj} /sys/fs/bpf/p pinmaps /sys/fs/bpf/m\n"
        "bpftool -j prog run pinned /sys/fs/bpf/p/ipv4_tcp_only data_in tcp4.bin repeat 1\n"
        "bpftool -j prog run pinned /sys/fs/bpf/p/ipv4_tcp_only data_in udp4.bin repeat 1\n"
        "bpftool -j prog run pinned /sys/fs/bpf/p/ipv4_tcp_only data_in udp6.bin repeat 2\n"
        "bpftool -j map dump pinned /sys/fs/bpf/m/verdict_counters\n",
        tmp_path,
    )
    tcp4_run, udp4_run, udp6_run, counters = (json.loads(line) for line in out.splitlines() if line)
    assert tcp4_run["retval"] == len(IPV4_TCP) - len(ETHERNET) - 2  # the whole packet from its IP header on
    assert udp4_run["retval"] == udp6_run["retval"] == 0
    assert [e["formatted"]["value"] for e in counters] == [1, 2, 1]  # accepted, not IPv4, not TCP


CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 0x40000
EXEC_EVENT = struct.Struct("<QIII16s4x")  # struct exec_event, padded to 8 bytes


def trace_one_exec(obj_path: str, results: Connection) -> None:
    """In a forked child: mount a private tracefs, attach trace_exec, run /bin/true, send back its records."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWNS) or libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None):
            raise OSError(ctypes.get_errno(), "unshare/mount")
        libc.mount(b"tracefs", b"/sys/kernel/tracing", b"tracefs", 0, None)
        libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
        for name in ("bpf_object__open_file", "bpf_object__find_program_by_name", "bpf_program__attach"):
            getattr(libbpf, name).restype = ctypes.c_void_p
        libbpf.bpf_object__find_map_by_name.restype = ctypes.c_void_p
        libbpf.ring_buffer__new.restype = ctypes.c_void_p
        callback_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        libbpf.ring_buffer__new.argtypes = [ctypes.c_int, callback_type, ctypes.c_void_p, ctypes.c_void_p]
        for name in ("bpf_object__load", "bpf_program__attach", "bpf_map__fd"):
            getattr(libbpf, name).argtypes = [ctypes.c_void_p]
        libbpf.ring_buffer__poll.argtypes = [ctypes.c_void_p, ctypes.c_int]
        obj = libbpf.bpf_object__open_file(obj_path.encode(), None)
        if not obj or libbpf.bpf_object__load(ctypes.c_void_p(obj)):
            raise OSError(ctypes.get_errno(), "open/load")
        program = libbpf.bpf_object__find_program_by_name(ctypes.c_void_p(obj), b"trace_exec")
        if not libbpf.bpf_program__attach(program):
            raise OSError(ctypes.get_errno(), "attach")
        records: list[tuple[int, int, int, int, bytes]] = []

        def on_record(_ctx: int, data: int, size: int) -> int:
            records.append(EXEC_EVENT.unpack(ctypes.string_at(data, size)))
            return 0

        callback = callback_type(on_record)
        events = libbpf.bpf_object__find_map_by_name(ctypes.c_void_p(obj), b"exec_events")
        ring = libbpf.ring_buffer__new(libbpf.bpf_map__fd(events), callback, None, None)
        subprocess.run(["/bin/true"], check=True)
        libbpf.ring_buffer__poll(ctypes.c_void_p(ring), 1000)
        results.send([r for r in records if r[3] == os.getpid()])
    except Exception as exc:
        results.send(repr(exc))


@needs_root
def test_core_tracing_reports_an_exec_with_core_read_fields() -> None:
    """CO-RE relocations resolve against the host kernel's BTF and the record matches the exported schema."""
    if not Path("/sys/kernel/btf/vmlinux").exists():
        pytest.skip("the host kernel has no BTF")
    receiver, sender = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(
        target=trace_one_exec, args=(str(artifact_paths("core-tracing")[0]), sender)
    )
    child.start()
    received = receiver.recv() if receiver.poll(30) else "no answer from the tracing child"
    child.join(10)
    assert isinstance(received, list), received
    assert len(received) == 1
    timestamp_ns, pid, tgid, ppid, comm = received[0]
    assert timestamp_ns > 0 and pid == tgid != ppid == child.pid
    assert comm.rstrip(b"\0") == b"true"
    record = manifest("core-tracing")["service"]["exports"][0]["record"]
    assert list(record["properties"]) == ["timestamp_ns", "pid", "tgid", "ppid", "comm"]
    assert EXEC_EVENT.size == 40


@pytest.mark.parametrize("package", PACKAGES)
def test_bpfeb_build_is_the_package_built_big_endian(package: str) -> None:
    """examples/bpfeb/<package>/ is what build.py writes: the package's manifest with every ELF artifact `arch:
    bpfeb` and the sha256 of the big-endian objects beside it (ELF data encoding 2, MSB), so that a manifest edited
    without a rebuild is caught."""
    big = EXAMPLES / "bpfeb" / package
    expected = manifest(package)
    for artifact in expected["artifacts"]:
        data = (big / artifact["path"]).read_bytes()
        assert data[:4] == b"\x7fELF" and data[5] == 2, f"{artifact['path']}: run python3 examples/build.py"
        artifact["sha256"] = hashlib.sha256(data).hexdigest()
        if artifact.get("kind") == "elf":
            artifact["arch"] = "bpfeb"
    assert json.loads((big / "bpfpkg.json").read_text()) == expected, "run python3 examples/build.py"
