"""Shared fixtures of the conformance suite: the example packages in the target's byte order, copied into a
temporary directory and edited."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BPFEB_EXAMPLES = EXAMPLES / "bpfeb"  # the same packages built big-endian (examples/build.py)


def examples_for(machine: str) -> Path:
    """The directory of the example packages a kernel of `machine` (`uname -m`) loads: bpfeb builds on a
    big-endian one."""
    from bpfcert.portability import BIG_ENDIAN_MACHINES

    return BPFEB_EXAMPLES if machine in BIG_ENDIAN_MACHINES else EXAMPLES


@pytest.fixture
def examples(target: Any) -> Path:
    """The example packages in the byte order of the target's kernel."""
    return examples_for(target.info().arch)

Edit = Callable[[dict[str, Any], Path], None]


def patch_section(obj: Path, name: str, data: bytes) -> None:
    """Overwrite the start of ELF section `name` in place (same length or shorter, NUL-padded). Needs pyelftools
    (a test dependency, the tests' ELF oracle): a test using it skips where certify runs without it."""
    ELFFile = pytest.importorskip("elftools.elf.elffile").ELFFile

    with obj.open("rb") as f:
        sec = ELFFile(f).get_section_by_name(name)
        assert sec is not None, f"{obj} has no section {name}"
        offset, size = sec["sh_offset"], sec["sh_size"]
    assert len(data) <= size
    raw = bytearray(obj.read_bytes())
    raw[offset : offset + size] = data.ljust(size, b"\0")
    obj.write_bytes(bytes(raw))


def refresh_sha256(manifest: dict[str, Any], root: Path) -> None:
    for art in manifest["artifacts"]:
        path = root / art["path"]
        if path.is_file():
            art["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def make_package(tmp_path: Path) -> Callable[..., Path]:
    """make_package(example, edit=None, refresh=True) -> a copy of examples/<example>, edited.

    `edit(manifest, root)` may change the manifest and the files; sha256s are refreshed afterwards unless
    refresh=False, so that an edit violates exactly what it means to.
    """

    def make(example: str, edit: Edit | None = None, refresh: bool = True) -> Path:
        root = tmp_path / example
        shutil.copytree(EXAMPLES / example, root, ignore=shutil.ignore_patterns("src"))
        manifest_path = root / "bpfpkg.json"
        manifest = json.loads(manifest_path.read_text())
        if edit is not None:
            edit(manifest, root)
            if refresh:
                refresh_sha256(manifest, root)
        if manifest_path.exists():  # an edit may remove the manifest altogether
            manifest_path.write_text(json.dumps(manifest, indent=2))
        return root

    return make


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """ISA cases (test_isa.py) run for the engines selected with --engine only, a host engine on the host only:
    other combinations are deselected rather than skipped, as a skip would be a SKIP row of every ISA requirement."""
    from bpfcert.isa.suite import on_kernel
    from bpfcert.targets.series import HOST

    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        engine = params.get("engine_name", "")
        unwanted = engine is None or (engine and not on_kernel(engine) and params.get("target") != HOST)
        (drop if unwanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
