"""The reference runtime (runners/reference) with a leaky uninstall: it keeps the package's first map and pins it
again where it was after removing everything else, so a pin (and its map) outlives the package. Everything else is
the reference's."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "runners" / "reference"))

from refruntime import __main__ as cli
from refruntime import libbpf, runtime

reference_uninstall = runtime.Runtime.uninstall


def leaky_uninstall(self: runtime.Runtime, name: str) -> dict:
    record = self._installed(name)
    kept = None
    if record["maps"]:
        kept = Path(record["pin_dir"]) / record["maps"][0]["pin"]
        fd = libbpf.obj_get(str(kept))
    reply = reference_uninstall(self, name)
    if kept is not None:
        kept.parent.mkdir(parents=True, exist_ok=True)
        libbpf.obj_pin(fd, str(kept))
        os.close(fd)
    return reply


runtime.Runtime.uninstall = leaky_uninstall
cli.START["runtime"] = {
    **cli.START["runtime"],
    "name": "leaky-uninstall",
    "source": "tests/data/runners/leaky_uninstall",
}
sys.exit(cli.main(["serve"]))
