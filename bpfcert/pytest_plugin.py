"""pytest plugin: Hypothesis profiles (dev, ci) and the kernel targets (--target, the `target` fixture).

Every test that takes `target` (or `target_outcome`, which also gets a target that failed to open, for
KRN-BOOT-001) runs once per selected target and is marked `vm`. Targets come from the one scheduler
(bpfcert.targets.schedule): each opened once per session (VMs boot in the background, `default_jobs()` at a
time, as soon as collection ends) and closed at the end; a VM target that cannot open here (vm.unavailable)
skips its tests. Tests marked `after_all` (the per-target end-of-session checks such as KRN-SPLAT-001) run last.
The terminal summary says which kernel, accelerator and boot time each target had.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from bpfcert.errors import TargetError
from bpfcert.results import Result
from bpfcert.targets.schedule import Scheduler

if TYPE_CHECKING:
    from bpfcert.errors import RunnerProtocolError
    from bpfcert.runners.client import RunnerClient
    from bpfcert.runners.discovery import Runner
    from bpfcert.targets import Target

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    from bpfcert.targets import series

    parser.addoption("--target", default=None, help=f"kernel targets: {series.target_help()} (default: host + cached)")
    parser.addoption(
        "--target-accel", default="auto", choices=["auto", "kvm", "tcg"], help="accelerator for VM targets"
    )
    parser.addoption("--runtime", default=None, help="the shipped runner (runners/NAME) whose runtime is under test")
    parser.addoption("--runner", default=None, help="a runner folder (holding runner.json) whose runtime is under test")
    parser.addoption(
        "--runner-env",
        action="append",
        default=None,
        metavar="NAME=VALUE",
        help="environment for the runner on each target ({scratch}: a fresh directory there); default: "
        + ", ".join(RUNNER_ENV),
    )


# The shipped runners' state directories, fresh per run and target (guests have a read-only /var/lib).
RUNNER_ENV = ("BPFCERT_REFERENCE_STATE={scratch}/state", "BPFCERT_ADAPTER_STATE={scratch}/state")
SCHEDULER = pytest.StashKey[Scheduler]()
RESULTS = pytest.StashKey[list[Result]]()  # every Result the tests recorded, in the order they were decided


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_all: runs after all other tests (end-of-session target checks)")
    config.addinivalue_line("markers", "vm: runs on a kernel target (VMs boot under QEMU; skip with -m 'not vm')")
    config.stash[SCHEDULER] = Scheduler(config.getoption("--target-accel"))


def opened(config: pytest.Config, name: str) -> Target | TargetError:
    """The session's target `name` (or the TargetError that stopped it); a skip where it cannot open here."""
    from bpfcert.targets import vm
    from bpfcert.targets.series import HOST

    problem = vm.unavailable(name) if name != HOST else None
    if problem is not None:
        pytest.skip(str(problem))
    return config.stash[SCHEDULER].outcome(name)


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


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test that takes a target is marked `vm` as it is collected, before -m selects by marks."""
    if target_fixture(getattr(item, "fixturenames", ()), item.iter_markers("parametrize")):
        item.add_marker(pytest.mark.vm)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`after_all` tests run last (after pytest's own reordering by fixture)."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start booting the VM targets the selected tests need while the other tests run (not for --collect-only)."""
    from bpfcert.targets.series import HOST

    if session.config.option.collectonly:
        return
    wanted: set[str] = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        fixture = target_fixture(getattr(item, "fixturenames", ()), item.iter_markers("parametrize"))
        if callspec is not None and fixture:
            wanted.add(callspec.params[fixture])
    if wanted - {HOST}:
        from bpfcert.targets import vm

        session.config.stash[SCHEDULER].start(sorted(n for n in wanted - {HOST} if vm.unavailable(n) is None))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash[SCHEDULER].summary()
    if lines:
        terminalreporter.write_sep("-", "kernel targets")
        for line in lines:
            terminalreporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[SCHEDULER].close()


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    """The kernel target this test runs on (parametrized by --target); a target that failed to open errors."""
    outcome = opened(request.config, request.param)
    if isinstance(outcome, TargetError):
        raise outcome
    return outcome


@pytest.fixture(scope="session")
def target_outcome(request: pytest.FixtureRequest) -> tuple[str, Target | TargetError]:
    """(name, the open target or the TargetError that stopped it), for the checks of opening itself."""
    return request.param, opened(request.config, request.param)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[Result | Iterable[Result]], list[Result]]:
    """Record the Results a test decided (one or many) for the run's results; returns them, so a test can write
    `assert all(r.status is Status.PASS for r in record(check(...)))`."""
    recorded: list[Result] = request.config.stash.setdefault(RESULTS, [])

    def record_results(results: Result | Iterable[Result]) -> list[Result]:
        batch = [results] if isinstance(results, Result) else list(results)
        recorded.extend(batch)
        return batch

    return record_results


@pytest.fixture(scope="session")
def runner(request: pytest.FixtureRequest) -> Runner:
    """The runner selected by --runtime NAME or --runner DIR; a skip when none is, or what it needs is missing."""
    from bpfcert.runners import discovery

    name, path = request.config.getoption("--runtime"), request.config.getoption("--runner")
    if name is None and path is None:
        pytest.skip("no runtime under test (--runtime NAME or --runner DIR)")
    found = discovery.find(name, path)
    missing = found.missing()
    if missing:
        pytest.skip(missing)
    return found


@pytest.fixture(scope="session")
def runtime(
    runner: Runner, target: Target, request: pytest.FixtureRequest
) -> Iterator[RunnerClient | RunnerProtocolError]:
    """The runner started on `target` (once per target, stopped at the end) with --runner-env, {scratch} a fresh
    directory on the target; the RunnerProtocolError of a runner that would not start, for the tests to record as
    an ERROR result."""
    import shutil
    import uuid

    from bpfcert.errors import RunnerProtocolError
    from bpfcert.runners.client import RunnerClient
    from bpfcert.targets.series import HOST

    scratch = f"{'/tmp' if target.name == HOST else '/run/tmp'}/bpfcert-runtime-{uuid.uuid4().hex[:12]}"
    env = dict(item.partition("=")[::2] for item in request.config.getoption("--runner-env") or RUNNER_ENV)
    try:
        client = RunnerClient.start(
            target, runner.with_env({k: v.replace("{scratch}", scratch) for k, v in env.items()})
        )
    except RunnerProtocolError as exc:
        yield exc
        return
    with client:
        yield client
    if target.name == HOST:  # a guest's scratch goes with the guest
        shutil.rmtree(scratch, ignore_errors=True)
