"""A well-behaved runner that claims nothing real: install, list, status, upgrade, rollback and uninstall keep
package names and versions (read from bpfpkg.json) in a dict; exec answers r0 = the number of instructions.

`--fault MODE` breaks the protocol on `install`: garbage (a line that is not JSON), off-schema (a package state
without its fields), bad-code (an error code the protocol lacks), die (exits 7), hang (never answers), or at start:
version (answers start with protocol version 2), claims (claims what runner.json does not), refuse (speaks only
version 2, so refuses start)."""

import json
import sys
import time
from pathlib import Path

from bpfcert.runners import serve as serve_module
from bpfcert.runners.serve import RunnerFailure, serve

FAULT = sys.argv[sys.argv.index("--fault") + 1] if "--fault" in sys.argv else None
installed: dict[str, list[str]] = {}  # name -> versions, the current one last


def state(name: str) -> dict:
    return {"name": name, "version": installed[name][-1], "programs": [], "maps": [], "pins": []}


def manifest(request: dict) -> tuple[str, str]:
    try:
        data = json.loads((Path(request["package"]) / "bpfpkg.json").read_text())
        return data["name"], data["version"]
    except (OSError, ValueError, KeyError) as exc:
        raise RunnerFailure("invalid-package", f"no readable bpfpkg.json: {exc}") from None


def install(request: dict) -> dict:
    if FAULT == "garbage":
        print("installing... done!", flush=True)
    elif FAULT == "off-schema":
        return {"package": {"name": "whatever"}}
    elif FAULT == "bad-code":
        raise RunnerFailure("out-of-coffee", "a code the protocol does not have")
    elif FAULT == "die":
        print("fake runner: dying in the middle of install", file=sys.stderr, flush=True)
        sys.exit(7)
    elif FAULT == "hang":
        time.sleep(3600)
    name, version = manifest(request)
    if name in installed:
        raise RunnerFailure("already-installed", f"{name} {installed[name][-1]} is installed")
    installed[name] = [version]
    return {"package": state(name)}


def installed_name(request: dict) -> str:
    if request["name"] not in installed:
        raise RunnerFailure("not-installed", f"{request['name']} is not installed")
    return request["name"]


def upgrade(request: dict) -> dict:
    name, version = manifest(request)
    installed_name({"name": name})
    before = installed[name][-1]
    installed[name].append(version)
    return {"package": state(name), "attachments": [], "from_version": before, "to_version": version}


def rollback(request: dict) -> dict:
    name = installed_name(request)
    if len(installed[name]) < 2:
        raise RunnerFailure("no-previous-version", f"{name} was never upgraded")
    before = installed[name].pop()
    return {"package": state(name), "attachments": [], "from_version": before, "to_version": installed[name][-1]}


def uninstall(request: dict) -> dict:
    del installed[installed_name(request)]
    return {"name": request["name"]}


claims = {"profiles": [], "capabilities": ["rollback", "exec"]}
start = {"runtime": {"name": "fake", "vendor": "bpfcert tests", "version": "0", "homepage": "", "source": ""}}
if FAULT == "version":
    start["protocol_version"] = 2
if FAULT == "claims":
    claims = {"profiles": ["runtime-core"], "capabilities": ["rollback", "exec"]}
if FAULT == "refuse":
    serve_module.PROTOCOL_VERSION = 2  # a runner that speaks only a later version refuses ours
print("fake runner: ready", file=sys.stderr, flush=True)
serve(
    {**start, "claims": claims},
    {
        "install": install,
        "list": lambda _: {"packages": [{"name": n, "version": v[-1]} for n, v in sorted(installed.items())]},
        "status": lambda request: {"package": state(installed_name(request))},
        "upgrade": upgrade,
        "rollback": rollback,
        "uninstall": uninstall,
        "exec": lambda request: {"r0": len(request["program_hex"]) // 16},
    },
)
