"""Handlers of `bpfcert report sign|verify|diff|merge` and `bpfcert site`: they read reports, results streams and
registries, and write only the files they are asked for (a signature sidecar, an output directory)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from bpfcert.errors import BpfcertError
from bpfcert.results import Report, Result


def command(args: argparse.Namespace) -> int:
    handlers = {"sign": sign, "verify": verify, "diff": diff, "merge": merge}
    return handlers[args.action](args)


def _write(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BpfcertError(f"cannot write {path}: {exc.strerror}") from None


def sign(args: argparse.Namespace) -> int:
    """Write REPORT.sig: the Ed25519 signature of the report's canonical JSON. A report without a certificate (one
    from `report merge` or `isa`) gets one first, issued today, certified mode as its run was, written back."""
    from bpfcert.pack import read_key_file
    from bpfcert.report import sign as signing

    doc = signing.read_json(args.report, "a report document")
    certify = isinstance(doc, dict) and "certificate" not in doc
    if certify:
        doc["certificate"] = signing.certificate(doc, certified_mode=doc.get("mode") == "certified",
                                                 issued=datetime.now(UTC).date())
    sidecar = signing.sign(doc, read_key_file(args.key))  # a bad key stops before anything is written
    if certify:
        _write(Path(args.report), json.dumps(doc, indent=2) + "\n")
    path = Path(args.report + signing.SIDECAR_SUFFIX)
    _write(path, json.dumps(sidecar, indent=2) + "\n")
    print(f"signed {args.report} ({sidecar['digest']}) -> {path}")
    return 0


def verify(args: argparse.Namespace) -> int:
    """0 when the report is what its sidecar signed (by a trusted key, when given) and not expired, else 1."""
    from bpfcert.report import sign as signing

    doc = signing.read_json(args.report, "a report document")
    where = args.signature or args.report + signing.SIDECAR_SUFFIX
    sidecar = signing.check_sidecar(signing.read_json(where, "a report signature"), where)
    trusted = signing.read_trusted_keys(args.trusted_keys) if args.trusted_keys else None
    result = signing.verify(doc, sidecar, trusted=trusted, today=datetime.now(UTC).date())
    cert = result.certificate
    until = f", certificate for spec {cert.get('specVersion')} valid until {cert.get('expires')}" if cert else ""
    if result.valid:
        print(f"valid: {args.report} signed by {result.signer}{until}")
        return 0
    for problem in result.problems:
        print(f"INVALID: {args.report}: {problem}")
    return 1


def load_results(path: str) -> list[Result]:
    """The rows of a report document (report.json) or of a results stream (results.jsonl)."""
    from bpfcert.report import sign as signing

    if path.endswith(".jsonl"):
        return Report.from_stream(path).results
    doc = signing.read_json(path, "a report document or a results stream")
    rows = doc.get("results") if isinstance(doc, dict) else None
    if not isinstance(rows, list):
        raise BpfcertError(f"{path} is not a report document (no results array)")
    try:
        return [Result.from_json(row) for row in rows]
    except ValueError as exc:
        raise BpfcertError(f"{path}: a result row is malformed: {exc}") from None


def diff(args: argparse.Namespace) -> int:
    """Regressions, fixes and new/removed rows from A to B; 1 when anything regressed."""
    from bpfcert.report.diff import diff as compare

    changes = compare(load_results(args.a), load_results(args.b))
    sys.stdout.write(json.dumps(changes.to_json(), indent=2) + "\n" if args.format == "json" else changes.text())
    return 1 if changes.regressions else 0


def merge(args: argparse.Namespace) -> int:
    """One report of the shards' results streams, written into the output directory like certify's."""
    from bpfcert.certify_cmd import write_reports
    from bpfcert.report.merge import merge as combine

    report = combine(args.streams)
    if args.expected_failures:
        from bpfcert.report import expected

        report.results = expected.apply(report.results, expected.load(args.expected_failures))
    write_reports(report, Path(args.output))
    return 0 if report.verdict == "conformant" else 1


def site(args: argparse.Namespace) -> int:
    """Build the registry's static site; 1 when a submission is not valid (it is shown, with its problems)."""
    from bpfcert.report.site import build

    if not Path(args.registry).is_dir():
        raise BpfcertError(f"{args.registry} is not a directory (expected a registry like reports/)")
    subs = build(args.registry, args.output, datetime.now(UTC).date())
    for sub in subs:
        print(f"{sub.name}: {'; '.join(sub.problems) or 'valid'}")
    print(f"site of {len(subs)} submission(s) in {Path(args.output) / 'index.html'}")
    return 1 if any(s.problems for s in subs) else 0
