"""bpfcert.uapi, the one copy of the bpf.h enum values: against the kernel header and the knowledge tables."""

from __future__ import annotations

import re
import runpy
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from bpfcert import uapi
from bpfcert.knowledge import helpers, map_types, prog_types

HEADER = Path("/usr/include/linux/bpf.h")


def header_enum(enum: str, prefix: str) -> list[set[str]]:
    """The names of `enum` by value, lowercased without `prefix`. A value can have two names: Linux 6.2
    renamed BPF_MAP_TYPE_CGROUP_STORAGE to ..._DEPRECATED and kept the old name as an alias of it."""
    body = re.search(rf"enum {enum} \{{(.*?)\}};", HEADER.read_text(), re.S)
    assert body is not None, enum
    names: list[set[str]] = []
    value_of: dict[str, int] = {}
    for item in re.sub(r"/\*.*?\*/", "", body.group(1), flags=re.S).split(","):
        name, _, alias_of = (part.strip().removeprefix(prefix).lower() for part in item.partition("="))
        if not name or name.startswith("__"):  # __MAX_BPF_ATTACH_TYPE
            continue
        if alias_of:
            names[value_of[alias_of]].add(name)
        else:
            value_of[name] = len(names)
            names.append({name})
    return names


def header_helpers() -> list[set[str]]:
    """BPF_FUNC_* names in id order, from __BPF_FUNC_MAPPER (___BPF_FUNC_MAPPER since Linux 6.2)."""
    mapper = re.split(r"#define _{2,3}BPF_FUNC_MAPPER\(", HEADER.read_text(), maxsplit=1)[1].split("#define", 1)[0]
    return [{name} for name in re.findall(r"FN\((\w+)", mapper)]


@pytest.mark.skipif(not HEADER.exists(), reason=f"no kernel UAPI header at {HEADER} (linux-libc-dev)")
@pytest.mark.parametrize(
    ("table", "read_header"),
    [
        (uapi.PROG_TYPES, lambda: header_enum("bpf_prog_type", "BPF_PROG_TYPE_")),
        (uapi.MAP_TYPES, lambda: header_enum("bpf_map_type", "BPF_MAP_TYPE_")),
        (uapi.ATTACH_TYPES, lambda: header_enum("bpf_attach_type", "BPF_")),
        (uapi.HELPER_NAMES, header_helpers),
    ],
    ids=["prog_types", "map_types", "attach_types", "helpers"],
)
def test_tables_follow_the_installed_header(table: tuple[str, ...], read_header: Callable[[], list[set[str]]]) -> None:
    """Every enumerator of the host's header at its value; the tables may go on past an older header."""
    header = read_header()
    assert len(header) > 20
    assert len(table) >= len(header), f"the header has {[sorted(n) for n in header[len(table) :]]} beyond the table"
    assert [(value, name) for value, name in enumerate(table[: len(header)]) if name not in header[value]] == []


def test_known_values() -> None:
    """Spot checks against <linux/bpf.h> values: an off-by-one here would mislabel every probe."""
    assert uapi.PROG_TYPES.index("xdp") == 6 and uapi.PROG_TYPES.index("syscall") == 31
    assert uapi.MAP_TYPES.index("ringbuf") == 27 and uapi.MAP_TYPES.index("user_ringbuf") == 31
    assert uapi.ATTACH_TYPES.index("cgroup_getsockopt") == 21 and uapi.ATTACH_TYPES.index("lsm_cgroup") == 43
    assert uapi.HELPER_NAMES.index("map_lookup_elem") == 1 and uapi.HELPER_NAMES.index("user_ringbuf_drain") == 209


def test_every_entry_has_its_knowledge_row() -> None:
    """No program type, map type or helper the ABI tables list is missing its facts (first kernel, GPL...)."""
    assert [p.name for p in prog_types.PROG_TYPES] == list(uapi.PROG_TYPES[1:])
    assert [m.name for m in map_types.MAP_TYPES] == list(uapi.MAP_TYPES[1:])
    assert [h.name for h in helpers.HELPERS] == ["bpf_" + n for n in uapi.HELPER_NAMES[1:]]


@pytest.mark.parametrize(
    ("module", "table", "name"),
    [(prog_types, "PROG_TYPES", "xdp"), (map_types, "MAP_TYPES", "ringbuf"), (helpers, "HELPER_NAMES", "loop")],
    ids=["prog_types", "map_types", "helpers"],
)
def test_a_knowledge_row_uapi_does_not_list_fails_at_import(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType, table: str, name: str
) -> None:
    monkeypatch.setattr(uapi, table, tuple(n for n in getattr(uapi, table) if n != name))
    with pytest.raises(KeyError, match=f"^'{name}'$"):
        runpy.run_path(str(module.__file__))
