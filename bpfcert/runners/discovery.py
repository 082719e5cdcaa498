"""Finding runners: a folder holding runner.json (spec/runner.schema.json, $defs/runnerFolder) that says how to start
the runner and what it claims. Shipped runners live under runners/<name>/ (bpfcert/bundled.py); `--runner PATH`
names a folder anywhere. The harness imports nothing from a runner folder: it starts what argv says, there.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bpfcert import bundled
from bpfcert.errors import BpfcertError
from bpfcert.runners.protocol import Claims, schema_error

RUNNER_JSON = "runner.json"


@dataclass(frozen=True)
class Runner:
    """A runner folder, as its runner.json describes it."""

    name: str
    folder: Path
    description: str
    argv: tuple[str, ...]  # as written: relative to `folder`, "{python}" not yet replaced
    needs: tuple[str, ...]
    claims: Claims
    env: tuple[tuple[str, str], ...] = ()  # per run, set by the harness (e.g. a state directory)
    preload: tuple[str, ...] = ()  # modules a fork server imports once (bpfcert.targets.forkserver)

    def with_env(self, env: Mapping[str, str]) -> Runner:
        """This runner, launched with `env` added to its environment (over what it had)."""
        return replace(self, env=tuple({**dict(self.env), **env}.items()))

    def missing(self) -> str | None:
        """Why this runner cannot run here (an executable it needs is not on PATH), or None."""
        absent = [tool for tool in self.needs if shutil.which(tool) is None]
        return f"runner {self.name} needs {', '.join(absent)}, not found on PATH" if absent else None

    def launch(self, python: str) -> tuple[list[str], str, dict[str, str]]:
        """(argv, cwd, env) to start it on a target whose Python binary is `python` (Target.python): "{python}"
        becomes it, with bpfcert and its dependencies on PYTHONPATH (a VM guest sees them at the same paths, the
        host's root over virtiofs) and the per-run `env`; a relative program path is taken from the runner's
        folder."""
        _compile(self.folder)
        argv = [arg.replace("{python}", python) for arg in self.argv]
        if "/" in argv[0] and not os.path.isabs(argv[0]):
            argv[0] = str(self.folder / argv[0])
        repo = bundled.PACKAGE.parent
        path = os.pathsep.join(dict.fromkeys([str(repo), sysconfig.get_paths()["purelib"]]))
        return argv, str(self.folder), {**dict(self.env), "PYTHONPATH": path}


@functools.cache
def _compile(folder: Path) -> None:
    """Write the bytecode of a Python runner once: guests see its folder read-only, so without it every start in a
    guest recompiles its sources (seconds under TCG), and PYTHONDONTWRITEBYTECODE may be set here."""
    import compileall

    with contextlib.suppress(OSError):
        compileall.compile_dir(str(folder), quiet=2)


def load(folder: Path) -> Runner:
    """The runner in `folder`; BpfcertError (one line) if its runner.json is missing, not JSON or off-schema."""
    path = folder / RUNNER_JSON
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BpfcertError(f"{path}: cannot read the runner's {RUNNER_JSON}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise BpfcertError(f"{path}: not a JSON {RUNNER_JSON}: {exc}") from None
    try:
        problem = schema_error("runnerFolder", data)
    except ValueError:  # jsonschema-rs cannot convert an instance nested beyond its recursion limit
        problem = "at $: nested too deep"
    if problem:
        raise BpfcertError(f"{path}: does not follow the runner schema (runnerFolder) {problem}")
    argv = data["argv"]
    if data.get("preload") and (argv[0] != "{python}" or "-m" not in argv[1:-1]):
        raise BpfcertError(f"{path}: preload needs argv [\"{{python}}\", OPTIONS..., \"-m\", MODULE, ARGS...]")
    return Runner(
        data["name"],
        folder.resolve(),
        data["description"],
        tuple(argv),
        tuple(data["needs"]),
        Claims.from_json(data["claims"]),
        preload=tuple(data.get("preload", ())),
    )


def shipped() -> list[Runner]:
    """Every runner shipped with bpfcert (runners/<name>/runner.json), by name."""
    root = bundled.directory("runners")
    return [load(folder) for folder in sorted(root.iterdir()) if (folder / RUNNER_JSON).is_file()]


def find(name: str | None = None, path: str | None = None) -> Runner:
    """The shipped runner `name` (--runtime NAME) or the runner folder at `path` (--runner PATH)."""
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise BpfcertError(f"--runner {path}: not a folder (a runner is a folder holding {RUNNER_JSON})")
        return load(folder)
    runners = {runner.name: runner for runner in shipped()}
    if name not in runners:
        known = ", ".join(sorted(runners)) or "none"
        raise BpfcertError(f"unknown runtime {name!r} (shipped runners: {known}; --runner PATH for another)")
    return runners[name]
