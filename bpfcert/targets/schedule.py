"""The one target scheduler, for `bpfcert probe` and the pytest plugin alike: each target opened once per run (VMs
in the background, at most `jobs` booting at a time), progress reported as each target's state changes, every
target closed at the end."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

import bpfcert.targets.target as targets
from bpfcert.errors import TargetError
from bpfcert.targets.series import ALL_ARCH, HOST
from bpfcert.targets.target import Target, default_jobs

T = TypeVar("T")


class Progress:
    """Target states on stderr: a live status line on a terminal, else one "<label>: <target> <state>" line per
    state change (waiting, opening or booting, ready [in N s], done [(summary)], failed (kind))."""

    def __init__(self, label: str, live: bool | None = None) -> None:
        self.label = label
        self.live = sys.stderr.isatty() if live is None else live
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()

    def expect(self, names: Iterable[str]) -> None:
        """Show `names` as waiting (on the live line) until their state changes."""
        with self._lock:
            for name in names:
                self._states.setdefault(name, "waiting")

    def show(self, name: str, state: str) -> None:
        with self._lock:
            self._states[name] = state
            if self.live:
                line = "  ".join(f"{n}: {s}" for n, s in self._states.items())
                sys.stderr.write(f"\r\x1b[K[{self.label}] {line}")
            else:
                sys.stderr.write(f"{self.label}: {name} {state}\n")
            sys.stderr.flush()

    def end(self) -> None:
        """End the live line."""
        if self.live and self._states:
            sys.stderr.write("\n")


class Scheduler:
    """The targets of one run. `start` begins opening targets in the background; `outcome` and `get` give one
    (opening it now if nothing started it); `run` opens, uses and closes each of a list; `close` (or leaving a
    `with` block) closes every target still open.

    A VM is staged (targets.prepare_target) in the thread that asks for it, so that it reads the environment of
    that moment, and booted in the background; the host opens at once and takes no boot slot.
    """

    def __init__(
        self, accel: str = "auto", *, jobs: int | None = None, progress: Progress | None = None, **options: Any
    ) -> None:
        self.accel = accel
        self.jobs = jobs or default_jobs()
        self.progress = progress
        self.options = options  # for VmTarget (timeouts, faults)
        self._opening: dict[str, Future[Target]] = {}
        self._closed: set[str] = set()
        self._lock = threading.Lock()
        self._boots = ThreadPoolExecutor(self.jobs, thread_name_prefix="target-boot")

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def start(self, names: Iterable[str]) -> None:
        """Begin opening `names`."""
        for name in names:
            self._submit(name)

    def outcome(self, name: str) -> Target | TargetError:
        """The open target `name`, or the TargetError that stopped it."""
        try:
            return self._submit(name).result()
        except TargetError as exc:
            return exc

    def get(self, name: str) -> Target:
        """The open target `name`; its TargetError if it could not open."""
        opened = self.outcome(name)
        if isinstance(opened, TargetError):
            raise opened
        return opened

    def run(
        self, names: list[str], fn: Callable[[Target], T], summary: Callable[[T], str] | None = None
    ) -> dict[str, T | TargetError]:
        """Open each target, run `fn` on it, close it; a target that fails (opening or in `fn`) gives its
        TargetError and the others carry on. At most `jobs` VMs are up at a time; "done" progress shows
        `summary` of fn's result."""
        if self.progress:
            self.progress.expect(names)
        slots = threading.Semaphore(self.jobs)

        def one(name: str) -> T | TargetError:
            with slots if name != HOST else contextlib.nullcontext():
                return self._use(name, fn, summary)

        with ThreadPoolExecutor(max(1, len(names)), thread_name_prefix="target-run") as pool:
            futures = {name: pool.submit(one, name) for name in names}
            return {name: future.result() for name, future in futures.items()}

    def summary(self) -> list[str]:
        """One line per target opened: kernel, Debian version, accelerator, boot time, or why it failed."""
        order = {name: i for i, name in enumerate([HOST, *ALL_ARCH])}
        lines = []
        for name, future in sorted(self._opening.items(), key=lambda item: order.get(item[0], len(order))):
            if not future.done():
                continue
            error = future.exception()
            if error is not None:
                lines.append(f"{name}: failed: {error}")
                continue
            info = future.result().info()
            parts = [info.release]
            if info.deb_sha256:
                parts.append(f"Debian {info.version} (.deb sha256 {info.deb_sha256[:12]}...)")
            if info.boot_seconds:
                parts.append(f"{info.accel}, ready in {info.boot_seconds:.2f} s")
            lines.append(f"{name}: " + ", ".join(parts))
        return lines

    def close(self) -> None:
        """Close every target still open, waiting for those still booting."""
        for name in list(self._opening):
            self._close(name)
        self._boots.shutdown()
        if self.progress:
            self.progress.end()

    def _submit(self, name: str) -> Future[Target]:
        """The opening of `name`, begun on first request: staged here, then booted in the background."""
        with self._lock:
            future = self._opening.get(name)
            if future is not None:
                return future
            future = self._opening[name] = Future()
        try:
            boot = targets.prepare_target(name, self.accel, **self.options)
        except Exception as exc:
            self._settle(name, future, exc)
        else:
            if name == HOST:
                self._open(name, boot, future)
            else:
                self._boots.submit(self._open, name, boot, future)
        return future

    def _open(self, name: str, boot: Callable[[], Target], future: Future[Target]) -> None:
        self._show(name, "opening" if name == HOST else "booting")
        try:
            target = boot()
        except Exception as exc:
            self._settle(name, future, exc)
            return
        seconds = target.info().boot_seconds
        self._show(name, f"ready in {seconds:.1f} s" if seconds is not None else "ready")
        future.set_result(target)

    def _settle(self, name: str, future: Future[Target], exc: Exception) -> None:
        """`name` did not open: report a TargetError as failed; any other exception goes to whoever waits."""
        if isinstance(exc, TargetError):
            self._show(name, f"failed ({exc.kind})")
        future.set_exception(exc)

    def _use(self, name: str, fn: Callable[[Target], T], summary: Callable[[T], str] | None) -> T | TargetError:
        """`fn` on the open target `name`, which is closed afterwards."""
        opened = self.outcome(name)
        if isinstance(opened, TargetError):
            return opened
        try:
            try:
                result = fn(opened)
            finally:
                self._close(name)
        except TargetError as exc:
            self._show(name, f"failed ({exc.kind})")
            return exc
        self._show(name, f"done ({summary(result)})" if summary else "done")
        return result

    def _close(self, name: str) -> None:
        """Close `name` once (a target that failed to open has nothing to close)."""
        with self._lock:
            if name in self._closed:
                return
            self._closed.add(name)
            future = self._opening[name]
        try:
            target = future.result()
        except Exception:
            return
        target.close()

    def _show(self, name: str, state: str) -> None:
        if self.progress:
            self.progress.show(name, state)
