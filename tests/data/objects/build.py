#!/usr/bin/env python3
"""Rebuild the test corpus from src/: BPF objects with clang and a gcc-built executable embedding two.

Usage: python3 tests/data/objects/build.py [OUTDIR]   (default: next to this script)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
MULTIARCH_INCLUDE = "/usr/include/x86_64-linux-gnu"

# output name -> (source, target, with debug info/BTF)
BPF_OBJECTS = {
    "multi_prog.o": ("multi_prog.bpf.c", "bpf", True),
    "kfunc_core.o": ("kfunc_core.bpf.c", "bpf", True),
    "kfunc_core_eb.o": ("kfunc_core.bpf.c", "bpfeb", True),
    "legacy_maps.o": ("legacy_maps.bpf.c", "bpf", True),
    "nobtf.o": ("nobtf.bpf.c", "bpf", False),
    "btf_kinds.o": ("btf_kinds.bpf.c", "bpf", True),
}
EMBEDDED = ("multi_prog.o", "nobtf.o")
HOST_EXECUTABLE = "embed_host"


def compile_bpf(source: str, target: str, debug: bool, out: Path) -> None:
    cmd = [
        "clang",
        "-target",
        target,
        "-O2",
        "-c",
        "-Wall",
        "-I",
        MULTIARCH_INCLUDE,
        f"-fdebug-prefix-map={HERE}=.",
        "-fno-ident",
    ]
    if debug:
        cmd.append("-g")
    # Run from here with a relative source name so no build path ends up in the debug info, while clang can
    # still read the source to embed line text in .BTF.ext.
    subprocess.run([*cmd, f"src/{source}", "-o", str(out.resolve())], check=True, cwd=HERE)


def embedded_header(objects: list[Path]) -> str:
    """C header with the objects' bytes, concatenated, as one array (what a skeleton embeds)."""
    blob = b"".join(p.read_bytes() for p in objects)
    rows = [", ".join(f"0x{b:02x}" for b in blob[i : i + 16]) for i in range(0, len(blob), 16)]
    body = ",\n\t".join(rows)
    return (
        f"static const unsigned char embedded_obj[] = {{\n\t{body}\n}};\n"
        f"static const unsigned int embedded_obj_len = {len(blob)};\n"
    )


def build(outdir: Path) -> list[Path]:
    outdir.mkdir(parents=True, exist_ok=True)
    built = []
    for name, (source, target, debug) in BPF_OBJECTS.items():
        compile_bpf(source, target, debug, outdir / name)
        built.append(outdir / name)
    with tempfile.TemporaryDirectory() as tmp:
        header = Path(tmp) / "embedded_obj.h"
        header.write_text(embedded_header([outdir / n for n in EMBEDDED]))
        host = outdir / HOST_EXECUTABLE
        subprocess.run(
            ["gcc", "-O2", "-s", "-I", tmp, str(SRC / "embed_host.c"), "-o", str(host)], check=True
        )
        built.append(host)
    return built


if __name__ == "__main__":
    for path in build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
