"""The reference runtime (runners/reference) with a wrong requirement check: every package is refused as
requirements-unmet, whatever the kernel offers. Everything else is the reference's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "runners" / "reference"))

from refruntime import __main__ as cli
from refruntime import requirements

requirements.unmet = lambda manifest: ["kernel 99.0 or later (a wrong requirement check)"]
cli.START["runtime"] = {
    **cli.START["runtime"],
    "name": "strict-requires",
    "source": "tests/data/runners/strict_requires",
}
sys.exit(cli.main(["serve"]))
