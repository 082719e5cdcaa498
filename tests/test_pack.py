"""`bpfcert pack`: manifests derived from real objects pass `check` (round trip), and say what the code uses."""

from __future__ import annotations

import json
import os
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpfcert.checks import check_package
from bpfcert.cli import main
from bpfcert.errors import BpfcertError
from bpfcert.package import open_package
from bpfcert.results import Report, Status
from tests.bpf_sources import TRACEPOINT_COUNTER

ROOT = Path(__file__).resolve().parent.parent
XDP_OBJ = ROOT / "examples" / "xdp-counter-v1" / "xdp_counter.bpf.o"
EXAMPLE_OBJECTS = sorted((ROOT / "examples").glob("*/*.o"))
CORPUS = sorted((ROOT / "tests" / "data" / "objects").glob("*.o"))


def pack_and_check(
    tmp_path: Path, *objects: Path, extra: tuple[str, ...] = ()
) -> tuple[dict[str, Any], Report]:
    out = tmp_path / "pkg"
    assert main(["pack", *map(str, objects), "-o", str(out), *extra]) == 0
    manifest = json.loads((out / "bpfpkg.json").read_text())
    with open_package(out) as pkg:
        return manifest, check_package(pkg)


@pytest.mark.parametrize("obj", EXAMPLE_OBJECTS + CORPUS, ids=lambda p: p.name)
def test_round_trip(tmp_path: Path, obj: Path) -> None:
    manifest, report = pack_and_check(tmp_path, obj)
    failed = {r.id for r in report.results if r.level == "MUST" and r.status in (Status.FAIL, Status.ERROR)}
    assert failed == set(), report.results
    assert manifest["programs"], "every corpus object defines programs"


def refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, *argv: str, out: Path | None = None) -> str:
    """Run the CLI in-process; it must exit 2 with one line on stderr and leave nothing behind in tmp_path
    (no package at the output path, no staging directory). Returns the line."""
    out = out or tmp_path / "pkg"
    before = sorted(tmp_path.iterdir())
    assert main([*argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"bpfcert {argv[0]}: error: "), err
    assert sorted(tmp_path.iterdir()) == before
    return err


def test_pack_onto_existing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert "not a directory" in refused(capsys, tmp_path, "pack", str(XDP_OBJ), out=target)
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("where", ["proc", "missing-parent"])
def test_pack_into_unwritable_place(tmp_path: Path, capsys: pytest.CaptureFixture[str], where: str) -> None:
    out = Path("/proc/bpfcert-pack") if where == "proc" else tmp_path / "missing" / "pkg"
    assert str(out) in refused(capsys, tmp_path, "pack", str(XDP_OBJ), out=out)
    assert not out.exists()


def test_pack_file_name_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    raw = os.fsencode(src) + b"/xdp\xff.bpf.o"
    with open(raw, "wb") as f:
        f.write(XDP_OBJ.read_bytes())
    assert "not valid UTF-8" in refused(capsys, tmp_path, "pack", os.fsdecode(raw))


def test_pack_into_directory_named_not_utf8(tmp_path: Path) -> None:
    """The output directory's name is the user's to choose; the "wrote" line shows its bytes escaped even when
    standard output cannot encode them."""
    out = os.fsdecode(os.fsencode(tmp_path) + b"/pkg\xff")
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "pack", str(XDP_OBJ), "-o", out],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path}/pkg\\udcff/bpfpkg.json")
    assert (Path(out) / "bpfpkg.json").is_file()


@pytest.mark.parametrize("name", ["bpfpkg.json", "bpfpkg.yaml"])
def test_pack_object_named_like_the_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(XDP_OBJ, src / name)
    assert name in refused(capsys, tmp_path, "pack", str(src / name))


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_pack_accepts_regular_files_only(tmp_path: Path, kind: str) -> None:
    """A FIFO used to hang and /dev/zero to be read until memory ran out."""
    if kind == "fifo":
        path = tmp_path / "objects.fifo"
        os.mkfifo(path)
    else:
        path = Path("/dev/zero")
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "bpfcert", "pack", str(path), "-o", str(tmp_path / "pkg")],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "not a regular file" in proc.stderr and proc.stderr.count("\n") == 1
    assert time.monotonic() - start < 10
    assert not (tmp_path / "pkg").exists()


def test_pack_size_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """PKG-ART-002's limits: 64 MiB per object, 256 MiB in all."""
    from bpfcert import pack

    src = tmp_path / "src"
    src.mkdir()
    big = src / "big.bpf.o"
    with big.open("wb") as f:
        f.write(XDP_OBJ.read_bytes())
        f.truncate(pack.MAX_ARTIFACT_BYTES + 1)  # sparse
    assert "64 MiB" in refused(capsys, tmp_path, "pack", str(big))
    two = [shutil.copy(XDP_OBJ, src / f"{n}.bpf.o") for n in "ab"]
    monkeypatch.setattr(pack, "MAX_PACKAGE_BYTES", XDP_OBJ.stat().st_size * 3 // 2)
    assert "in all" in refused(capsys, tmp_path, "pack", *map(str, two))


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--name", "Bad Name"], "$.name"),
        (["--version", "1.0"], "$.version"),
        (["--license", "MIT"], "PKG-LIC-"),  # the object calls GPL-only helpers
    ],
)
def test_pack_refuses_what_would_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], reason: str
) -> None:
    """The manifest is validated against the schema and the staged package checked before anything is written."""
    obj = ROOT / "examples" / "core-tracing" / "exec_trace.bpf.o"
    assert reason in refused(capsys, tmp_path, "pack", str(obj), *args)


def test_pack_refuses_gpl_only_helpers_under_mit_section(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """PKG-LIC-003: an object whose license section is MIT calls bpf_trace_printk, which is GPL-only."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    src = tmp_path / "src"
    src.mkdir()
    (src / "printk.bpf.c").write_text(
        "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
        'SEC("xdp") int say(struct xdp_md *ctx) { bpf_printk("hi"); return XDP_PASS; }\n'
        'char LICENSE[] SEC("license") = "MIT";\n'
    )
    obj = src / "printk.bpf.o"
    subprocess.run(
        ["clang", "-target", "bpf", "-O2", "-g", "-c", "-I", "/usr/include/x86_64-linux-gnu",
         str(src / "printk.bpf.c"), "-o", str(obj)],
        check=True,
    )  # fmt: skip
    assert "PKG-LIC-003" in refused(capsys, tmp_path, "pack", str(obj))


def test_write_package_refuses_nan(tmp_path: Path) -> None:
    """NaN is not JSON: the manifest is serialised with allow_nan=False."""
    from bpfcert.pack import Input, write_package

    with pytest.raises(BpfcertError, match="NaN"):
        write_package(tmp_path / "pkg", {"x-ratio": float("nan")}, [Input("a.bpf.o", XDP_OBJ.read_bytes())])
    assert list(tmp_path.iterdir()) == []


def test_write_package_refuses_deep_manifest(tmp_path: Path) -> None:
    """jsonschema_rs cannot convert an instance nested ~250 deep; that is an error, not a crash."""
    from bpfcert.pack import Input, write_package

    deep: list[Any] = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(BpfcertError, match="nested too deeply"):
        write_package(tmp_path / "pkg", {"x-deep": deep}, [Input("a.bpf.o", XDP_OBJ.read_bytes())])
    assert list(tmp_path.iterdir()) == []


def test_pack_into_empty_directory_and_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pkg"
    out.mkdir()
    assert main(["pack", str(XDP_OBJ), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bpfpkg.json", XDP_OBJ.name]
    assert "not empty" in refused(capsys, tmp_path, "pack", str(XDP_OBJ))
    (out / "notes.txt").write_text("mine")
    assert main(["pack", str(XDP_OBJ), "-o", str(out), "--force", "--version", "0.2.0"]) == 0
    assert json.loads((out / "bpfpkg.json").read_text())["version"] == "0.2.0"
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(tmp_path.iterdir()) == [out]
    (out / "bpfpkg.yaml").write_text("name: stale\n")
    before = (out / "bpfpkg.json").read_bytes()
    assert main(["pack", str(XDP_OBJ), "-o", str(out), "--force"]) == 2
    assert "bpfpkg.yaml" in capsys.readouterr().err
    assert (out / "bpfpkg.json").read_bytes() == before


def test_pack_fills_requires_from_code(tmp_path: Path) -> None:
    manifest, _ = pack_and_check(tmp_path, ROOT / "examples" / "core-tracing" / "exec_trace.bpf.o")
    requires = manifest["requires"]
    assert "bpf_ringbuf_reserve" in requires["helpers"]
    assert "ringbuf" in requires["map_types"]
    assert requires["kernel"] == ">=5.8"
    assert "package-portable" in manifest["conformsTo"]


def test_kfunc_object_requires_kfuncs_and_fails_without(tmp_path: Path) -> None:
    """PKG-REQ-002: a kfunc the code calls must be listed in requires.kfuncs."""
    obj = tmp_path.parent / "kfunc_core.o"
    obj.write_bytes((ROOT / "tests" / "data" / "objects" / "kfunc_core.o").read_bytes())
    manifest, _ = pack_and_check(tmp_path, obj)
    assert manifest["requires"]["kfuncs"], "the corpus kfunc object calls a kfunc"
    manifest["requires"]["kfuncs"] = []
    (tmp_path / "pkg" / "bpfpkg.json").write_text(json.dumps(manifest))
    with open_package(tmp_path / "pkg") as pkg:
        failed = {r.id for r in check_package(pkg).results if r.status is Status.FAIL}
    assert "PKG-REQ-002" in failed


def test_legacy_maps_are_a_warning(tmp_path: Path) -> None:
    """PKG-MAP-002 (SHOULD): legacy map sections are flagged, the package stays conformant."""
    _, report = pack_and_check(tmp_path, ROOT / "tests" / "data" / "objects" / "legacy_maps.o")
    legacy = [r for r in report.results if r.id == "PKG-MAP-002"]
    assert legacy and all(r.status is Status.FAIL and r.level == "SHOULD" for r in legacy)


@pytest.mark.parametrize(
    ("tunables", "passes"),
    [
        ([{"name": "target_pid", "type": "u32"}, {"name": "banner", "type": "char[11]"}], True),
        ([{"name": "target_pid", "type": "s32"}], False),
        ([{"name": "target_pid", "type": "u64"}], False),
        ([{"name": "banner", "type": "char[12]"}], False),
        ([{"name": "banner", "type": "u8"}], False),
    ],
)
def test_tunable_types_against_btf(tmp_path: Path, tunables: list[dict[str, str]], passes: bool) -> None:
    """PKG-SVC-003 on a packed real object: integer signedness and size, and char[N] strings."""
    manifest, _ = pack_and_check(tmp_path, ROOT / "tests" / "data" / "objects" / "multi_prog.o")
    manifest["service"] = {"tunables": tunables}
    manifest["conformsTo"] = ["package-core", "package-service"]
    (tmp_path / "pkg" / "bpfpkg.json").write_text(json.dumps(manifest))
    with open_package(tmp_path / "pkg") as pkg:
        results = [r for r in check_package(pkg).results if r.id == "PKG-SVC-003"]
    assert len(results) == len(tunables)
    assert all(r.status is (Status.PASS if passes else Status.FAIL) for r in results), results


# ---- derived requirements: the kernel's BTF, the floor and its reasons, attach keys from section names ----------

CLANG = ["clang", "-O2", "-target", "bpf", "-c", "-I", "/usr/include/x86_64-linux-gnu"]
needs_clang = pytest.mark.skipif(shutil.which("clang") is None, reason="clang not installed")


def compile_bpf(tmp: Path, name: str, body: str, *flags: str) -> Path:
    src, out = tmp / f"{name}.c", tmp / f"{name}.bpf.o"
    prelude = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n"
    src.write_text(prelude + body + 'char LICENSE[] SEC("license") = "GPL";\n')
    subprocess.run([*CLANG, *flags, str(src), "-o", str(out)], check=True)
    return out


def rewrite(manifest: dict[str, Any], root: Path) -> Report:
    (root / "bpfpkg.json").write_text(json.dumps(manifest))
    with open_package(root) as pkg:
        return check_package(pkg)


def outcome(report: Report, req_id: str) -> set[Status]:
    return {r.status for r in report.results if r.id == req_id}


FENTRY_NO_CORE = r"""
struct task_struct { int pid; };
SEC("fentry/do_exit") int on_exit(unsigned long long *ctx) {
    return ((struct task_struct *)ctx[0])->pid & 1;
}
"""


@needs_clang
def test_btf_attached_program_requires_btf(tmp_path: Path) -> None:
    """PKG-REQ-007: an fentry program without CO-RE relocations still needs the kernel's BTF."""
    obj = compile_bpf(tmp_path, "fentry", FENTRY_NO_CORE, "-g")
    manifest, report = pack_and_check(tmp_path, obj)
    assert manifest["requires"]["btf"] is True
    assert outcome(report, "PKG-REQ-007") == {Status.PASS}
    manifest["requires"]["btf"] = False
    failed = [r for r in rewrite(manifest, tmp_path / "pkg").results if r.id == "PKG-REQ-007"]
    assert [r.status for r in failed] == [Status.FAIL]
    assert "on_exit (fentry/do_exit) is a tracing program" in failed[0].message


EGRESS = 'SEC("xdp") int egress(struct xdp_md *ctx) { return ctx->egress_ifindex ? XDP_PASS : XDP_DROP; }\n'


@needs_clang
def test_context_fields_set_the_packed_floor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = compile_bpf(tmp_path, "egress", EGRESS)
    manifest, report = pack_and_check(tmp_path, obj)
    assert manifest["requires"]["kernel"] == ">=5.8"
    assert "requires.kernel >=5.8 (5.8: xdp_md.egress_ifindex)" in capsys.readouterr().out
    assert outcome(report, "PKG-REQ-005") == {Status.PASS}
    manifest["requires"]["kernel"] = ">=5.7"
    (req,) = [r for r in rewrite(manifest, tmp_path / "pkg").results if r.id == "PKG-REQ-005"]
    assert req.status is Status.FAIL and req.message.endswith("floor: 5.8: xdp_md.egress_ifindex")


KPROBE_READ = r"""
SEC("kprobe/do_unlinkat") int peek(void *ctx) {
    int pid = 0; bpf_probe_read_kernel(&pid, sizeof(pid), ctx); return pid & 1;
}
"""


@needs_clang
def test_core_relocations_are_demanded_only_of_kernel_struct_reads(tmp_path: Path) -> None:
    """PKG-PORT-002: a tracepoint that reads only its maps is portable without CO-RE; probe_read without it is not."""
    tracepoint = compile_bpf(tmp_path, "tp", TRACEPOINT_COUNTER, "-g")
    manifest, report = pack_and_check(tmp_path, tracepoint)
    assert "package-portable" in manifest["conformsTo"] and manifest["requires"]["btf"] is False
    assert outcome(report, "PKG-PORT-002") == {Status.PASS}
    kprobe = compile_bpf(tmp_path, "kp", KPROBE_READ, "-g")
    (tmp_path / "kp").mkdir()
    manifest, _ = pack_and_check(tmp_path / "kp", kprobe)
    assert manifest["conformsTo"] == ["package-core"]
    with open_package(tmp_path / "kp" / "pkg") as pkg:
        port = [r for r in check_package(pkg, ["package-portable"]).results if r.id == "PKG-PORT-002"]
    assert [r.status for r in port] == [Status.FAIL]
    assert "reads kernel structs (helper bpf_probe_read_kernel)" in port[0].message


@pytest.mark.parametrize(
    ("section", "attach"),
    [
        ("kprobe.multi/skb-1", {"expected_attach_type": "trace_kprobe_multi"}),
        ("kretprobe.multi/tcp_*", {"expected_attach_type": "trace_kprobe_multi", "retprobe": True}),
        ("kprobe/do_unlinkat+0x10", {"function": "do_unlinkat", "offset": 16}),
        ("kretprobe/do_exit", {"function": "do_exit", "retprobe": True}),
        ("uprobe//usr/lib/libc.so.6:malloc", {"binary": "/usr/lib/libc.so.6", "function": "malloc"}),
        ("uprobe/libc.so.6:malloc", {}),
        ("usdt/libc.so.6:libc:setjmp", {}),
        ("ksyscall/openat", {}),
        ("tp/sched/sched_switch", {"tracepoint": "sched:sched_switch"}),
        ("tp/sched/sched_switch/extra", {}),
        ("raw_tp/sched_switch", {"tracepoint": "sched_switch"}),
        ("fentry/do_exit", {"expected_attach_type": "trace_fentry", "function": "do_exit"}),
        ("lsm/file_open", {"expected_attach_type": "lsm_mac", "function": "file_open"}),
    ],
)
def test_attach_says_only_what_the_section_says(section: str, attach: dict[str, Any]) -> None:
    from bpfcert.knowledge.sections import classify_section
    from bpfcert.pack import _attach

    info = classify_section(section)
    assert info is not None
    assert _attach(info) == attach


PLACEHOLDER = "kprobe/" + "x" * 200


@pytest.fixture(scope="module")
def placeholder_object(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A one-program object in section PLACEHOLDER, whose name a test overwrites in place."""
    if shutil.which("clang") is None:
        pytest.skip("clang not installed")
    body = f'SEC("{PLACEHOLDER}") int prog(void *ctx) {{ return 0; }}\n'
    return compile_bpf(tmp_path_factory.mktemp("placeholder"), "placeholder", body).read_bytes()


_TARGETS = st.one_of(
    st.sampled_from(
        ["do_exit", "do_exit+0x10", "do_exit+8", "skb-1", "*", "tcp_*", "/usr/lib/libc.so.6:malloc", "libc.so.6:malloc",
         "/bin/x:main+4", "x:y:z", "sched/sched_switch", "a/b/c", "sched_switch", "mod:func", "task", "9lives"]
    ),
    st.text(string.ascii_letters + string.digits + "_-.*?:/+@ ", max_size=40),
)  # fmt: skip


@st.composite
def section_names(draw: st.DrawFn) -> str:
    """Names that follow a libbpf convention: a SECTION_DEFS pattern, with any target after a '+' pattern's '/'."""
    from bpfcert.knowledge.sections import SECTION_DEFS

    definition = draw(st.sampled_from(SECTION_DEFS))
    if not definition.pattern.endswith("+"):
        return definition.pattern
    word = definition.pattern[:-1]
    return draw(st.one_of(st.just(word), _TARGETS.map(lambda target: f"{word}/{target}")))


@given(section=section_names())
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_pack_check_round_trip_over_section_names(placeholder_object: bytes, section: str) -> None:
    """derive -> validate -> check: whatever the section name, the packed manifest passes the schema and check."""
    from bpfcert.pack import Input, derive_manifest
    from bpfcert.package import validate_manifest

    old = PLACEHOLDER.encode() + b"\0"
    data = placeholder_object.replace(old, section.encode().ljust(len(old), b"\0"))
    if any(c.isspace() for c in section):  # the schema's section pattern cannot hold it: pack refuses, says why
        with pytest.raises(BpfcertError, match="cannot name a section with spaces"):
            derive_manifest([Input("prog.bpf.o", data)], "prop", "1.0.0", None)
        return
    manifest = derive_manifest([Input("prog.bpf.o", data)], "prop", "1.0.0", None)
    assert manifest["programs"][0]["section"] == section
    assert validate_manifest(manifest) == [], manifest["programs"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "prog.bpf.o").write_bytes(data)
        report = rewrite(manifest, root)
    bad = (Status.FAIL, Status.ERROR, Status.NOT_RUN)
    failed = [r for r in report.results if r.level == "MUST" and r.status in bad]
    assert failed == [], failed
