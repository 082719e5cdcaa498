"""`python -m refruntime COMMAND`: the reference runtime by hand (JSON replies on stdout; exit 0, or 1 with the
error code and message on stderr), or `serve` for the runner protocol on stdin/stdout."""

from __future__ import annotations

import json
import sys

from bpfcert.runners.serve import RunnerFailure, serve
from refruntime import VERSION
from refruntime.runtime import Runtime

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any

CLAIMS = {
    "profiles": ["runtime-core", "runtime-upgrade"],
    "capabilities": [
        "attach:xdp",
        "attach:tc",
        "attach:tracepoint",
        "attach:kprobe",
        "attach:fentry",
        "attach:cgroup",
        "pin",
        "upgrade:link-update",
        "upgrade:make-before-break",
        "rollback",
        "signature",
        "state:reconcile",
    ],
}
START = {
    "runtime": {
        "name": "bpfcert-reference",
        "vendor": "bpfcert",
        "version": VERSION,
        "homepage": "https://bpfcert.dev/runtimes/reference",
        "source": "runners/reference",
    },
    "claims": CLAIMS,
}


def _options(request: dict[str, Any]) -> dict[str, Any]:
    options = request.get("options", {})
    if not isinstance(options, dict):
        raise RunnerFailure("bad-request", "options must be an object")
    return options


def _text(request: dict[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value:
        raise RunnerFailure("bad-request", f"{request.get('cmd')} needs a string {key}")
    return value


def handlers(runtime: Runtime) -> dict[str, Any]:
    """One protocol handler per command, each one locked operation."""
    return {
        "install": lambda r: runtime.locked(runtime.install, _text(r, "package"), _options(r)),
        "upgrade": lambda r: runtime.locked(runtime.upgrade, _text(r, "package"), _options(r)),
        "rollback": lambda r: runtime.locked(runtime.rollback, _text(r, "name")),
        "uninstall": lambda r: runtime.locked(runtime.uninstall, _text(r, "name")),
        "status": lambda r: runtime.locked(runtime.status, _text(r, "name")),
        "list": lambda r: runtime.locked(runtime.list),
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["serve"]:  # the runner protocol, started once per run and target and again after every kill:
        runtime = Runtime()  # no argparse to import (a tenth of the start-up in a TCG guest)
        try:
            serve(START, handlers(runtime))
            return 0
        finally:
            runtime.close()
    return command(argv)


def command(argv: list[str]) -> int:
    """One command by hand."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m refruntime", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    for cmd in ("install", "upgrade"):
        p = sub.add_parser(cmd, help=f"{cmd} a package (directory or .tar.gz)")
        p.add_argument("package")
        p.add_argument("--interface", help="network interface for XDP and tc programs")
        p.add_argument("--cgroup", help="cgroup v2 directory for cgroup programs")
        p.add_argument("--pin-root", help="bpffs directory for the package's pins")
        p.add_argument("--tunable", action="append", default=[], metavar="NAME=VALUE", help="set a .rodata tunable")
    for cmd in ("status", "rollback", "uninstall"):
        sub.add_parser(cmd).add_argument("name")
    sub.add_parser("list")
    sub.add_parser("serve", help="speak the runner protocol on stdin/stdout")
    args = parser.parse_args(argv)
    runtime = Runtime()
    try:
        request: dict[str, Any] = {"cmd": args.cmd, **{k: v for k, v in vars(args).items() if k in ("package", "name")}}
        if args.cmd in ("install", "upgrade"):
            options: dict[str, Any] = {"interface": args.interface, "cgroup": args.cgroup, "pin_root": args.pin_root}
            options = {k: v for k, v in options.items() if v}
            if args.tunable:
                options["tunables"] = dict(_tunable(t) for t in args.tunable)
            request["options"] = options
        try:
            reply = handlers(runtime)[args.cmd](request)
        except RunnerFailure as exc:
            print(f"refruntime: {exc.code}: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(reply, indent=2))
        return 0
    finally:
        runtime.close()


def _tunable(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--tunable {text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


if __name__ == "__main__":
    sys.exit(main())
