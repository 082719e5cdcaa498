#!/usr/bin/env python3
"""Rebuild the bundled example packages reproducibly.

`python3 examples/build.py` compiles every `examples/<package>/src/*.c` into `<package>/<stem>.bpf.o` and
refreshes the artifact sha256 values in each `bpfpkg.json`; the same sources built big-endian (`clang -target
bpfeb`, for s390x) make `examples/bpfeb/<package>/`, whose manifest is the package's own with `arch: bpfeb`.
`--check` compiles into a temporary directory instead and reports, per object, whether the rebuilt program/map
inventory (and the bytes) match the committed object; it exits 1 when an inventory differs. Flags are fixed so
that the same clang produces the same bytes anywhere: no absolute paths (the package directory is mapped to `.`),
DWARF stripped (BTF and BTF.ext are kept), ISA v3.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent
BPFEB_DIR = EXAMPLES_DIR / "bpfeb"  # the big-endian builds, one package directory each
CLANG_FLAGS = ["-g", "-O2", "-mcpu=v3", "-Wall", "-Werror", "-fno-ident"]
CLANG_TARGETS = {"bpfel": "bpf", "bpfeb": "bpfeb"}  # `bpf` is the host's order: little-endian here

# An object's inventory from its symtab: programs as (section, function), maps as (section, variable).
Inventory = dict[str, list[tuple[str, str]]]


def packages() -> list[Path]:
    """Every example package directory (one that holds a src/ folder of C sources)."""
    return sorted(p for p in EXAMPLES_DIR.iterdir() if (p / "src").is_dir())


def object_name(source: Path) -> str:
    return f"{source.stem}.bpf.o"


def multiarch_include() -> list[str]:
    """Flags adding the host's multiarch include directory, home of <asm/types.h> on Debian."""
    triple = subprocess.run(["clang", "-print-multiarch"], capture_output=True, text=True, check=True).stdout
    directory = Path("/usr/include") / triple.strip()
    return ["-idirafter", str(directory)] if triple.strip() and directory.is_dir() else []


def compile_object(package: Path, source: Path, output: Path, arch: str = "bpfel") -> None:
    """Compile one source for `arch` (bpfel or bpfeb), run from the package directory so that only relative paths
    reach BTF.ext."""
    command = [
        "clang",
        "-target",
        CLANG_TARGETS[arch],
        *CLANG_FLAGS,
        f"-fdebug-prefix-map={package}=.",
        *multiarch_include(),
        "-c",
        str(source.relative_to(package)),
        "-o",
        str(output),
    ]
    subprocess.run(command, cwd=package, check=True)
    subprocess.run(["llvm-strip", "-g", str(output)], check=True)


def inventory(path: Path) -> Inventory:
    """Programs (global functions in executable sections) and maps (symbols in .maps) of a BPF object."""
    from elftools.elf.constants import SH_FLAGS
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    programs: list[tuple[str, str]] = []
    maps: list[tuple[str, str]] = []
    with path.open("rb") as stream:
        elf = ELFFile(stream)
        symtab = elf.get_section_by_name(".symtab")
        if not isinstance(symtab, SymbolTableSection):
            raise SystemExit(f"{path}: no symbol table")
        for symbol in symtab.iter_symbols():
            index = symbol["st_shndx"]
            if not isinstance(index, int) or index == 0:
                continue
            section = elf.get_section(index)
            if section.name == ".maps":
                maps.append((section.name, symbol.name))
            elif (
                section["sh_flags"] & SH_FLAGS.SHF_EXECINSTR
                and symbol["st_info"]["type"] == "STT_FUNC"
                and symbol["st_info"]["bind"] == "STB_GLOBAL"
            ):
                programs.append((section.name, symbol.name))
    return {"programs": sorted(programs), "maps": sorted(maps)}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refresh_manifest(package: Path) -> None:
    """Write the current objects' sha256 into the package's bpfpkg.json, keeping everything else as it is."""
    manifest_path = package / "bpfpkg.json"
    if not manifest_path.exists():
        return
    manifest = json.loads(manifest_path.read_text())
    for artifact in manifest.get("artifacts", []):
        artifact["sha256"] = sha256(package / artifact["path"])
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")


def write_bpfeb_manifest(package: Path) -> None:
    """examples/bpfeb/<package>/bpfpkg.json: the package's manifest with every ELF artifact `arch: bpfeb`."""
    manifest = json.loads((package / "bpfpkg.json").read_text())
    for artifact in manifest.get("artifacts", []):
        if artifact.get("kind") == "elf":
            artifact["arch"] = "bpfeb"
    (BPFEB_DIR / package.name / "bpfpkg.json").write_text(json.dumps(manifest, indent=2) + "\n")


def build_all() -> int:
    for package in packages():
        big = BPFEB_DIR / package.name
        big.mkdir(parents=True, exist_ok=True)
        for source in sorted((package / "src").glob("*.c")):
            compile_object(package, source, package / object_name(source))
            compile_object(package, source, big / object_name(source), "bpfeb")
            print(f"built {package.name}/{object_name(source)} and bpfeb/{package.name}/{object_name(source)}")
        refresh_manifest(package)
        write_bpfeb_manifest(package)
        refresh_manifest(big)
    return 0


def check_all() -> int:
    """Rebuild into a temporary directory and compare with the committed objects."""
    differing = 0
    with tempfile.TemporaryDirectory(prefix="bpfcert-examples-") as scratch:
        builds = [(p, s, arch) for p in packages() for s in sorted((p / "src").glob("*.c")) for arch in CLANG_TARGETS]
        for package, source, arch in builds:
            home = package if arch == "bpfel" else BPFEB_DIR / package.name
            committed = home / object_name(source)
            rebuilt = Path(scratch) / arch / package.name / object_name(source)
            rebuilt.parent.mkdir(parents=True, exist_ok=True)
            compile_object(package, source, rebuilt, arch)
            label = str(committed.relative_to(EXAMPLES_DIR))
            if not committed.exists():
                print(f"{label}: MISSING (not built yet)")
                differing += 1
            elif inventory(committed) != inventory(rebuilt):
                print(f"{label}: INVENTORY DIFFERS")
                print(f"  committed: {inventory(committed)}\n  rebuilt:   {inventory(rebuilt)}")
                differing += 1
            else:
                same = "identical bytes" if sha256(committed) == sha256(rebuilt) else "different bytes"
                print(f"{label}: inventory matches ({same})")
    return 1 if differing else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="rebuild into a temp dir and compare with the committed objects"
    )
    args = parser.parse_args()
    for tool in ("clang", "llvm-strip"):
        if shutil.which(tool) is None:
            print(f"build.py: {tool} not found on PATH", file=sys.stderr)
            return 2
    try:
        return check_all() if args.check else build_all()
    except subprocess.CalledProcessError as exc:
        print(f"build.py: command failed ({exc.returncode}): {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
