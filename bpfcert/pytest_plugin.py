"""pytest plugin: Hypothesis profiles (dev, ci) and the kernel targets (--target, the `target` fixture).

Every test that takes `target` (or `target_outcome`, which also gets a target that failed to open, for
KRN-BOOT-001) runs once per selected target and is marked `vm`. A target is opened once per session (VMs boot
in the background, `default_jobs()` at a time, as soon as collection ends) and closed at the end; tests marked
`after_all` (the per-target end-of-session checks such as KRN-SPLAT-001) run last. The terminal summary says
which kernel, accelerator and boot time each target had.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from bpfcert.errors import TargetError

if TYPE_CHECKING:
    from bpfcert.targets import Target

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        default=None,
        help="kernel targets: host, 5.10, 6.1, 6.12, 7.2, comma-separated, or all (default: host + cached)",
    )
    parser.addoption(
        "--target-accel", default="auto", choices=["auto", "kvm", "tcg"], help="accelerator for VM targets"
    )


class TargetPool:
    """The session's targets: opened once (VMs in the background, a few at a time), closed at session end."""

    def __init__(self, accel: str) -> None:
        self.accel = accel
        self._futures: dict[str, Future[Target]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def start(self, names: list[str]) -> None:
        """Begin opening `names` (VMs only; the host opens on first use)."""
        for name in names:
            self._submit(name)

    def get(self, name: str) -> Target:
        """The open target `name`; pytest.skip where VMs cannot run here; its TargetError if it failed."""
        opened = self.outcome(name)
        if isinstance(opened, TargetError):
            raise opened
        return opened

    def outcome(self, name: str) -> Target | TargetError:
        """The open target `name` or the TargetError that stopped it; pytest.skip where VMs cannot run here."""
        from bpfcert.targets.kernels import cached_kernels
        from bpfcert.targets.vm import missing_tools

        if name != "host":
            reason = missing_tools()
            if reason:
                pytest.skip(f"target {name}: {reason}")
            if name not in cached_kernels():
                pytest.skip(f"target {name}: kernel not cached; run `bpfcert kernels fetch {name}`")
        try:
            return self._submit(name).result()
        except TargetError as exc:
            return exc

    def summary(self) -> list[str]:
        """One line per target opened this session: kernel, Debian version, accelerator, boot time, or failure."""
        from bpfcert.targets import SERIES

        order = ["host", *SERIES]
        lines = []
        for name, future in sorted(self._futures.items(), key=lambda item: order.index(item[0])):
            if not future.done():
                continue
            error = future.exception()
            if error is not None:
                lines.append(f"{name}: failed: {error}")
                continue
            info = future.result().info()
            parts = [info["release"]]
            if info["deb_sha256"]:
                parts.append(f"Debian {info['version']} (.deb sha256 {info['deb_sha256'][:12]}...)")
            if info["boot_seconds"]:
                parts.append(f"{info['accel']}, ready in {info['boot_seconds']:.2f} s")
            lines.append(f"{name}: " + ", ".join(parts))
        return lines

    def _submit(self, name: str) -> Future[Target]:
        """Open `name` in the background; what depends on the environment (cache dir) is read here, now."""
        from bpfcert.targets import HostTarget, default_jobs, vm

        with self._lock:
            if name not in self._futures:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(default_jobs(), thread_name_prefix="target")
                future: Future[Target]
                if name == "host":
                    future = self._executor.submit(HostTarget)
                else:
                    try:
                        prepared = vm.prepare(name)
                    except TargetError as exc:
                        future = Future()
                        future.set_exception(exc)
                    else:
                        future = self._executor.submit(vm.start, prepared, self.accel)
                self._futures[name] = future
            return self._futures[name]

    def close(self) -> None:
        for future in self._futures.values():
            try:
                future.result().close()
            except Exception:  # a target that failed to open has nothing to close
                continue
        if self._executor is not None:
            self._executor.shutdown()


POOL = pytest.StashKey[TargetPool]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_all: runs after all other tests (end-of-session target checks)")
    config.stash[POOL] = TargetPool(config.getoption("--target-accel"))


TARGET_FIXTURES = ("target", "target_outcome")


def target_fixture(fixturenames: Iterable[str], markers: Iterable[pytest.Mark]) -> str | None:
    """Which target fixture a test takes, if any (not a `target` argument it parametrizes itself)."""
    names = set(fixturenames)
    for mark in markers:
        argnames = mark.args[0] if mark.args else mark.kwargs.get("argnames", "")
        own = argnames.split(",") if isinstance(argnames, str) else list(argnames)
        names -= {name.strip() for name in own}
    return next((f for f in TARGET_FIXTURES if f in names), None)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    fixture = target_fixture(metafunc.fixturenames, metafunc.definition.iter_markers("parametrize"))
    if fixture:
        from bpfcert.targets import resolve_names

        names = resolve_names(metafunc.config.getoption("--target"))
        metafunc.parametrize(fixture, names, indirect=True, scope="session", ids=names)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if target_fixture(getattr(item, "fixturenames", ()), item.iter_markers("parametrize")):
            item.add_marker(pytest.mark.vm)
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start booting the VM targets the selected tests need while the other tests run."""
    from bpfcert.targets.kernels import cached_kernels
    from bpfcert.targets.vm import missing_tools

    wanted: set[str] = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        fixture = target_fixture(getattr(item, "fixturenames", ()), item.iter_markers("parametrize"))
        if callspec is not None and fixture:
            wanted.add(callspec.params[fixture])
    if wanted - {"host"} and missing_tools() is None:
        cached = cached_kernels()
        session.config.stash[POOL].start(sorted(n for n in wanted if n in cached))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash[POOL].summary()
    if lines:
        terminalreporter.write_sep("-", "kernel targets")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[POOL].close()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The kernel target this test runs on (parametrized by --target); a target that failed to open errors."""
    return request.config.stash[POOL].get(request.param)


@pytest.fixture(scope="session")
def target_outcome(request: pytest.FixtureRequest) -> tuple[str, Target | TargetError]:
    """(name, the open target or the TargetError that stopped it), for the checks of opening itself."""
    return request.param, request.config.stash[POOL].outcome(request.param)
