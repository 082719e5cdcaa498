"""bpfcert's import graph has no cycle, lazy imports included; the guest's modules import only the stdlib.

Every `import` and `from ... import` in bpfcert/ counts, at module level or inside a function: a lazy import
runs when its function does, and a cycle through it breaks the same way at that moment. Only imports under
`if TYPE_CHECKING:` are left out: they never execute (annotations are strings here), so they cannot take part
in a cycle at run time.

Importing `a.b.c` runs `a.b`'s __init__ first, so an importer depends on the module it names and on that
module's packages, except its own packages: Python has begun those before the importer's body runs. `from a.b
import x` names `a.b` itself as well as the submodule `a.b.x` if there is one, own package or not: a package whose
__init__ imports its submodules, which reach each other through `from a.b import sibling`, is a cycle (its
__init__ must then import none of them, as bpfcert.targets' does).
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bpfcert

ROOT = Path(bpfcert.__file__).resolve().parent

Graph = dict[str, dict[str, list[int]]]  # module -> {module it imports: [line, ...]}


def _module_name(path: Path, root: Path) -> str:
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: everything but the bodies of `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph(root: Path) -> Graph:
    """The import graph of the package at `root`, its own modules only."""
    paths = {_module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: Graph = {name: {} for name in paths}
    for name, path in paths.items():
        own = {name, *_packages(name)}
        is_package = path.name == "__init__.py"
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                named = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                    base = ".".join([*anchor, *filter(None, [base])])
                # `from P import x` runs P (its __init__ for a package) and then P.x where that is a module
                named = [base, *(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in paths)]
            for target in named:
                implied = [p for p in _packages(target) if p not in own]
                for dep in [target, *implied]:
                    if dep not in paths or dep == name:
                        continue
                    lines = graph[name].setdefault(dep, [])
                    if node.lineno not in lines:
                        lines.append(node.lineno)
    return graph


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted: every cycle lies in one."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in graph[node]:
            if dep not in index:
                connect(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return sorted(out)


def describe(graph: Graph, component: list[str]) -> str:
    """A cycle's imports, one `a -> b (line N)` per edge inside the component."""
    members = set(component)
    edges = [
        f"  {a} -> {b} (line {', '.join(map(str, lines))})"
        for a in component
        for b, lines in sorted(graph[a].items())
        if b in members
    ]
    return "\n".join(edges)


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_cycle_finder_sees_lazy_cycles_and_package_imports(tmp_path: Path) -> None:
    """A lazy import closes a cycle; `from pkg.sub import x` depends on pkg/sub/__init__, from inside pkg.sub too
    (so pkg/sub/__init__ importing pkg.a, which imports pkg.sub.helper, closes a cycle through it); TYPE_CHECKING
    imports do not count."""
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.sub import helper\n",
            "pkg/sub/__init__.py": "def f():\n    from pkg import a\n",
            "pkg/sub/helper.py": "from pkg.sub import other\n",
            "pkg/sub/other.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import b\n",
            "pkg/b.py": "import pkg.sub.other\n",
        },
    )
    graph = import_graph(root)
    assert graph["pkg.a"] == {"pkg.sub.helper": [1], "pkg.sub": [1]}
    assert graph["pkg.sub.helper"] == {"pkg.sub": [1], "pkg.sub.other": [1]}
    assert graph["pkg.sub.other"] == {}
    assert cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.helper"]]
    assert "pkg.sub -> pkg.a (line 2)" in describe(graph, ["pkg.a", "pkg.sub", "pkg.sub.helper"])


def test_the_cycle_finder_resolves_relative_imports(tmp_path: Path) -> None:
    root = _write(
        tmp_path,
        {
            "pkg/__init__.py": "from . import c\n",
            "pkg/c.py": "from .d import x\n",
            "pkg/d.py": "def g():\n    from . import c\n",
        },
    )
    graph = import_graph(root)
    assert graph["pkg"] == {"pkg.c": [1]}
    assert cycles(graph) == [["pkg", "pkg.c", "pkg.d"]]


def test_bpfcert_has_no_import_cycles() -> None:
    graph = import_graph(ROOT)
    assert len(graph) > 40 and graph["bpfcert.cli"], "the graph should hold every module and its imports"
    found = cycles(graph)
    assert not found, "import cycles (lazy imports included):\n" + "\n".join(describe(graph, c) for c in found)


GUEST_MODULES = ("bpfcert.targets.agent", "bpfcert.targets.ops", "bpfcert.targets.probes", "bpfcert.targets.isa_run")
_STDLIB_ONLY = """
import sys

class RefuseNonStdlib:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top not in sys.stdlib_module_names and top != "bpfcert":
            raise ImportError(f"the guest imported {name}, which is not in the standard library")
        return None

sys.meta_path.insert(0, RefuseNonStdlib())
sys.path.insert(0, sys.argv[1])
import importlib
for name in sys.argv[2].split(","):
    importlib.import_module(name)
if len(sys.argv) > 3:
    from bpfcert.targets.ops import OPS
    OPS["probe"](kconfig=["CONFIG_BPF"], kfuncs=["bpf_rcu_read_lock"])
print(",".join(sorted(m for m in sys.modules if m.startswith("bpfcert"))))
"""


def _guest_import(*extra: str, modules: tuple[str, ...] = GUEST_MODULES) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", _STDLIB_ONLY, str(ROOT.parent), ",".join(modules), *extra],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_guest_modules_import_only_the_stdlib() -> None:
    """As the agent starts in the guest (`python -I -S`), with every non-stdlib import refused; the bpfcert
    modules it loads are the targets' own and the stdlib-only readers they use."""
    run = _guest_import()
    assert run.returncode == 0, run.stderr
    loaded = set(run.stdout.strip().split(","))
    assert set(GUEST_MODULES) <= loaded
    assert loaded - {"bpfcert", "bpfcert.errors", "bpfcert.insn", "bpfcert.uapi"} <= {
        m for m in loaded if m.startswith("bpfcert.targets")
    }, loaded
    assert "bpfcert.targets.vm" not in loaded and "bpfcert.targets.kernels" not in loaded


@pytest.mark.skipif(os.geteuid() != 0, reason="the probe op loads programs: it needs root")
def test_the_probe_op_imports_only_the_stdlib_when_it_runs() -> None:
    """The lazy imports of a probe (kconfig, kfuncs) too."""
    run = _guest_import("run")
    assert run.returncode == 0, run.stderr


def test_the_guard_refuses_a_non_stdlib_import() -> None:
    run = _guest_import(modules=("yaml",))
    assert run.returncode != 0 and "the guest imported yaml" in run.stderr


def test_the_host_target_scans_for_splats_without_the_qemu_module() -> None:
    code = (
        "import sys\nfrom bpfcert.targets.host import HostTarget\n"
        "host = HostTarget()\nhost.splats()\nhost.close()\nprint(sorted(m for m in sys.modules if 'vm' in m))"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT.parent)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
