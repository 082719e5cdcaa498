"""RT-MDL-001: random sequences of install, upgrade, rollback, uninstall and bad-package operations keep the kernel's
state equal to the model's.

`RuntimeModel` is what the packages installed through one runtime should be: per package its version, the previous
version a rollback returns to, and the PackageState the runtime last reported. Each operation sends the command,
judges the reply against what the model expects (the right error code where the model says it must fail) and moves
the model. `mismatches` compares the model with the kernel, read independently (`kernel_state`): every program, map
and link id the runtime reported for an installed package exists, every id it reported earlier and no longer holds is
gone, the pins under the pin root are exactly the reported ones, each holding an object of its package, and `list`
names the model's packages. `machine` turns this into a Hypothesis RuleBasedStateMachine; `rt_mdl_001` runs it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bpfcert.kernel_state import ids as kernel_ids
from bpfcert.kernel_state import wait_vanished
from bpfcert.results import Result, Status
from bpfcert.runners.protocol import Failure, Options, PackageState
from bpfcert.targets.series import HOST

if TYPE_CHECKING:
    from bpfcert.runners.client import RunnerClient
    from bpfcert.targets.target import Target

UNKNOWN = "?"  # the previous version after a rollback: the protocol does not say whether a second rollback goes back


@dataclass(frozen=True)
class Package:
    """A package directory on the target's filesystem, with the name and version its manifest gives."""

    path: str
    name: str
    version: str

    @classmethod
    def read(cls, path: str | Path) -> Package:
        manifest = json.loads((Path(path) / "bpfpkg.json").read_text(encoding="utf-8"))
        return cls(str(path), manifest["name"], manifest["version"])


@dataclass
class Installed:
    version: str
    state: PackageState
    previous: str | None


@dataclass
class RuntimeModel:
    """The packages one runtime should hold under `pin_root` (a directory on a bpffs, whose parent exists),
    installed with `options`."""

    client: RunnerClient
    target: Target
    pin_root: str
    options: Options = field(default_factory=Options)
    installed: dict[str, Installed] = field(default_factory=dict)
    retired: dict[str, set[int]] = field(default_factory=lambda: {"programs": set(), "maps": set(), "links": set()})
    log: list[str] = field(default_factory=list)  # the operations so far, for the evidence

    def install(self, package: Package) -> list[str]:
        self.log.append(f"install {package.name} {package.version}")
        reply = self.client.install(package.path, self.options)
        current = self.installed.get(package.name)
        if current is not None:
            if isinstance(reply, Failure):
                return _want_code(reply, "already-installed")
            if (reply.name, reply.version) != (package.name, current.version):
                return [f"installing {package.name} again changed it to {reply.version} (want already-installed)"]
            self._move(package.name, Installed(current.version, reply, current.previous))
            return []
        if isinstance(reply, Failure):
            return [f"install {package.name} was refused: {reply.code}: {reply.message}"]
        self._move(package.name, Installed(reply.version, reply, None))
        return _named(reply, package)

    def upgrade(self, package: Package) -> list[str]:
        self.log.append(f"upgrade {package.name} to {package.version}")
        reply = self.client.upgrade(package.path, self.options)
        current = self.installed.get(package.name)
        if current is None:
            return _want_code(reply, "not-installed")
        if isinstance(reply, Failure):
            return [f"upgrade of {package.name} was refused: {reply.code}: {reply.message}"]
        self._move(package.name, Installed(package.version, reply.package, current.version))
        return _named(reply.package, package)

    def rollback(self, name: str) -> list[str]:
        self.log.append(f"rollback {name}")
        reply = self.client.rollback(name)
        current = self.installed.get(name)
        if current is None:
            return _want_code(reply, "not-installed")
        if current.previous is None or (current.previous == UNKNOWN and isinstance(reply, Failure)):
            return _want_code(reply, "no-previous-version")
        if isinstance(reply, Failure):
            return [f"rollback of {name} was refused: {reply.code}: {reply.message}"]
        self._move(name, Installed(reply.package.version, reply.package, UNKNOWN))
        if current.previous not in (UNKNOWN, reply.package.version):
            return [f"rollback of {name} went to {reply.package.version}, not the previous {current.previous}"]
        return []

    def uninstall(self, name: str) -> list[str]:
        self.log.append(f"uninstall {name}")
        reply = self.client.uninstall(name)
        if name not in self.installed:
            return _want_code(reply, "not-installed")
        if isinstance(reply, Failure):
            return [f"uninstall {name} was refused: {reply.code}: {reply.message}"]
        self._move(name, None)
        return []

    def install_bad(self, package: Package) -> list[str]:
        """Install a package that must be refused with invalid-package (e.g. a wrong digest); the model stays."""
        self.log.append(f"install bad package {package.name}")
        reply = self.client.install(package.path, self.options)
        if isinstance(reply, Failure) and reply.code == "already-installed" and package.name in self.installed:
            return []
        return _want_code(reply, "invalid-package")

    def uninstall_all(self) -> None:
        """Remove what the model holds (between runs), failures ignored."""
        for name in list(self.installed):
            self.client.uninstall(name)
        self.installed.clear()

    def mismatches(self, wait: float = 2.0) -> list[str]:
        """How the kernel differs from the model, one line each (empty when they agree). When nothing else
        differs, the objects of retired versions are given `wait` seconds to be freed (the kernel frees them
        asynchronously)."""
        # the pin root's parent exists before the first install makes the root
        snapshot = partial(self.target.call, "kernel_state", bpffs=self.pin_root.rpartition("/")[0] or "/")
        state = snapshot()
        found = self._differences(state)
        if found:  # enough to judge: no need to wait for the retired objects as well
            return found
        for kind, ids_left in wait_vanished(snapshot, self.retired, timeout=wait, first=state).items():
            if ids_left:
                found.append(f"{kind} {sorted(ids_left)} outlived the version or package that owned them")
        return found

    def _differences(self, state: dict[str, Any]) -> list[str]:
        """The installed packages' reported objects missing from the snapshot `state`, pins under the pin root
        that differ from the reported ones, and `list` against the model."""
        found: list[str] = []
        present = kernel_ids(state)
        for name, installed in sorted(self.installed.items()):
            for kind, ids in _ids(installed.state).items():
                missing = ids - present[kind] if kind != "links" or "links" not in state["unsupported"] else set()
                if missing:
                    found.append(f"{name}: {kind} {sorted(missing)} the runtime reported are not in the kernel")
        owners = {pin: name for name, i in self.installed.items() for pin in i.state.pins}
        pins = {p["path"]: p["id"] for p in state["pins"] if p["path"].startswith(self.pin_root + "/")}
        for path in sorted(set(pins) - set(owners)):
            found.append(f"pin {path} belongs to no installed package")
        for path in sorted(set(owners) - set(pins)):
            found.append(f"pin {path} of {owners[path]} is not on bpffs")
        for path in sorted(set(pins) & set(owners)):
            if not any(pins[path] in ids for ids in _ids(self.installed[owners[path]].state).values()):
                found.append(f"pin {path} holds id {pins[path]}, none of {owners[path]}'s reported objects")
        listed = self.client.list()
        want = sorted((name, i.version) for name, i in self.installed.items())
        got = listed if isinstance(listed, Failure) else sorted((p.name, p.version) for p in listed)
        if got != want:
            found.append(f"list says {got}, the model {want}")
        return found

    def _move(self, name: str, new: Installed | None) -> None:
        old = self.installed.pop(name, None)
        if new is not None:
            self.installed[name] = new
        if old is not None:
            kept = _ids(new.state) if new else {}
            for kind, ids in _ids(old.state).items():
                self.retired[kind] |= ids - kept.get(kind, set())


def _ids(state: PackageState) -> dict[str, set[int]]:
    return {
        "programs": {p.id for p in state.programs},
        "maps": {m.id for m in state.maps},
        "links": {p.link_id for p in state.programs if p.link_id is not None},
    }


def _named(state: PackageState, package: Package) -> list[str]:
    if (state.name, state.version) == (package.name, package.version):
        return []
    return [f"the runtime reports {state.name} {state.version} for {package.name} {package.version}"]


def _want_code(reply: object, code: str) -> list[str]:
    if isinstance(reply, Failure) and reply.code == code:
        return []
    got = f"{reply.code}: {reply.message}" if isinstance(reply, Failure) else "success"
    return [f"expected {code}, got {got}"]


def machine(
    new_model: Callable[[], RuntimeModel], upgrades: list[Package], others: list[Package], bad: list[Package]
) -> type[Any]:
    """A RuleBasedStateMachine over a fresh model from `new_model()` per run: install and upgrade among `upgrades`
    (versions of one package) and `others`, rollback and uninstall by name, install the `bad` packages; after every
    step, no operation went against the model and the kernel matches it."""
    from hypothesis import strategies as st
    from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

    packages = st.sampled_from(upgrades + others)
    names = st.sampled_from(sorted({p.name for p in upgrades + others}))

    class RuntimeMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.model = new_model()

        def _do(self, problems: list[str]) -> None:
            assert not problems, f"after {self.model.log[-1]}: " + "; ".join(problems)

        @rule(package=packages)
        def install(self, package: Package) -> None:
            self._do(self.model.install(package))

        @rule(package=st.sampled_from(upgrades))
        def upgrade(self, package: Package) -> None:
            self._do(self.model.upgrade(package))

        @rule(name=names)
        def rollback(self, name: str) -> None:
            self._do(self.model.rollback(name))

        @rule(name=names)
        def uninstall(self, name: str) -> None:
            self._do(self.model.uninstall(name))

        @rule(package=st.sampled_from(bad))
        def install_bad(self, package: Package) -> None:
            self._do(self.model.install_bad(package))

        @invariant()
        def kernel_matches_model(self) -> None:
            problems = self.model.mismatches()
            assert not problems, f"after {' / '.join(self.model.log) or 'no step'}: " + "; ".join(problems)

        def teardown(self) -> None:
            self.model.uninstall_all()

    return RuntimeMachine


def rt_mdl_001(
    client: RunnerClient,
    target: Target,
    upgrades: list[Package],
    others: list[Package],
    bad: list[Package],
    pin_base: str = "/sys/fs/bpf",
    max_examples: int = 10,
    steps: int = 10,
) -> Result:
    """Run the state machine against the runtime behind `client`: each run pins under a fresh directory in
    `pin_base` (an existing bpffs directory on the target); XDP programs attach to an interface made for the check
    (traffic_interface: a veth, or lo). FAIL with the (shrunk) sequence of operations and what differed."""
    from hypothesis import HealthCheck, settings
    from hypothesis.stateful import run_state_machine_as_test

    row = partial(Result.of, "RT-MDL-001", target=target.name)
    token = uuid.uuid4().hex[:8]
    runs = itertools.count()
    last: list[RuntimeModel] = []
    veth = target.call("traffic_interface", name="bm" + token)

    def new_model() -> RuntimeModel:
        root = f"{pin_base.rstrip('/')}/bpfcert-model-{token}-{next(runs)}"
        last[:] = [RuntimeModel(client, target, root, Options(interface=veth["interface"], pin_root=root))]
        return last[0]

    config = settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    try:
        run_state_machine_as_test(machine(new_model, upgrades, others, bad), settings=config)
    except AssertionError as exc:
        operations = last[0].log if last else []
        message = str(exc).splitlines()[0] if str(exc) else "the state machine failed"
        return row(Status.FAIL, message, evidence={"operations": operations, "problem": str(exc)})
    finally:
        target.call("traffic_interface_del", interface=veth["interface"])
        if target.name == HOST:  # the pin roots this check named, emptied by the uninstalls (a guest's bpffs dies)
            for made in range(next(runs)):
                with contextlib.suppress(OSError):
                    os.rmdir(f"{pin_base.rstrip('/')}/bpfcert-model-{token}-{made}")
    return row(Status.PASS, f"{max_examples} random sequences of up to {steps} operations kept the kernel = the model")
