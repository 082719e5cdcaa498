"""pytest plugin: Hypothesis profiles (dev, ci) and the kernel targets (--target, the `target` fixture).

Every test that takes `target` (or `target_outcome`, which also gets a target that failed to open, for
KRN-BOOT-001) runs once per selected target and is marked `vm`. Targets come from the one scheduler
(bpfcert.targets.schedule): each opened once per session (VMs boot in the background, `default_jobs()` at a
time, as soon as collection ends) and closed at the end; a VM target that cannot open here (vm.unavailable)
skips its tests. Tests marked `after_all` (the per-target end-of-session checks such as KRN-SPLAT-001) run last.
The terminal summary says which kernel, accelerator and boot time each target had; in a certification run
(--results) each target's progress line also says when its last test is done, with its rows by status.

With `--results FILE` every Result a test `record`s goes into the results stream (bpfcert.stream) the moment it
is decided: the header at session start, a `target` line as each target opens, the footer at session end. A test
marked `@pytest.mark.requirement(ID, ...)` that errors (or skips) without recording anything becomes an ERROR (or
SKIP) row of its requirements, and every requirement of the selected profiles (`--profile`, and the profiles a
runner claims, `note`d as it starts) that no test recorded gets a NOT_RUN row, so the report never silently lacks
a row. `--package PKG` (repeatable) names the packages the package suite certifies (default: the bundled examples).
`--engine NAME` (repeatable) names the ISA engines conformance/test_isa.py certifies (a stream of kind "isa") on
the cases of `--isa-suite DIR` (default: conformance/isa).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, settings

from bpfcert import pytest_workers as workers
from bpfcert.errors import TargetError
from bpfcert.results import Result, Status
from bpfcert.targets.schedule import Progress, Scheduler

if TYPE_CHECKING:
    from bpfcert.errors import RunnerProtocolError
    from bpfcert.runners.client import RunnerClient
    from bpfcert.runners.discovery import Runner
    from bpfcert.stream import ResultsStream  # noqa: F401 (named in a string annotation)
    from bpfcert.targets.target import Target

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
    parser.addoption("--results", default=None, help="write the results stream (JSON lines) to this file")
    parser.addoption(
        "--package", action="append", default=[], help="a package the package suite certifies (repeatable; "
        "default: the bundled examples)"
    )
    parser.addoption(
        "--profile", action="append", default=[], help="a profile certified (repeatable or comma-separated): its "
        "requirements that no test records are NOT_RUN rows"
    )
    parser.addoption("--product", default=None, help="the vendor's product.yaml (bpfcert.product): in the header")
    parser.addoption("--certified", action="store_true", help="certified mode: the header says so (report.verdicts)")
    parser.addoption("--runtime", default=None, help="the shipped runner (runners/NAME) whose runtime is under test")
    parser.addoption("--runner", default=None, help="a runner folder (holding runner.json) whose runtime is under test")
    parser.addoption("--hub", default=None, help="the registry certified by the hub suite (oci://HOST:PORT; "
                     "default: a private docker-registry on loopback)")
    parser.addoption("--hub-storage", default=None, help="the --hub registry's filesystem root (distribution's "
                     "rootdirectory), for the tampered-blob check (HUB-CLI-001); without it, that check is skipped")
    parser.addoption(
        "--engine", action="append", default=[], help="ISA engine(s) under test, comma-separated or repeated "
        "(bpfcert.isa.suite: python-reference, linux-kernel[-jit|-interp], dpdk-interp, dpdk-jit, plugin:PATH)"
    )
    parser.addoption("--isa-suite", default=None, help="directory of ISA cases (.data; default: the bundled ones)")
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
STREAM = pytest.StashKey["ResultsStream | workers.Forwarded"]()  # with --results (a worker's: forwarded)
CLAIMED = pytest.StashKey[list[str]]()  # profiles the runners claimed in their `start` replies
CONTROLLER = pytest.StashKey[workers.Controller]()  # with pytest-xdist's -n: the controller's
NOTED_TARGETS = pytest.StashKey[set[str]]()
REMAINING = pytest.StashKey[dict[str, int]]()  # target -> its tests not yet torn down
RECORDED = pytest.StashKey[bool]()  # on an item: it recorded a Result (or its requirement rows were written)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "after_all: runs after all other tests (end-of-session target checks)")
    config.addinivalue_line("markers", "vm: runs on a kernel target (VMs boot under QEMU; skip with -m 'not vm')")
    config.addinivalue_line("markers", "requirement(*ids): the requirements a test judges (an error is their row)")
    config.addinivalue_line("markers", "hub_client: the runtime installs from a hub (certify: --profile hub-client)")
    path = config.getoption("--results")
    worker = workers.is_worker(config)
    forwarded = workers.Forwarded() if worker else None
    if path:
        from bpfcert.stream import ResultsStream

        # the controller (or the one process) writes the stream; a worker forwards its lines there
        config.stash[STREAM] = forwarded if forwarded is not None else ResultsStream(path)
        # a certification run leaves nothing behind but its stream: no .hypothesis/ example database in the cwd
        settings.register_profile("certify", settings(settings.default, database=None))
        settings.load_profile("certify")
    # certification shows each target's state change on stderr (seen as it happens when not captured: -s); a
    # worker's lines go out whole (a live line would mix with the others')
    progress = Progress("bpfcert", live=False if worker else None) if path else None
    scheduler = config.stash[SCHEDULER] = Scheduler(config.getoption("--target-accel"), progress=progress)
    config.stash[RESULTS], config.stash[CLAIMED], config.stash[NOTED_TARGETS] = [], [], set()
    if forwarded is not None:  # without --results it stays empty: the worker still groups and boots
        config.pluginmanager.register(
            workers.Worker(forwarded, target_of, partial(boot_ahead, config), scheduler.summary), "bpfcert-worker"
        )
    elif workers.is_controller(config):
        workers.check_distribution(config)
        controller = config.stash[CONTROLLER] = workers.Controller(
            partial(_keep_result, config), partial(note, config)
        )
        config.pluginmanager.register(controller, "bpfcert-controller")


def certified_packages(given: list[str]) -> list[str]:
    """The packages the package suite certifies: those `given` (--package), else the bundled examples and their
    bpfeb (big-endian) builds."""
    from bpfcert import bundled

    examples = bundled.directory("examples")
    found = [*examples.glob("*/bpfpkg.json"), *examples.glob("bpfeb/*/bpfpkg.json")]
    return given or sorted(str(p.parent) for p in found)


def selected_profiles(config: pytest.Config) -> list[str]:
    """--profile values (comma lists), then the runners' claimed profiles, each followed by those it includes."""
    from bpfcert import spec

    known = spec.profiles()
    out: list[str] = []
    pending = [p.strip() for v in config.getoption("--profile") for p in v.split(",") if p.strip()]
    claimed: list[str] = config.stash.get(CLAIMED, [])
    pending += claimed
    while pending:
        name = pending.pop(0)
        if name not in out:
            out.append(name)
            pending += known.get(name, [name])[1:]
    return out


def pytest_sessionstart(session: pytest.Session) -> None:
    """The stream's header: what is certified, on which targets, against which profiles."""
    config = session.config
    stream = config.stash.get(STREAM, None)
    if stream is None or isinstance(stream, workers.Forwarded):  # the controller writes the header
        return
    from bpfcert.targets.target import resolve_names

    try:
        names = resolve_names(config.getoption("--target"))
    except TargetError:
        names = [config.getoption("--target")]  # pytest_generate_tests reports it
    runtime = config.getoption("--runtime", None) or config.getoption("--runner", None)
    packages = config.getoption("--package")
    engines = engine_names(config)
    hub = config.getoption("--hub", None)
    subject = f"runtime {runtime}" if runtime else f"hub {hub}" if hub else ", ".join(packages) or \
        "the bundled example packages"
    product = config.getoption("--product")
    if product:
        from bpfcert.product import load_product

        product = load_product(product)
    kind = "runtime" if runtime else "hub" if hub else "package"
    if engines and not runtime:
        kind, subject, runtime = "isa", f"ISA engine {', '.join(engines)}", ", ".join(engines)
    elif engines:  # the main job: a runtime, ISA engines and packages
        subject = f"{subject}, ISA engines {', '.join(engines)} and {', '.join(packages) or 'the example packages'}"
    stream.header(kind=kind, subject=subject, targets=names,
                  profiles=selected_profiles(config), runtime=runtime, packages=packages, product=product,
                  mode="certified" if config.getoption("--certified") else "normal", engines=engines)


def engine_names(config: pytest.Config) -> list[str]:
    """The --engine values (comma lists), in order, each once."""
    return list(dict.fromkeys(n.strip() for v in config.getoption("--engine") for n in v.split(",") if n.strip()))


def note(config: pytest.Config, kind: str, data: dict[str, Any]) -> None:
    """Put a fact learnt during the run into the results stream (if any): "runner" (a runner's `start` reply and
    its "target"; its claimed profiles join the selected ones), "target" (a target's TargetInfo)."""
    if kind == "runner":
        claims = data.get("claims")
        config.stash[CLAIMED] += claims.get("profiles", []) if isinstance(claims, dict) else []
    elif kind == "target":
        config.stash[NOTED_TARGETS].add(str(data.get("name")))
    stream = config.stash.get(STREAM, None)
    if stream is not None:
        stream.note(kind, data)


def opened(config: pytest.Config, name: str) -> Target | TargetError:
    """The session's target `name` (or the TargetError that stopped it); a skip where it cannot open here."""
    from bpfcert.targets import vm
    from bpfcert.targets.series import HOST

    problem = vm.unavailable(name) if name != HOST else None
    if problem is not None:
        pytest.skip(str(problem))
    outcome = config.stash[SCHEDULER].outcome(name)
    noted = config.stash.get(NOTED_TARGETS, None)
    if noted is not None and name not in noted:  # the first time: its line in the results stream
        info = {"name": name, "error": str(outcome)} if isinstance(outcome, TargetError) else outcome.info().to_json()
        note(config, "target", info)
    return outcome


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
        from bpfcert.targets.target import resolve_names

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
    """Start booting the VM targets the selected tests need while the other tests run (not for --collect-only; a
    pytest-xdist worker boots its group's when the group starts: bpfcert.pytest_workers)."""
    if session.config.option.collectonly:
        return
    wanted: set[str] = set()
    remaining = session.config.stash[REMAINING] = {}
    for item in session.items:
        name = target_of(item)
        if name is not None:
            wanted.add(name)
            remaining[name] = remaining.get(name, 0) + 1
    if not workers.is_worker(session.config):
        boot_ahead(session.config, wanted)


def boot_ahead(config: pytest.Config, names: Iterable[str]) -> None:
    """Begin booting the VMs among `names` that can open here; the host opens when first asked for, and a VM that
    cannot (vm.unavailable) is never started: its tests skip (`opened`)."""
    from bpfcert.targets.series import HOST

    vms = sorted(n for n in set(names) - {HOST})
    if vms:
        from bpfcert.targets import vm

        config.stash[SCHEDULER].start([n for n in vms if vm.unavailable(n) is None])


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """A target's last test done: its progress line says so, with its rows by status (certification runs)."""
    remaining = item.config.stash.get(REMAINING, {})
    name = item_target(item)
    if name not in remaining:
        return
    remaining[name] -= 1
    progress = item.config.stash[SCHEDULER].progress
    if remaining[name] == 0 and progress is not None:
        counts: dict[str, int] = {}
        for r in item.config.stash[RESULTS]:
            if r.target == name:
                counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        progress.show(name, "tests done (" + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + ")")


def target_of(item: pytest.Item) -> str | None:
    """The kernel target a test takes through the target fixtures, if any."""
    callspec = getattr(item, "callspec", None)
    fixture = target_fixture(getattr(item, "fixturenames", ()), item.iter_markers("parametrize"))
    return str(callspec.params[fixture]) if callspec is not None and fixture else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    controller = config.stash.get(CONTROLLER, None)
    lines = config.stash[SCHEDULER].summary() + (controller.summary if controller else [])
    if lines:
        terminalreporter.write_sep("-", "kernel targets")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """A test marked with requirements that errors or skips without recording anything: their ERROR/SKIP rows."""
    report: pytest.TestReport = yield
    if (report.failed or report.skipped) and not item.stash.get(RECORDED, False):
        ids = [i for mark in item.iter_markers("requirement") for i in mark.args]
        if ids:
            item.stash[RECORDED] = True
            if report.skipped:
                longrepr = report.longrepr
                reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
                status, message = Status.SKIP, f"not applicable: {reason.removeprefix('Skipped: ')}"
            else:
                lines = report.longreprtext.strip().splitlines() or ["(no detail)"]
                error = call.excinfo.exconly().splitlines()[0] if call.excinfo else lines[-1]
                status, message = Status.ERROR, f"{item.name} errored in {report.when}: {error}"
            keep = _keeper(item.config, time.monotonic() - report.duration)
            keep([Result.of(i, status, message, target=item_target(item)) for i in dict.fromkeys(ids)])
    return report


def item_target(item: pytest.Item) -> str:
    """The kernel target a test runs on, "static" if none (a row's `target`)."""
    return target_of(item) or "static"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    config.stash[SCHEDULER].close()
    stream = config.stash.get(STREAM, None)
    if stream is None or isinstance(stream, workers.Forwarded):  # a worker's lines: bpfcert.pytest_workers
        return
    if exitstatus == pytest.ExitCode.INTERRUPTED or session.shouldstop or session.shouldfail:
        stream.close()  # a run cut short (Ctrl-C, -x, --maxfail): no footer, it reads back incomplete
        return
    from bpfcert import spec

    seen = {r.id for r in config.stash[RESULTS]}
    applies = spec.profile_applies_to()
    noted: set[str] = config.stash.get(NOTED_TARGETS, set())
    targets = sorted(noted) or ["host"]
    for profile in selected_profiles(config):
        for req_id, requirement in spec.catalogue().items():
            if requirement.profile != profile or req_id in seen:
                continue
            where = ["static"] if applies.get(profile) == "package" else targets
            for target in where:
                stream.result(Result.of(req_id, Status.NOT_RUN, "not run: no test in this run recorded it",
                                        target=target))
    stream.footer()


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


def _keeper(config: pytest.Config, started: float) -> Callable[[list[Result]], None]:
    """Keep a batch of Results for the run (and stream them with --results), stamped with the time since
    `started`."""

    def keep(batch: list[Result]) -> None:
        duration = round(time.monotonic() - started, 3)
        for r in batch:
            _keep_result(config, r if r.duration is not None else dataclasses.replace(r, duration=duration))

    return keep


def _keep_result(config: pytest.Config, result: Result) -> None:
    """One Result kept for the run, and streamed with --results (a worker's forwarded to the controller's)."""
    config.stash[RESULTS].append(result)
    stream = config.stash.get(STREAM, None)
    if stream is not None:
        stream.result(result)


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Callable[[Result | Iterable[Result]], list[Result]]:
    """Record the Results a test decided (one or many) for the run's results, into the results stream at once
    with --results; returns them, so a test can write
    `assert all(r.status is Status.PASS for r in record(check(...)))`."""
    keep = _keeper(request.config, time.monotonic())

    def record_results(results: Result | Iterable[Result]) -> list[Result]:
        batch = [results] if isinstance(results, Result) else list(results)
        request.node.stash[RECORDED] = True
        keep(batch)
        return batch

    return record_results


def runner_under_test(config: pytest.Config, default: str | None = None) -> Runner:
    """The runner selected by --runtime NAME or --runner DIR, else the shipped runner `default`; a skip when none
    is, or what it needs is missing."""
    from bpfcert.runners import discovery

    name, path = config.getoption("--runtime"), config.getoption("--runner")
    if name is None and path is None:
        if default is None:
            pytest.skip("no runtime under test (--runtime NAME or --runner DIR)")
        name = default
    found = discovery.find(name, path)
    missing = found.missing()
    if missing:
        pytest.skip(missing)
    return found


@pytest.fixture(scope="session")
def runner(request: pytest.FixtureRequest) -> Runner:
    """The runner selected by --runtime NAME or --runner DIR; a skip when none is, or what it needs is missing."""
    return runner_under_test(request.config)


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
    if client.hello is not None:
        note(request.config, "runner", {"target": target.name, **dataclasses.asdict(client.hello)})
    with client:
        yield client
    if target.name == HOST:  # a guest's scratch goes with the guest
        shutil.rmtree(scratch, ignore_errors=True)
