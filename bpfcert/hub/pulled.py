"""`bpfcert check REF`: a package pulled from a hub (verified) into a private temporary directory and checked like
a local one, its report naming the reference; the manifest's hub format is judged too (HUB-FMT-001)."""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING

from bpfcert.hub import reference, transfer

if TYPE_CHECKING:
    from bpfcert.results import Report


def check_reference(text: str, profiles: list[str] | None) -> Report:
    from bpfcert.checks import check_package
    from bpfcert.checks.hub import check_format
    from bpfcert.package import open_package

    ref = reference.parse(text)
    pulled = transfer.fetch(ref)
    with tempfile.TemporaryDirectory(prefix="bpfcert-pulled-") as tmp:
        root = transfer.write(pulled, f"{tmp}/package")
        with open_package(root) as pkg:
            report = check_package(pkg, profiles)
    report.source = str(ref.at(tag=ref.tag, digest=pulled.digest))
    report.results.append(check_format(pulled.manifest, pulled.package, "", target="static"))
    return report
