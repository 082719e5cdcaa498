"""Hypothesis strategies for manifests: `manifests()` draws valid ones, `manifest_mutations()` breaks them.

For tests only (imports hypothesis); the CLI never imports this module. Enumerations (program, map and attach
types, attach families) are read from spec/package.schema.json so the strategies follow the standard.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from bpfcert import spec

Manifest = dict[str, Any]
Mutation = Callable[[st.DrawFn, Manifest], Manifest]

SPDX_IDS = ["GPL-2.0-only", "GPL-2.0-or-later", "LGPL-2.1-or-later", "BSD-2-Clause", "BSD-3-Clause", "MIT",
            "Apache-2.0", "LicenseRef-Proprietary", "GPL-2.0+"]
SPDX_EXCEPTIONS = ["Linux-syscall-note", "Classpath-exception-2.0"]
HELPERS = ["bpf_map_lookup_elem", "bpf_map_update_elem", "bpf_ringbuf_output", "bpf_ktime_get_ns",
           "bpf_get_current_pid_tgid", "bpf_trace_printk", "bpf_redirect", "bpf_probe_read_kernel"]
CAPABILITIES = ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"]

identifiers = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
package_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
path_segments = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,12}", fullmatch=True) | st.sampled_from(
    [".hidden", "..data", "a..b", "...", "ünïcode"]
)
relative_paths = st.lists(path_segments, min_size=1, max_size=3).map("/".join)
texts = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=40)
kernel_versions = st.builds(
    lambda parts: ".".join(map(str, parts)), st.lists(st.integers(0, 20), min_size=1, max_size=3)
)
sha256s = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
base64_key = st.from_regex(r"[A-Za-z0-9+/]{43}=", fullmatch=True)
base64_sig = st.from_regex(r"[A-Za-z0-9+/]{86}==", fullmatch=True)


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


@st.composite
def semvers(draw: st.DrawFn) -> str:
    """SemVer 2.0 versions with optional pre-release and build metadata."""
    core = ".".join(str(draw(st.integers(0, 10_000))) for _ in range(3))
    ident = st.from_regex(r"0|[1-9][0-9]{0,3}|[0-9]*[A-Za-z-][0-9A-Za-z-]{0,5}", fullmatch=True)
    if draw(st.booleans()):
        core += "-" + ".".join(draw(st.lists(ident, min_size=1, max_size=3)))
    if draw(st.booleans()):
        core += "+" + ".".join(draw(st.lists(st.from_regex(r"[0-9A-Za-z-]{1,6}", fullmatch=True), min_size=1,
                                             max_size=3)))
    return core


@st.composite
def spdx_expressions(draw: st.DrawFn, depth: int = 2) -> str:
    """SPDX license expressions: ids, `WITH` exceptions, `AND`/`OR`, parentheses."""
    term = draw(st.sampled_from(SPDX_IDS))
    if draw(st.integers(0, 4)) == 0:
        term += " WITH " + draw(st.sampled_from(SPDX_EXCEPTIONS))
    if depth and draw(st.booleans()):
        right = draw(spdx_expressions(depth - 1))
        term = f"{term} {draw(st.sampled_from(['AND', 'OR']))} {right}"
        if draw(st.booleans()):
            term = f"({term})"
    return term


@st.composite
def kernel_ranges(draw: st.DrawFn) -> str:
    ops = st.sampled_from([">=", ">", "<=", "<", "=="])
    parts = [draw(ops) + draw(kernel_versions) for _ in range(draw(st.integers(1, 2)))]
    return draw(st.sampled_from([",", ", "])).join(parts)


def attach_for(prog_type: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid `attach` objects for a program type."""
    attach_types = st.sampled_from(_defs()["attachType"]["enum"])
    word = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
    abs_path = relative_paths.map(lambda p: "/" + p)
    optional: dict[str, st.SearchStrategy[Any]] = {"expected_attach_type": attach_types}
    required: dict[str, st.SearchStrategy[Any]] = {}
    family = _attach_family(prog_type)
    if family == "attachProbe":
        required = {"function": word}
        optional |= {"offset": st.integers(0, 4096), "retprobe": st.booleans(), "binary": abs_path}
    elif family == "attachFunction":
        required = {"function": word}
    elif family == "attachTracepoint":
        required = {"tracepoint": st.tuples(word, st.sampled_from(":/"), word).map("".join)}
    elif family == "attachRawTracepoint":
        required = {"tracepoint": word}
    elif family == "attachXdp":
        required = {"interface": st.from_regex(r"[a-z][a-z0-9.]{0,14}", fullmatch=True)}
        optional |= {"mode": st.sampled_from(["native", "generic", "offload"])}
    elif family == "attachTc":
        required = {"interface": st.from_regex(r"[a-z][a-z0-9.]{0,14}", fullmatch=True)}
        optional |= {"direction": st.sampled_from(["ingress", "egress"])}
    elif family == "attachCgroup":
        required = {"cgroup": abs_path}
    elif family == "attachSockmap":
        required = {"map": word}
    elif family == "attachNetns":
        required = {"netns": abs_path}
    elif family == "attachNetfilter":
        optional |= {"family": st.sampled_from(["ipv4", "ipv6"]), "priority": st.integers(-1000, 1000),
                     "hook": st.sampled_from(["prerouting", "input", "forward", "output", "postrouting"])}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def programs(draw: st.DrawFn, name: str, artifact: str) -> dict[str, Any]:
    prog_type = draw(st.sampled_from(_defs()["progType"]["enum"]))
    prog: dict[str, Any] = {"name": name, "artifact": artifact, "type": prog_type,
                            "section": draw(st.from_regex(r"[a-z_.]{1,8}(/[a-z_.]{1,10})?", fullmatch=True))}
    if draw(st.booleans()):
        prog["attach"] = draw(attach_for(prog_type))
    if draw(st.booleans()):
        prog["autoload"] = draw(st.booleans())
    return prog


@st.composite
def maps(draw: st.DrawFn, name: str, artifact: str) -> dict[str, Any]:
    size = st.integers(0, 4294967295)
    entry: dict[str, Any] = {"name": name, "artifact": artifact,
                             "type": draw(st.sampled_from(_defs()["mapType"]["enum"])),
                             "key_size": draw(size), "value_size": draw(size), "max_entries": draw(size)}
    if draw(st.booleans()):
        entry["pinning"] = draw(st.sampled_from(["none", "by_name"]))
    if draw(st.booleans()):
        entry["preserve_on_upgrade"] = draw(st.booleans())
    return entry


record_schemas = st.sampled_from([
    {"type": "object", "properties": {"pid": {"type": "integer", "minimum": 0}}, "required": ["pid"]},
    {"type": "object", "properties": {"comm": {"type": "string", "maxLength": 16}}},
    {"type": "integer"},
    True,
])


@st.composite
def manifests(draw: st.DrawFn) -> Manifest:
    """Manifests valid against spec/package.schema.json whose names are unique and references resolve."""
    paths = draw(st.lists(relative_paths, min_size=1, max_size=3, unique=True))
    m: Manifest = {
        "specVersion": "1.0",
        "name": draw(package_names),
        "version": draw(semvers()),
        "license": draw(spdx_expressions()),
        "artifacts": [
            {"path": p, "sha256": draw(sha256s), "arch": draw(st.sampled_from(["bpfel", "bpfeb"]))}
            | ({"kind": "elf"} if draw(st.booleans()) else {})
            for p in paths
        ],
    }
    on_path = st.sampled_from(paths)
    prog_names = draw(st.lists(identifiers, max_size=4, unique=True))
    map_names = draw(st.lists(identifiers, max_size=4, unique=True))
    if prog_names or draw(st.booleans()):
        m["programs"] = [draw(programs(n, draw(on_path))) for n in prog_names]
    if map_names or draw(st.booleans()):
        m["maps"] = [draw(maps(n, draw(on_path))) for n in map_names]
    optional: dict[str, st.SearchStrategy[Any]] = {
        "summary": texts,
        "description": texts,
        "maintainers": st.lists(st.fixed_dictionaries(
            {"name": texts.filter(bool)},
            optional={"email": st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,5})?@[a-z]{1,8}\.[a-z]{2,4}",
                                             fullmatch=True)}), max_size=2),
        "homepage": st.from_regex(r"https://[a-z]{1,10}\.[a-z]{2,4}(/[a-z0-9]{0,8})?", fullmatch=True),
        "source": st.from_regex(r"(https|git)://[a-z]{1,10}\.[a-z]{2,4}/[a-z0-9]{1,8}", fullmatch=True),
        "conformsTo": st.lists(st.sampled_from(["package-core", "package-portable", "package-service"]),
                               min_size=1, unique=True),
        "requires": st.fixed_dictionaries({}, optional={
            "kernel": kernel_ranges(),
            "btf": st.booleans(),
            "prog_types": st.lists(st.sampled_from(_defs()["progType"]["enum"]), unique=True, max_size=3),
            "map_types": st.lists(st.sampled_from(_defs()["mapType"]["enum"]), unique=True, max_size=3),
            "helpers": st.lists(st.sampled_from(HELPERS), unique=True, max_size=4),
            "kfuncs": st.lists(identifiers, unique=True, max_size=2),
            "capabilities": st.lists(st.sampled_from(CAPABILITIES), unique=True),
            "kconfig": st.dictionaries(st.from_regex(r"CONFIG_[A-Z0-9_]{1,12}", fullmatch=True),
                                       st.sampled_from(["y", "m", "n"]) | st.integers(0, 1 << 20) | st.booleans(),
                                       max_size=2),
        }),
        "lifecycle": st.fixed_dictionaries({}, optional={
            "upgrade": st.sampled_from(["hot", "restart"]),
            "preserve_maps": st.lists(st.sampled_from(map_names), unique=True) if map_names else st.just([]),
            "uninstall": st.sampled_from(["unpin", "keep"]),
        }),
        "service": st.fixed_dictionaries({}, optional={
            "exports": st.lists(st.fixed_dictionaries(
                {"name": st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
                 "map": st.sampled_from(map_names) if map_names else identifiers,
                 "kind": st.sampled_from(["map", "ringbuf", "perf_event_array"]),
                 "record": record_schemas},
                optional={"description": texts}), max_size=2),
            "tunables": st.lists(st.fixed_dictionaries(
                {"name": identifiers,
                 "type": st.sampled_from(["bool", "u8", "u32", "s64", "char[16]"])},
                optional={"default": st.booleans() | st.integers(-5, 5) | texts, "description": texts}), max_size=2),
        }),
        "signature": st.fixed_dictionaries(
            {"algorithm": st.just("ed25519"), "public_key": base64_key, "value": base64_sig}),
        "x-vendor": st.dictionaries(identifiers, st.integers() | texts, max_size=2),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True)):
        m[key] = draw(optional[key])
    return m


# Mutations. Each returns a mutated deep copy; the ID is the requirement the result must fail.
# Schema violations (including unsafe artifact paths, which the schema's path pattern refuses) are PKG-MAN-002;
# duplicates and dangling artifact references are valid JSON Schema instances and fail PKG-MAN-003.


def _set(path: tuple[str | int, ...], value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        target: Any = out
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return out

    return mutate


def _drop(key: str) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        return {k: v for k, v in copy.deepcopy(m).items() if k != key}

    return mutate


def _program_change(key: str, value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        out["programs"] = [*out.get("programs", []), draw(programs("mutant", m["artifacts"][0]["path"]))]
        out["programs"][-1][key] = value
        return out

    return mutate


def _map_change(key: str, value: Any) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        out["maps"] = [*out.get("maps", []), draw(maps("mutant", m["artifacts"][0]["path"]))]
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
            twin = draw(programs("twin", path))
            out["programs"] = [*out.get("programs", []), twin, twin | {"artifact": path}]
        else:
            twin = draw(maps("twin", path))
            out["maps"] = [*out.get("maps", []), twin, twin | {"value_size": twin["value_size"] // 2}]
        return out

    return mutate


def _dangling(key: str) -> Mutation:
    def mutate(draw: st.DrawFn, m: Manifest) -> Manifest:
        out = copy.deepcopy(m)
        declared = {a["path"] for a in m["artifacts"]}
        missing = draw(relative_paths.filter(lambda p: p not in declared))
        make = programs if key == "programs" else maps
        out[key] = [*out.get(key, []), draw(make("orphan", missing))]
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
    "unknown capability": _set(("requires",), {"capabilities": ["CAP_NET_RAW"]}),
    "kconfig key without CONFIG_": _set(("requires",), {"kconfig": {"BPF": "y"}}),
    "unknown upgrade mode": _set(("lifecycle",), {"upgrade": "live"}),
    "unknown export kind": _set(("service",), {"exports": [{"name": "e", "map": "m", "kind": "queue",
                                                            "record": {}}]}),
    "record that is no schema": _set(("service",), {"exports": [{"name": "e", "map": "m", "kind": "map",
                                                                 "record": {"type": 5}}]}),
    "tunable of unknown type": _set(("service",), {"tunables": [{"name": "t", "type": "float"}]}),
    "unknown signature algorithm": _set(("signature",), {"algorithm": "rsa", "public_key": "A" * 43 + "=",
                                                         "value": "A" * 86 + "=="}),
    "public key of the wrong length": _set(("signature",), {"algorithm": "ed25519", "public_key": "AAAA",
                                                            "value": "A" * 86 + "=="}),
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
