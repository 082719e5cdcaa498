"""The reference runtime (runners/reference) with one fault, chosen by $BPFCERT_BROKEN, for showing every runtime
check fail on a runtime that violates its requirement:

stray-pin (RT-INS-001): install also pins the package's first map beside the pin root, outside it.
lie-list (RT-LST-001): list answers no packages.
leak-pin (RT-UNI-001): uninstall leaves the package's first map pinned under the pin root.
accept-bad (RT-REJ-001): no signature, static or requires check before loading.
not-idempotent (RT-IDM-001): a second install loads the package again, beside the first, under another state.
drop-map (RT-UPG-001): upgrade uninstalls, then installs the new version (its preserved maps made anew).
unused-map (RT-UPG-001): upgrade keeps each preserved map pinned (beside the new version's, as maps/NAME_kept), but
  loads the new version's programs with maps made anew, so no program of the new version uses the preserved one.
no-rollback (RT-RBK-001): rollback changes nothing but answers as if it had rolled back.
crash-unsafe (RT-CRS-001): no reconcile at start, and a pause at every step so that a kill lands mid-operation.
"""

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "runners" / "reference"))

from refruntime import loader
from refruntime import runtime as refruntime
from refruntime.__main__ import START, handlers
from refruntime.runtime import Runtime

from bpfcert.runners.serve import serve
from bpfcert.targets import bpf

BREAK = os.environ.get("BPFCERT_BROKEN", "")
KEPT: dict[str, int] = {}  # unused-map: the installed version's preserved maps by name, held during an upgrade


def pin_first_map(record: dict, path: Path) -> None:
    fd = bpf.obj_get(str(Path(record["pin_dir"]) / record["maps"][0]["pin"]))
    try:
        bpf.obj_pin(fd, str(path))
    finally:
        bpf.close(fd)


class Broken(Runtime):
    def install(self, package, options):
        if BREAK == "not-idempotent":
            from bpfcert.package import open_package

            with open_package(package) as pkg:
                name = pkg.manifest["name"]
            if self.store.get(name) is not None:
                other = Runtime(self.store.dir / "second", Path(options.get("pin_root") or self.pin_root) / "second")
                return other.install(package, {**options, "pin_root": str(other.pin_root)})
        reply = super().install(package, options)
        if BREAK == "stray-pin":
            record = self.store.get(reply["package"]["name"])
            pin_first_map(record, Path(f"{Path(record['pin_dir']).parent}-stray"))
        return reply

    def list(self):
        return {"packages": []} if BREAK == "lie-list" else super().list()

    def uninstall(self, name):
        if BREAK == "leak-pin":
            record = self._installed(name)
            pin_first_map(record, Path(record["pin_dir"]).parent / "leaked-map")
        return super().uninstall(name)

    def upgrade(self, package, options):
        if BREAK == "unused-map":
            try:
                reply = super().upgrade(package, options)
                pin_dir = Path(self._installed(reply["package"]["name"])["pin_dir"])
                for name, fd in KEPT.items():
                    bpf.obj_pin(fd, str(pin_dir / f"maps/{name.replace('.', '_')}_kept"))
                return reply
            finally:
                for fd in KEPT.values():
                    bpf.close(fd)
                KEPT.clear()
        if BREAK != "drop-map":
            return super().upgrade(package, options)
        from bpfcert.package import open_package

        with open_package(package) as pkg:
            name = pkg.manifest["name"]
        old = self._installed(name)
        super().uninstall(name)
        state = super().install(package, {**old["options"], **options})["package"]
        return {"package": state, "attachments": [], "from_version": old["version"], "to_version": state["version"]}

    def rollback(self, name):
        if BREAK != "no-rollback":
            return super().rollback(name)
        current = self._installed(name)
        previous = (current.get("previous") or {}).get("version", current["version"])
        state = {**self.package_state(current), "version": previous}
        return {"package": state, "attachments": [], "from_version": current["version"], "to_version": previous}

    def reconcile(self):
        if BREAK != "crash-unsafe":
            super().reconcile()


if BREAK == "accept-bad":
    refruntime._verify = lambda *_: None
if BREAK == "unused-map":

    def hold_map(m: object, name: str, pin: Path) -> None:
        """Hold the installed version's map instead of handing it to the new version's object."""
        if name not in KEPT:
            KEPT[name] = bpf.obj_get(str(pin))

    loader._reuse_map = hold_map
if BREAK == "crash-unsafe":
    refruntime._step = lambda name: time.sleep(0.7)

runtime = Broken()
try:
    serve(START, handlers(runtime))
finally:
    runtime.close()
