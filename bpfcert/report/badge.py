"""badge.json: the shields.io endpoint format (https://shields.io/badges/endpoint-badge): schemaVersion 1, label,
message, color. The message is the worst profile verdict of the report (the overall verdict when it has no
profiles); for several reports, how many are wholly Certified."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bpfcert.report import verdicts, writer
from bpfcert.results import Report

COLOR = {verdicts.CERTIFIED: "brightgreen", verdicts.PARTIAL: "yellow", verdicts.NOT_CONFORMANT: "red",
         verdicts.NOT_CERTIFIED: "red", "conformant": "brightgreen", "nonconformant": "red", "incomplete": "red"}


def headline(report: Report) -> str:
    """The worst verdict of the report's profiles, or its overall verdict."""
    return verdicts.worst(verdicts.profile_verdicts(report)) or report.verdict


@writer("badge", ".json")
def render(reports: Sequence[Report]) -> str:
    heads = [headline(r) for r in reports]
    if len(heads) == 1:
        message, color = heads[0].lower(), COLOR[heads[0]]
    else:
        good = heads.count(verdicts.CERTIFIED)
        message = f"{good}/{len(heads)} certified"
        color = "brightgreen" if good == len(heads) else "yellow" if good else "red"
    label = "bpfcert certified mode" if any(r.certified_mode for r in reports) else "bpfcert"
    return json.dumps({"schemaVersion": 1, "label": label, "message": message, "color": color}) + "\n"
