"""Hypothesis strategies for manifests: `manifests()` draws valid ones, `manifest_mutations()` breaks them.

For tests only (imports hypothesis); the CLI never imports this module. Enumerations (program, map and attach
types, attach families) are read from spec/package.schema.json so the strategies follow the standard.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from bpfcert import spec

Manifest = dict[str, Any]
Mutation = Callable[[st.DrawFn, Manifest], Manifest]

SPDX_IDS = [
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "LGPL-2.1-or-later",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "MIT",
    "Apache-2.0",
    "LicenseRef-Proprietary",
    "GPL-2.0+",
]
SPDX_EXCEPTIONS = ["Linux-syscall-note", "Classpath-exception-2.0"]
HELPERS = [
    "bpf_map_lookup_elem",
    "bpf_map_update_elem",
    "bpf_ringbuf_output",
    "bpf_ktime_get_ns",
    "bpf_get_current_pid_tgid",
    "bpf_trace_printk",
    "bpf_redirect",
    "bpf_probe_read_kernel",
]
CAPABILITIES = ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_RAW"]

LOWER = "abcdefghijklmnopqrstuvwxyz"
DIGITS = "0123456789"
UPPER = LOWER.upper()


def words(first: str, rest: str, max_size: int, last: str | None = None) -> st.SearchStrategy[str]:
    """Strings over `rest` that start with a character of `first` and, if given, end with one of `last`.

    One text draw each (prefixing/suffixing the fix-ups): st.from_regex or per-character draws are an order of
    magnitude slower, and the manifest property tests run 10,000 examples.
    """

    def fix(s: str) -> str:
        s = s if s[0] in first else first[0] + s[1:]
        return s if last is None or s[-1] in last else s[:-1] + last[0]

    return st.text(rest, min_size=1, max_size=max_size).map(fix)


identifiers = words(LOWER + "_", LOWER + DIGITS + "_", 16)
package_names = words(LOWER + DIGITS, LOWER + DIGITS + "-", 24, LOWER + DIGITS)
PATH_PREFIXES = ["", "bpf/", "build/out/", ".hidden/", "..data/", "a..b/", ".../", "ünïcode/", "x86_64/v1.2/"]
path_segments = words(LOWER + UPPER + DIGITS + "_", LOWER + UPPER + DIGITS + "_.+-", 14)
relative_paths = st.tuples(st.sampled_from(PATH_PREFIXES), path_segments).map("".join)
texts = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)
kernel_versions = st.tuples(st.integers(3, 7), st.integers(0, 20), st.integers(-1, 300)).map(
    lambda v: f"{v[0]}.{v[1]}" + (f".{v[2]}" if v[2] >= 0 else "")
)
sha256s = st.binary(min_size=32, max_size=32).map(bytes.hex)
base64_key = st.binary(min_size=32, max_size=32).map(lambda b: base64.b64encode(b).decode())
base64_sig = st.binary(min_size=64, max_size=64).map(lambda b: base64.b64encode(b).decode())
interfaces = words(LOWER, LOWER + DIGITS + ".", 15)
sections = st.sampled_from(
    ["xdp", "xdp.frags", "tc", "kprobe/do_exit", "kretprobe/tcp_sendmsg", "tracepoint/sched/sched_switch",
     "fentry/tcp_connect", "cgroup_skb/ingress", "lsm/file_open", "raw_tp/sys_enter", "socket", "iter/task",
     "struct_ops/bpf_cubic_init", "uprobe//usr/lib/libc.so.6:malloc", "sk_msg", "syscall"]
)  # fmt: skip
hosts = st.tuples(words(LOWER, LOWER + DIGITS + "-", 10, LOWER), st.sampled_from(["dev", "org", "io"])).map(
    lambda h: f"{h[0]}.{h[1]}"
)
emails = st.tuples(words(LOWER + DIGITS, LOWER + DIGITS + "_", 10, LOWER + DIGITS), hosts).map(
    lambda e: f"{e[0]}@{e[1]}"
)


def _defs() -> dict[str, Any]:
    defs: dict[str, Any] = spec.schema("package")["$defs"]
    return defs


def _attach_family(prog_type: str) -> str:
    """The schema's attach $def for a program type (from the allOf/if/then table of package.schema.json)."""
    program = spec.schema("package")["properties"]["programs"]["items"]
    for rule in program["allOf"]:
        if prog_type in rule["if"]["properties"]["type"]["enum"]:
            ref: str = rule["then"]["properties"]["attach"]["$ref"]
            return ref.rsplit("/", 1)[1]
    raise LookupError(prog_type)


PROG_TYPES: list[str] = _defs()["progType"]["enum"]
MAP_TYPES: list[str] = _defs()["mapType"]["enum"]
ATTACH_TYPES: list[str] = _defs()["attachType"]["enum"]

_semver_ident_chars = LOWER + UPPER + DIGITS + "-"
_prerelease_idents = st.integers(0, 9999).map(str) | st.tuples(
    st.text(DIGITS, max_size=2), words(LOWER + UPPER + "-", _semver_ident_chars, 5)
).map("".join)
semvers = st.tuples(
    st.lists(st.integers(0, 10_000), min_size=3, max_size=3).map(lambda core: ".".join(map(str, core))),
    st.lists(_prerelease_idents, max_size=3).map(lambda ids: "-" + ".".join(ids) if ids else ""),
    st.lists(st.text(_semver_ident_chars, min_size=1, max_size=6), max_size=3).map(
        lambda ids: "+" + ".".join(ids) if ids else ""
    ),
).map("".join)
"""SemVer 2.0 versions with optional pre-release and build metadata."""


_spdx_terms = st.sampled_from(SPDX_IDS) | st.tuples(st.sampled_from(SPDX_IDS), st.sampled_from(SPDX_EXCEPTIONS)).map(
    " WITH ".join
)


def _spdx_join(parts: tuple[str, list[tuple[str, str]], int]) -> str:
    """`first (op term)*`, with the first pair or the whole expression parenthesised (by `parens` 1 or 2)."""
    first, rest, parens = parts
    expr = first
    for i, (op, term) in enumerate(rest):
        expr = f"{expr} {op} {term}"
        if i == 0 and parens == 1:
            expr = f"({expr})"
    return f"({expr})" if parens == 2 and rest else expr


spdx_expressions = st.tuples(
    _spdx_terms, st.lists(st.tuples(st.sampled_from(["AND", "OR"]), _spdx_terms), max_size=3), st.integers(0, 2)
).map(_spdx_join)
"""SPDX license expressions: ids, `WITH` exceptions, `AND`/`OR`, parentheses."""

_comparisons = st.tuples(st.sampled_from([">=", ">", "<=", "<", "=="]), kernel_versions).map("".join)
kernel_ranges = st.tuples(st.lists(_comparisons, min_size=1, max_size=2), st.sampled_from([",", ", "])).map(
    lambda p: p[1].join(p[0])
)


def _attach_strategy(family: str) -> st.SearchStrategy[dict[str, Any]]:
    abs_path = relative_paths.map("/".__add__)
    optional: dict[str, st.SearchStrategy[Any]] = {"expected_attach_type": st.sampled_from(ATTACH_TYPES)}
    required: dict[str, st.SearchStrategy[Any]] = {}
    if family == "attachProbe":
        required = {"function": identifiers}
        optional |= {"offset": st.integers(0, 4096), "retprobe": st.booleans(), "binary": abs_path}
    elif family == "attachFunction":
        required = {"function": identifiers}
    elif family == "attachTracepoint":
        required = {"tracepoint": st.tuples(identifiers, st.sampled_from(":/"), identifiers).map("".join)}
    elif family == "attachRawTracepoint":
        required = {"tracepoint": identifiers}
    elif family == "attachXdp":
        required = {"interface": interfaces}
        optional |= {"mode": st.sampled_from(["native", "generic", "offload"])}
    elif family == "attachTc":
        required = {"interface": interfaces}
        optional |= {"direction": st.sampled_from(["ingress", "egress"])}
    elif family == "attachCgroup":
        required = {"cgroup": abs_path}
    elif family == "attachSockmap":
        required = {"map": identifiers}
    elif family == "attachNetns":
        required = {"netns": abs_path}
    elif family == "attachNetfilter":
        optional |= {
            "family": st.sampled_from(["ipv4", "ipv6"]),
            "priority": st.integers(-1000, 1000),
            "hook": st.sampled_from(["prerouting", "input", "forward", "output", "postrouting"]),
        }
    return st.fixed_dictionaries(required, optional=optional)


ATTACH: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    prog_type: _attach_strategy(_attach_family(prog_type)) for prog_type in PROG_TYPES
}
"""Program type -> valid `attach` objects for it."""


@st.composite
def _program_entry(draw: st.DrawFn) -> dict[str, Any]:
    prog_type = draw(st.sampled_from(PROG_TYPES))
    optional = {"attach": ATTACH[prog_type], "autoload": st.booleans()}
    body = draw(st.fixed_dictionaries({"section": sections}, optional=optional))
    return {"type": prog_type, **body}


program_entries = _program_entry()
"""One programs[] entry; the caller sets `name` and `artifact`."""

_u32 = st.integers(0, 4294967295)
map_entries = st.fixed_dictionaries(
    {"type": st.sampled_from(MAP_TYPES), "key_size": _u32, "value_size": _u32, "max_entries": _u32},
    optional={"pinning": st.sampled_from(["none", "by_name"]), "preserve_on_upgrade": st.booleans()},
)
"""One maps[] entry; the caller sets `name` and `artifact`."""

record_schemas = st.sampled_from(
    [
        {"type": "object", "properties": {"pid": {"type": "integer", "minimum": 0}}, "required": ["pid"]},
        {"type": "object", "properties": {"comm": {"type": "string", "maxLength": 16}}},
        {"type": "integer"},
        True,
    ]
).map(copy.deepcopy)  # no shared objects: YAML would dump them as aliases

_OPTIONAL: dict[str, st.SearchStrategy[Any]] = {
    "summary": texts,
    "description": texts,
    "maintainers": st.lists(
        st.fixed_dictionaries({"name": texts.filter(bool)}, optional={"email": emails}), max_size=2
    ),
    "homepage": st.tuples(hosts, st.text(LOWER + DIGITS, max_size=8)).map("https://{0[0]}/{0[1]}".format),
    "source": st.tuples(st.sampled_from(["https", "git"]), hosts, identifiers).map("{0[0]}://{0[1]}/{0[2]}".format),
    "conformsTo": st.lists(
        st.sampled_from(["package-core", "package-portable", "package-service"]), min_size=1, unique=True
    ),
    "requires": st.fixed_dictionaries(
        {},
        optional={
            "kernel": kernel_ranges,
            "btf": st.booleans(),
            "prog_types": st.lists(st.sampled_from(PROG_TYPES), unique=True, max_size=3),
            "map_types": st.lists(st.sampled_from(MAP_TYPES), unique=True, max_size=3),
            "helpers": st.lists(st.sampled_from(HELPERS), unique=True, max_size=4),
            "kfuncs": st.lists(identifiers, unique=True, max_size=2),
            "capabilities": st.lists(st.sampled_from(CAPABILITIES), unique=True),
            "kconfig": st.dictionaries(
                st.text(UPPER + DIGITS + "_", min_size=1, max_size=12).map("CONFIG_".__add__),
                st.sampled_from(["y", "m", "n"]) | st.integers(0, 1 << 20) | st.booleans(),
                max_size=2,
            ),
        },
    ),
    "lifecycle": st.fixed_dictionaries(
        {},
        optional={
            "upgrade": st.sampled_from(["hot", "restart"]),
            "preserve_maps": st.just([]),  # filled from the drawn map names
            "uninstall": st.sampled_from(["unpin", "keep"]),
        },
    ),
    "service": st.fixed_dictionaries(
        {},
        optional={
            "exports": st.lists(
                st.fixed_dictionaries(
                    {
                        "name": words(LOWER, LOWER + DIGITS + "_", 10),
                        "map": identifiers,  # replaced by a drawn map name when there is one
                        "kind": st.sampled_from(["map", "ringbuf", "perf_event_array"]),
                        "record": record_schemas,
                    },
                    optional={"description": texts},
                ),
                max_size=2,
            ),
            "tunables": st.lists(
                st.fixed_dictionaries(
                    {"name": identifiers, "type": st.sampled_from(["bool", "u8", "u32", "s64", "char[16]"])},
                    optional={"default": st.booleans() | st.integers(-5, 5) | texts, "description": texts},
                ),
                max_size=2,
            ),
        },
    ),
    "signature": st.fixed_dictionaries(
        {"algorithm": st.just("ed25519"), "public_key": base64_key, "value": base64_sig}
    ),
    "x-vendor": st.dictionaries(identifiers, st.integers(-(1 << 63), (1 << 64) - 1) | texts, max_size=2),
}
_optional_keys = st.lists(st.sampled_from(sorted(_OPTIONAL)), unique=True)
_names = st.lists(identifiers, max_size=4, unique=True)
_picks = st.lists(st.integers(0, 3), min_size=8, max_size=8)


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    """Manifests valid against spec/package.schema.json whose names are unique and references resolve."""
    paths = draw(st.lists(relative_paths, min_size=1, max_size=3, unique=True))
    arch = st.sampled_from(["bpfel", "bpfeb"])
    m: Manifest = {
        "specVersion": "1.0",
        "name": draw(package_names),
        "version": draw(semvers),
        "license": draw(spdx_expressions),
        "artifacts": [
            {"path": p, "sha256": draw(sha256s), "arch": draw(arch)} | ({"kind": "elf"} if draw(st.booleans()) else {})
            for p in paths
        ],
    }
    picks = draw(_picks)  # which artifact each program/map lives in, which maps are preserved or exported
    prog_names, map_names = draw(_names), draw(_names)
    if bool(prog_names) or draw(st.booleans()):
        m["programs"] = [
            {"name": n, "artifact": paths[picks[i] % len(paths)], **draw(program_entries)}
            for i, n in enumerate(prog_names)
        ]
    if bool(map_names) or draw(st.booleans()):
        m["maps"] = [
            {"name": n, "artifact": paths[picks[4 + i] % len(paths)], **draw(map_entries)}
            for i, n in enumerate(map_names)
        ]
    for key in draw(_optional_keys):
        m[key] = draw(_OPTIONAL[key])
    if "preserve_maps" in m.get("lifecycle", {}):
        m["lifecycle"]["preserve_maps"] = [n for i, n in enumerate(map_names) if picks[i] % 2]
    for i, export in enumerate(m.get("service", {}).get("exports", [])):
        if map_names:
            export["map"] = map_names[picks[i] % len(map_names)]
    return m


# Mutations. Each returns a mutated deep copy; the ID is the requirement the result must fail. Schema
# violations (including unsafe artifact paths, which the schema's path pattern refuses) are PKG-MAN-002;
# duplicates and dangling artifact references are valid JSON Schema instances and fail PKG-MAN-003.


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        target: Any = out
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = copy.deepcopy(value)
        return out

    return mutate


def _drop(key: str) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        return {k: v for k, v in copy.deepcopy(m).items() if k != key}

    return mutate


def _program_change(key: str, value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        mutant = {"name": "mutant", "artifact": m["artifacts"][0]["path"], **draw(program_entries)}
        out["programs"] = [*out.get("programs", []), mutant]
        out["programs"][-1][key] = value
        return out

    return mutate


def _map_change(key: str, value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        mutant = {"name": "mutant", "artifact": m["artifacts"][0]["path"], **draw(map_entries)}
        out["maps"] = [*out.get("maps", []), mutant]
        out["maps"][-1][key] = value
        return out

    return mutate


def _duplicate(key: str) -> Mutation:
    """Append a copy of the first entry under a different identity but with the same name/path."""

    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        path = m["artifacts"][0]["path"]
        if key == "artifacts":
            first = out["artifacts"][0]
            out["artifacts"].append(first | {"sha256": "f" * 64 if first["sha256"] != "f" * 64 else "0" * 64})
        elif key == "programs":
            twin = {"name": "twin", "artifact": path, **draw(program_entries)}
            out["programs"] = [*out.get("programs", []), twin, twin | {"artifact": path}]
        else:
            twin = {"name": "twin", "artifact": path, **draw(map_entries)}
            out["maps"] = [*out.get("maps", []), twin, twin | {"value_size": twin["value_size"] // 2}]
        return out

    return mutate


def _dangling(key: str) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        declared = {a["path"] for a in m["artifacts"]}
        missing = draw(relative_paths.filter(lambda p: p not in declared))
        body = draw(program_entries if key == "programs" else map_entries)
        out[key] = [*out.get(key, []), {"name": "orphan", "artifact": missing, **body}]
        return out

    return mutate


SCHEMA_MUTATIONS: dict[str, Mutation] = {
    "missing specVersion": _drop("specVersion"),
    "missing name": _drop("name"),
    "missing version": _drop("version"),
    "missing license": _drop("license"),
    "missing artifacts": _drop("artifacts"),
    "wrong specVersion": _set(("specVersion",), "2.0"),
    "numeric specVersion": _set(("specVersion",), 1.0),
    "uppercase name": _set(("name",), "XDP-Counter"),
    "name with leading dash": _set(("name",), "-counter"),
    "name longer than a DNS label": _set(("name",), "a" * 64),
    "two-part version": _set(("version",), "1.0"),
    "version with leading zero": _set(("version",), "01.2.3"),
    "license with a slash": _set(("license",), "Dual BSD/GPL"),
    "license with spaces": _set(("license",), "GPL v2"),
    "unknown top-level key": _set(("licence",), "MIT"),
    "no artifacts": _set(("artifacts",), []),
    "artifact path with '..'": _set(("artifacts", 0, "path"), "../outside.o"),
    "artifact path with inner '..'": _set(("artifacts", 0, "path"), "bpf/../../outside.o"),
    "absolute artifact path": _set(("artifacts", 0, "path"), "/etc/passwd"),
    "artifact path with backslash": _set(("artifacts", 0, "path"), "bpf\\prog.o"),
    "artifact path with '.' segment": _set(("artifacts", 0, "path"), "./prog.o"),
    "artifact path with empty segment": _set(("artifacts", 0, "path"), "bpf//prog.o"),
    "short sha256": _set(("artifacts", 0, "sha256"), "abc123"),
    "uppercase sha256": _set(("artifacts", 0, "sha256"), "A" * 64),
    "unknown arch": _set(("artifacts", 0, "arch"), "x86_64"),
    "unknown kind": _set(("artifacts", 0, "kind"), "wasm"),
    "unknown artifact key": _set(("artifacts", 0, "size"), 12),
    "unknown program type": _program_change("type", "BPF_PROG_TYPE_XDP"),
    "program name not an identifier": _program_change("name", "my-prog"),
    "autoload as a string": _program_change("autoload", "yes"),
    "unknown program key": _program_change("pin", True),
    "attach key of another family": _program_change("attach", {"interface": "eth0", "function": "do_exit"}),
    "unknown map type": _map_change("type", "hashmap"),
    "negative key size": _map_change("key_size", -1),
    "max_entries beyond u32": _map_change("max_entries", 1 << 32),
    "unknown pinning": _map_change("pinning", "by_path"),
    "kernel without operator": _set(("requires",), {"kernel": "5.10"}),
    "kernel with letters": _set(("requires",), {"kernel": ">=5.x"}),
    "helper without bpf_ prefix": _set(("requires",), {"helpers": ["map_lookup_elem"]}),
    "unknown capability": _set(("requires",), {"capabilities": ["CAP_CHOWN"]}),
    "kconfig key without CONFIG_": _set(("requires",), {"kconfig": {"BPF": "y"}}),
    "unknown upgrade mode": _set(("lifecycle",), {"upgrade": "live"}),
    "unknown export kind": _set(("service",), {"exports": [{"name": "e", "map": "m", "kind": "queue", "record": {}}]}),
    "record that is no schema": _set(
        ("service",), {"exports": [{"name": "e", "map": "m", "kind": "map", "record": {"type": 5}}]}
    ),
    "tunable of unknown type": _set(("service",), {"tunables": [{"name": "t", "type": "float"}]}),
    "unknown signature algorithm": _set(
        ("signature",), {"algorithm": "rsa", "public_key": "A" * 43 + "=", "value": "A" * 86 + "=="}
    ),
    "public key of the wrong length": _set(
        ("signature",), {"algorithm": "ed25519", "public_key": "AAAA", "value": "A" * 86 + "=="}
    ),
    "invalid maintainer email": _set(("maintainers",), [{"name": "A", "email": "not-an-address"}]),
    "unknown conformsTo profile": _set(("conformsTo",), ["kernel"]),
}

REFERENCE_MUTATIONS: dict[str, Mutation] = {
    "duplicate artifact path": _duplicate("artifacts"),
    "duplicate program name": _duplicate("programs"),
    "duplicate map name": _duplicate("maps"),
    "program names an undeclared artifact": _dangling("programs"),
    "map names an undeclared artifact": _dangling("maps"),
}


@st.composite
def manifest_mutations(draw: st.DrawFn) -> tuple[Manifest, str]:
    """(mutated manifest, requirement ID it must fail): PKG-MAN-002 for schema violations, PKG-MAN-003 for
    duplicate names and dangling artifact references."""
    catalogue = [(m, "PKG-MAN-002") for m in SCHEMA_MUTATIONS.values()]
    catalogue += [(m, "PKG-MAN-003") for m in REFERENCE_MUTATIONS.values()]
    mutate, req_id = draw(st.sampled_from(catalogue))
    return mutate(draw, draw(manifests())), req_id
