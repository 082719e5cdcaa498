"""The runner side of the protocol: read JSON-line requests on stdin, answer each on stdout.

A runner written in Python gives `serve` its `start` reply and one handler per command it supports; a handler takes
the request and returns the reply's fields (``ok`` is added) or raises `RunnerFailure` with a protocol error code.
Commands without a handler answer `unsupported`; `stop` answers and returns. Stdlib only, and
typing only for the type checker: runners start inside guests, where every import costs start-up time."""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False  # typing is not imported at run time: a tenth of a second in a TCG guest
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TextIO

    Handler = Callable[[dict[str, Any]], dict[str, Any]]

PROTOCOL_VERSION = 1


class RunnerFailure(Exception):
    """A command that failed as the protocol expects: `code` from the schema's error codes, a one-line message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _reply(out: TextIO, body: dict[str, Any]) -> None:
    out.write(json.dumps(body, separators=(",", ":")) + "\n")
    out.flush()


def _failure(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": " ".join(message.split())}}


def _answer(request: Any, start: dict[str, Any], handlers: dict[str, Handler]) -> dict[str, Any]:
    if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
        return _failure("bad-request", "a request is a JSON object with a string cmd")
    cmd = request["cmd"]
    if cmd == "start":
        if request.get("protocol_version") != PROTOCOL_VERSION:
            wanted = request.get("protocol_version")
            return _failure("unsupported", f"protocol version {wanted!r}; this runner speaks {PROTOCOL_VERSION}")
        return {"ok": True, "protocol_version": PROTOCOL_VERSION, **start}
    if cmd == "stop":
        return {"ok": True}
    handler = handlers.get(cmd)
    if handler is None:
        return _failure("unsupported", f"this runner does not implement {cmd}")
    try:
        return {"ok": True, **handler(request)}
    except RunnerFailure as exc:
        return _failure(exc.code, str(exc))


def serve(
    start: dict[str, Any], handlers: dict[str, Handler], stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> None:
    """Answer requests until `stop` or end of input. `start` is the start reply without ok/protocol_version:
    {"runtime": {name, vendor, version, homepage, source}, "claims": {"profiles": [...], "capabilities": [...]}}.
    An exception other than RunnerFailure propagates: the harness then sees the runner die, with its stderr."""
    for line in stdin:
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            _reply(stdout, _failure("bad-request", f"not JSON: {exc.msg}"))
            continue
        _reply(stdout, _answer(request, start, handlers))
        if isinstance(request, dict) and request.get("cmd") == "stop":
            return
