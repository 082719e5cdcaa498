"""The harness side of the runner protocol: `RunnerClient` drives one runner process on a target.

It starts the runner through the target's ops (runner_start / runner_exchange / runner_stop, so on a VM the runner
runs in the guest), sends `start` and checks the protocol version and the claims, then offers one typed method per
command. An `ok: false` reply comes back as a `Failure` value for the checks to judge. A runner that breaks the
protocol (not JSON, off-schema, contradicting, dead, too slow) raises RunnerProtocolError with the step, the reason
and its stderr tail; it is stopped by then, and the target carries on.
"""

from __future__ import annotations

import contextlib
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

from bpfcert.errors import RunnerProtocolError, TargetError, TargetErrorKind
from bpfcert.runners import protocol
from bpfcert.runners.protocol import Failure, Hello, Listed, Options, PackageState, VersionChange

if TYPE_CHECKING:
    from bpfcert.runners.discovery import Runner
    from bpfcert.targets.target import Target

R = TypeVar("R")
# How runner_exchange reports a runner that died or timed out (bpfcert/targets/runner.py): "<what>; exit status N,
# stderr: <its last line>".
_FAULT = re.compile(r"op '\w+' failed: RunnerError: (?P<what>.*?)(?:, stderr: (?P<stderr>.*))?$", re.S)
DEFAULT_TIMEOUT = 120.0  # seconds for one command: a real load under TCG takes seconds, never minutes


class RunnerClient:
    """One runner running on `target`; a context manager (stopped on exit). Start it with `RunnerClient.start`."""

    def __init__(self, target: Target, runner: Runner, handle: int, timeout: float) -> None:
        self.target = target
        self.runner = runner
        self.timeout = timeout
        self._handle: int | None = handle
        self.hello: Hello | None = None  # the start reply

    @classmethod
    def start(cls, target: Target, runner: Runner, timeout: float = DEFAULT_TIMEOUT) -> RunnerClient:
        """Start `runner` on `target` and exchange `start`: the runner must speak our protocol version and claim
        what its runner.json claims. RunnerProtocolError (step "launch" or "start") otherwise."""
        argv, cwd, env = runner.launch(target.python)
        preload = {"preload": list(runner.preload)} if runner.preload else {}  # forked from a fork server
        try:
            handle = target.call("runner_start", argv=argv, cwd=cwd, env=env, **preload)["handle"]
        except TargetError as exc:
            if exc.kind != TargetErrorKind.OP_FAILED:
                raise
            raise RunnerProtocolError("launch", str(exc), runner=runner.name) from None
        client = cls(target, runner, handle, timeout)
        reply = client.call(protocol.Start())
        hello = client._expect(reply, "start")
        if _as_sets(hello.claims) != _as_sets(runner.claims):
            client._fail(
                "start",
                f"claims {_claims(hello.claims)} but its {runner.folder.name}/runner.json claims "
                + _claims(runner.claims),
            )
        client.hello = hello
        return client

    def call(self, command: protocol.Command[R]) -> R | Failure:
        """Send `command`, return its reply value or the runner's Failure; RunnerProtocolError if the runner
        broke the protocol (it is stopped then, and so is this client)."""
        if self._handle is None:
            raise RunnerProtocolError(command.cmd, "the runner is stopped", runner=self.runner.name)
        line = protocol.encode(command)
        try:
            answer = self.target.call("runner_exchange", handle=self._handle, line=line, timeout=self.timeout)
        except TargetError as exc:
            self._handle = None  # runner_exchange stops a runner it gives up on
            if exc.kind != TargetErrorKind.OP_FAILED:
                raise  # the target itself failed: that is its fault, not the runner's
            fault = _FAULT.search(str(exc))
            what, stderr = (fault["what"], fault["stderr"] or "") if fault else (str(exc), "")
            raise RunnerProtocolError(command.cmd, what, stderr, self.runner.name) from None
        try:
            return protocol.decode(command, answer["line"])
        except RunnerProtocolError as exc:
            self._fail(command.cmd, exc.reason)

    def install(self, package: str, options: Options | None = None) -> PackageState | Failure:
        return self.call(protocol.Install(package, options or Options()))

    def list(self) -> tuple[Listed, ...] | Failure:
        return self.call(protocol.ListPackages())

    def status(self, name: str) -> PackageState | Failure:
        return self.call(protocol.Status(name))

    def upgrade(self, package: str, options: Options | None = None) -> VersionChange | Failure:
        return self.call(protocol.Upgrade(package, options or Options()))

    def rollback(self, name: str) -> VersionChange | Failure:
        return self.call(protocol.Rollback(name))

    def uninstall(self, name: str) -> str | Failure:
        return self.call(protocol.Uninstall(name))

    def exec(self, program: bytes, memory: bytes = b"") -> int | Failure:
        """Run `program` (instructions, 8 bytes each) with `memory`; r0, or the engine's Failure."""
        return self.call(protocol.Exec(program, memory))

    def stop(self) -> str:
        """Send `stop` and wait for the runner to exit 0, as the protocol says it does; its stderr tail."""
        reply = self.call(protocol.Stop())
        self._expect(reply, "stop")
        outcome = self._finish()
        if outcome["returncode"] != 0:
            raise RunnerProtocolError(
                "stop", f"exit status {outcome['returncode']} after stop (want 0)", outcome["stderr"], self.runner.name
            )
        stderr: str = outcome["stderr"]
        return stderr

    def close(self) -> None:
        """Stop the runner without the protocol (end of input, then a kill); nothing if it is stopped already."""
        if self._handle is not None:
            with contextlib.suppress(TargetError):  # the target is down: the runner went with it
                self._finish()

    def __enter__(self) -> RunnerClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def _finish(self) -> dict[str, Any]:
        handle, self._handle = self._handle, None
        outcome: dict[str, Any] = self.target.call("runner_stop", handle=handle)
        return outcome

    def _fail(self, step: str, reason: str) -> NoReturn:
        """Stop the runner and raise RunnerProtocolError for `step` with its stderr tail."""
        try:
            stderr = str(self._finish()["stderr"])
        except TargetError as exc:
            stderr = f"(not collected: {exc})"
        raise RunnerProtocolError(step, reason, stderr, self.runner.name)

    def _expect(self, value: R | Failure, step: str) -> R:
        """`value` unless the runner refused a command it must accept (start, stop)."""
        if isinstance(value, Failure):
            self._fail(step, f"refused ({value.code}): {value.message}")
        return value


def _as_sets(claims: protocol.Claims) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(claims.profiles), frozenset(claims.capabilities)


def _claims(claims: protocol.Claims) -> str:
    return f"profiles [{', '.join(claims.profiles)}] capabilities [{', '.join(claims.capabilities)}]"
