"""Any bpf_conformance plugin, unchanged, as an Engine: one process per case, as that contract requires.

The contract (bpf_conformance's runner): the plugin is started as `<plugin> <memory> <options>`, the memory as hex
bytes separated by spaces (an empty argument for none), the options as one argument; the program arrives on stdin
the same way, then a newline. Exit status 0 with r0 in hex on stdout (a `0x` prefix is accepted) is a result; any
other exit status is the engine refusing or faulting, its output the message. A plugin that cannot start, is killed
by a signal, runs past the timeout or prints something that is not a 64-bit hex number on success is an
EngineCrash; its whole process group is killed when it overruns.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence

from bpfcert.isa.engine import EngineCrash, Outcome

DEFAULT_TIMEOUT = 10.0
_HEX = re.compile(r"(?:0[xX])?([0-9a-fA-F]{1,16})")


def _hex(data: bytes) -> str:
    return data.hex(" ")


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


class PluginEngine:
    """A bpf_conformance plugin at `argv` (the executable and any fixed arguments before the memory)."""

    byteorder: str = sys.byteorder  # the plugin runs on the host

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str = "plugin",
        groups: frozenset[str] = frozenset({"base64"}),
        cpu_version: int = 4,
        options: str = "",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.argv, self.options, self.timeout = list(argv), options, timeout
        self.name, self.groups, self.cpu_version = name, groups, cpu_version

    def run(self, program: bytes, memory: bytes) -> Outcome:
        argv = [*self.argv, _hex(memory), self.options]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group: an overrun kills whatever it started too
            )
        except OSError as exc:
            raise EngineCrash(f"plugin {argv[0]} cannot start: {exc.strerror or exc}") from None
        with proc:
            try:
                out, err = proc.communicate(_hex(program) + "\n", timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise EngineCrash(f"plugin {argv[0]} did not answer within {self.timeout:g} s") from None
        if proc.returncode < 0:
            died = signal.Signals(-proc.returncode).name
            tail = _one_line(err.strip().splitlines()[-1]) if err.strip() else ""
            raise EngineCrash(f"plugin {argv[0]} was killed by {died}" + (f" (stderr: {tail})" if tail else ""))
        if proc.returncode:
            message = _one_line(out) or _one_line(err) or f"exit status {proc.returncode}"
            return Outcome(None, message)
        answer = _HEX.fullmatch(out.strip())
        if answer is None:
            raise EngineCrash(f"plugin {argv[0]} answered {_one_line(out, 80)!r}, not r0 in hex")
        return Outcome(int(answer.group(1), 16), None)

    def close(self) -> None:
        return None
