"""Benchmark `bpfcert check`: throughput over a directory of packages on one core, the wall time of one
`bpfcert check` process on a ~50 KB object, interpreter start-up included, and the CPU time and peak RSS of
`bpfcert check` on hostile objects (40,000 zero-size functions; 16,000 sections over the whole file; 8,000
programs calling one 255-function chain).

    python bench/bench_check.py [--packages N] [--runs N]

Prints figures; asserts nothing (targets: >= 300 objects/s, <= 150 ms per invocation, <= 1 s on the 40,000
functions, <= 200 MB on the 16,000 sections). Needs clang for the 50 KB object.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


PROGRAM = """
SEC("xdp") int prog{i}(struct xdp_md *ctx) {{
    __u32 key = {i};
    struct counter *c = bpf_map_lookup_elem(&counters, &key);
    if (!c) {{ struct counter z = {{1, ctx->data_end - ctx->data}}; bpf_map_update_elem(&counters, &key, &z, 0); }}
    else {{ __sync_fetch_and_add(&c->packets, 1); __sync_fetch_and_add(&c->bytes, ctx->data_end - ctx->data); }}
    return bpf_get_prandom_u32() % {i} ? XDP_PASS : XDP_DROP;
}}
"""
HEADER = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
struct counter { __u64 packets, bytes; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, struct counter);
         __uint(max_entries, 1024); } counters SEC(".maps");
char LICENSE[] SEC("license") = "Dual BSD/GPL";
"""


def fifty_kb_package(work: Path) -> Path:
    """A package whose single object is >= 50 KB: XDP programs generated in C and built with clang."""
    from bpfcert.cli import main

    for count in range(20, 200, 10):
        src = work / "big.c"
        src.write_text(HEADER + "".join(PROGRAM.format(i=i) for i in range(1, count + 1)))
        obj = work / "big.bpf.o"
        multiarch = subprocess.run(["clang", "-print-multiarch"], capture_output=True, text=True).stdout.strip()
        cmd = ["clang", "-target", "bpf", "-g", "-O2", f"-I/usr/include/{multiarch}", "-c", str(src), "-o", str(obj)]
        subprocess.run(cmd, check=True)
        if obj.stat().st_size >= 50_000:
            break
    out = work / "pkg-big"
    if main(["pack", str(obj), "-o", str(out), "--force"]) != 0:
        raise SystemExit("packing the generated object failed")
    return out


def throughput(packages: list[Path]) -> float:
    from bpfcert.checks import check_package
    from bpfcert.package import open_package

    start = time.perf_counter()
    for path in packages:
        with open_package(path) as pkg:
            check_package(pkg)
    return len(packages) / (time.perf_counter() - start)


def hostile(work: Path) -> None:
    """CPU seconds and peak RSS of one `bpfcert check` of each hostile object (tests/elf_build.py builds them)."""
    from tests import elf_build

    for label, data in [
        ("40,000 zero-size functions", elf_build.many_zero_size_functions(40_000)),
        ("16,000 overlapping sections", elf_build.overlapping_sections(16_000)),
        ("8,000 programs sharing a 255-function chain", elf_build.programs_sharing_a_call_chain(8_000, 255)),
    ]:
        pkg = elf_build.write_package(work / label.split()[0].replace(",", ""), data)
        proc = subprocess.Popen([sys.executable, "-m", "bpfcert", "check", str(pkg)], stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        print(
            f"check of {label} ({len(data) / 1e6:.1f} MB): {usage.ru_utime + usage.ru_stime:.2f} s CPU, "
            f"{usage.ru_maxrss / 1024:.0f} MB peak RSS (exit {os.waitstatus_to_exitcode(status)})"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packages", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    # Installed packages carry bytecode; a source tree under PYTHONDONTWRITEBYTECODE would recompile every run.
    compileall.compile_dir(str(ROOT / "bpfcert"), quiet=2)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        examples = sorted(p.parent for p in ROOT.glob("examples/*/bpfpkg.json"))
        copies = []
        for i in range(args.packages):
            dst = work / f"copy{i}"
            shutil.copytree(examples[i % len(examples)], dst, ignore=shutil.ignore_patterns("src"))
            copies.append(dst)
        throughput(copies[:4])  # warm imports
        rate = throughput(copies)
        print(
            f"check throughput: {rate:.0f} packages/s on one core ({args.packages} packages, 1 object each)"
        )

        pkg = fifty_kb_package(work)
        obj = next(pkg.glob("*.o"))
        exe = shutil.which("bpfcert") or ""
        cmd = [exe, "check", str(pkg)] if exe else [sys.executable, "-m", "bpfcert", "check", str(pkg)]
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True)
            times.append(time.perf_counter() - t0)
        print(
            f"single `bpfcert check` of a {obj.stat().st_size / 1000:.0f} KB object: "
            f"median {statistics.median(times) * 1000:.0f} ms, min {min(times) * 1000:.0f} ms "
            f"over {args.runs} runs (exit {proc.returncode}; {' '.join(cmd[:2])})"
        )
        hostile(work)


if __name__ == "__main__":
    main()
