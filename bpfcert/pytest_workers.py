"""Kernel targets shared out among pytest-xdist workers (`pytest -n N --dist loadgroup`, as `bpfcert certify` runs
the suite when it has several targets): the targets run side by side, one per worker at a time, and each target's
tests stay on one worker, so each VM still boots once per run.

- `groups` deals the targets into one group per worker, the heaviest first onto the lightest group (a TCG guest of
  another architecture weighs most, the host least); each test on a target is marked `xdist_group` with its group.
- A worker (`Worker`) boots all its group's VMs as the group's first test starts, queues what it would have written
  to the results stream (`Forwarded`) and hands it over on each test report (`user_properties`), and what is left
  at its end, with its targets' summary lines, in its `workeroutput`.
- The controller (`Controller`) replays both into the one results stream, in the order they arrive.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Generator, Iterable, Mapping
from typing import Any

import pytest

from bpfcert.results import Result
from bpfcert.targets.series import TargetName

FORWARDED = "bpfcert"  # the user_properties / workeroutput key of forwarded lines
Line = list[Any]  # ["result", Result.to_json()] or ["note", kind, data]


def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def is_controller(config: pytest.Config) -> bool:
    """Whether this process hands tests out to workers (xdist has set --dist by pytest_configure)."""
    return getattr(config.option, "dist", "no") != "no" and not is_worker(config)


def check_distribution(config: pytest.Config) -> None:
    """A controller must share tests out by group: UsageError for any other --dist."""
    if config.option.dist != "loadgroup":
        raise pytest.UsageError(
            f"bpfcert: -n needs --dist loadgroup, not {config.option.dist}: each kernel target's tests stay on one "
            "worker, so that each VM boots once"
        )


def weight(target: str) -> float:
    """A target's expected share of a run: a guest of the host's architecture 1, of another one 3 (emulating
    another instruction set is slower), the host 0.5."""
    name = TargetName.parse(target)
    if name.is_host:
        return 0.5
    return 1.0 if name.machine.kvm_possible else 3.0


def groups(targets: Iterable[str], workers: int) -> dict[str, str]:
    """target -> "targets-K" (K < `workers`): the heaviest target first, each onto the group with the least weight
    so far (the first such group on a tie), so that the same targets always make the same groups."""
    load = [0.0] * max(1, workers)
    out: dict[str, str] = {}
    for target in sorted(dict.fromkeys(targets), key=lambda t: (-weight(t), t)):
        k = load.index(min(load))
        load[k] += weight(target)
        out[target] = f"targets-{k}"
    return out


def runs_here(config: pytest.Config, target: str) -> bool:
    """Whether this process runs `target`'s tests, as far as it knows yet: any target in one process; in a worker,
    those of the groups it has begun (so that work begun ahead, such as ISA batches, boots no other worker's VM)."""
    worker = config.pluginmanager.get_plugin("bpfcert-worker")
    return not isinstance(worker, Worker) or worker.group_of.get(target) in worker.booted


class Forwarded:
    """A worker's stand-in for the results stream: its lines queued (as plain JSON values) for the controller."""

    def __init__(self) -> None:
        self._lines: list[Line] = []
        self._lock = threading.Lock()

    def result(self, result: Result) -> None:
        self._queue(["result", result.to_json()])

    def note(self, kind: str, data: dict[str, Any]) -> None:
        self._queue(["note", kind, data])

    def drain(self) -> list[Line]:
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def _queue(self, line: Line) -> None:
        plain = json.loads(json.dumps(line, default=str))  # what crosses to the controller: JSON values only
        with self._lock:
            self._lines.append(plain)


class Worker:
    """The worker side: groups the tests on targets, boots a group's VMs at its first test, hands queued lines over
    on each report and at the end."""

    def __init__(
        self, forwarded: Forwarded, target_of: Callable[[pytest.Item], str | None], boot: Callable[[list[str]], None],
        summary: Callable[[], list[str]],
    ) -> None:
        self.forwarded, self.target_of, self.boot, self.summary = forwarded, target_of, boot, summary
        self.group_of: dict[str, str] = {}
        self.booted: set[str] = set()

    @pytest.hookimpl(tryfirst=True)  # before xdist's own, which names each test by its group
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        on = {item: target for item in items if (target := self.target_of(item)) is not None}
        if not on:
            return
        self.group_of = groups(on.values(), int(config.workerinput["workercount"]))  # type: ignore[attr-defined]
        for item, target in on.items():
            item.add_marker(pytest.mark.xdist_group(self.group_of[target]))

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """The first test of a group: all of its VMs start booting (`boot`: pytest_plugin.boot_ahead; the first one
        is then waited for)."""
        target = self.target_of(item)
        group = self.group_of.get(target) if target else None
        if group is not None and group not in self.booted:
            self.booted.add(group)
            self.boot([t for t, g in self.group_of.items() if g == group])

    @pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after the plugin's own rows for the report
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report: pytest.TestReport = yield
        lines = self.forwarded.drain()
        if lines:  # a new list: the report's is the item's own, shared by its three phases
            report.user_properties = [*report.user_properties, (FORWARDED, lines)]
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        output: dict[str, Any] = session.config.workeroutput  # type: ignore[attr-defined]
        output[FORWARDED] = {"lines": self.forwarded.drain(), "targets": self.summary()}


class Controller:
    """The controller side: each forwarded line replayed (a result to `keep`, a note to `note`) as its report
    arrives; the workers' target summary lines gathered as they end."""

    def __init__(self, keep: Callable[[Result], None], note: Callable[[str, dict[str, Any]], None]) -> None:
        self.keep, self.note = keep, note
        self.summary: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        for key, lines in report.user_properties:
            if key == FORWARDED and isinstance(lines, list):
                self.replay(lines)
        report.user_properties = [p for p in report.user_properties if p[0] != FORWARDED]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output: Mapping[str, Any] = getattr(node, "workeroutput", {}).get(FORWARDED, {})
        self.replay(output.get("lines", []))
        self.summary += output.get("targets", [])

    def replay(self, lines: list[Line]) -> None:
        for line in lines:
            if line[0] == "result":
                self.keep(Result.from_json(line[1]))
            else:
                self.note(line[1], line[2])
