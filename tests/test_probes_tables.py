"""The ABI tables in bpfcert.targets.bpf: agree with the kernel UAPI header and with bpfcert.knowledge.

bpf.py keeps its own (value -> name) tables because it runs in the guest agent, where importing the
knowledge package (dataclasses) costs ~0.3 s under TCG; these tests keep the two from drifting apart.
"""

from __future__ import annotations

import os

import pytest

from bpfcert.knowledge.helpers import HELPERS
from bpfcert.knowledge.map_types import MAP_TYPES
from bpfcert.knowledge.prog_types import PROG_TYPES
from bpfcert.targets import bpf


def test_tables_agree_with_knowledge() -> None:
    assert [(p.value, p.name) for p in PROG_TYPES] == list(enumerate(bpf.PROG_TYPES))[1:]
    assert [(m.value, m.name) for m in MAP_TYPES] == list(enumerate(bpf.MAP_TYPES))[1:]
    assert [(h.id, h.name) for h in HELPERS] == [(i, "bpf_" + n) for i, n in enumerate(bpf.HELPER_NAMES)][1:]


def test_enum_tables_match_uapi_values() -> None:
    """Spot checks against <linux/bpf.h> values: an off-by-one here would mislabel every probe."""
    assert bpf.PROG_TYPES.index("xdp") == 6 and bpf.PROG_TYPES.index("syscall") == 31
    assert bpf.MAP_TYPES.index("ringbuf") == 27 and bpf.MAP_TYPES.index("user_ringbuf") == 31
    assert bpf.ATTACH_TYPES.index("cgroup_getsockopt") == 21 and bpf.ATTACH_TYPES.index("lsm_cgroup") == 43
    assert bpf.HELPER_NAMES.index("map_lookup_elem") == 1 and bpf.HELPER_NAMES.index("user_ringbuf_drain") == 209


UAPI = "/usr/include/linux/bpf.h"


def _uapi_enum(text: str, enum: str, prefix: str) -> list[str]:
    body = text[text.index(f"enum {enum} {{") :]
    body = body[: body.index("};")]
    return [
        line.strip().split(",")[0].split("=")[0].strip().removeprefix(prefix).lower()
        for line in body.splitlines()[1:]
        if line.strip().startswith(prefix) and not line.strip().startswith(f"__{prefix}")
    ]


@pytest.mark.skipif(not os.path.exists(UAPI), reason="no kernel UAPI headers installed")
def test_enum_tables_agree_with_installed_uapi_header() -> None:
    with open(UAPI) as f:
        text = f.read()
    for table, enum, prefix in (
        (bpf.PROG_TYPES, "bpf_prog_type", "BPF_PROG_TYPE_"),
        (bpf.MAP_TYPES, "bpf_map_type", "BPF_MAP_TYPE_"),
        (bpf.ATTACH_TYPES, "bpf_attach_type", "BPF_"),
    ):
        names = [n for n in _uapi_enum(text, enum, prefix) if not n.startswith("max_")]
        assert len(names) > 20
        assert list(table[: len(names)]) == names, enum
