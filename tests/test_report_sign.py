"""Signed reports (bpfcert.report.sign, `bpfcert report sign|verify`): the signature covers the RFC 8785
canonical JSON of the whole document, so any edited value, row or certificate date is caught while re-indenting is
not; the signer is checked against a trusted-keys file; an expired certificate is reported; unusable input
(missing, not JSON, not a signature) exits 2 in one line."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import main
from bpfcert.errors import BpfcertError
from bpfcert.report import sign
from bpfcert.results import Result, Status
from tests.signed_reports import key_pair, passing_rows, run_doc

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Run:
    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def signed(tmp_path: Path, cli: Run) -> tuple[Path, str]:
    """report.json (with a certificate valid until next year) signed by `bpfcert report sign`; its public key."""
    pem, public = key_pair()
    (tmp_path / "key.pem").write_bytes(pem)
    doc = run_doc(*passing_rows())
    doc["certificate"] = sign.certificate(doc, certified_mode=False, issued=date.today())
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc, indent=2))
    code, out, _ = cli("report", "sign", str(report), "--key", str(tmp_path / "key.pem"))
    assert code == 0 and "report.json.sig" in out
    return report, public


def test_canonical_form_is_rfc8785() -> None:
    # RFC 8785 section 3.2.3's ordering example (keys sorted by UTF-16 code units) and its number serialisation
    keys = ["\u20ac", "\r", "\ufb33", "\U0001f600", "1", "\u0080", "\u00f6"]
    ordered = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]  # not code point order
    assert sign.canonical(dict.fromkeys(keys, 0)) == ("{" + ",".join(f'"{k}":0' for k in ordered) + "}").replace(
        "\r", "\\r").encode()
    assert sign.canonical([1e21, 0.1, -0.0, 100.0]) == b"[1e+21,0.1,0,100]"
    with pytest.raises(BpfcertError, match="no canonical JSON form"):
        sign.canonical({"x": float("nan")})


def test_sidecar_and_certificate_follow_their_schemas(signed: tuple[Path, str]) -> None:
    report, public = signed
    sidecar = json.loads(Path(f"{report}.sig").read_text())
    jsonschema.validate(sidecar, spec.schema("report-signature"))
    assert sidecar["publicKey"] == public
    jsonschema.validate(json.loads(report.read_text()), spec.schema("report"))


def test_a_signed_report_verifies_and_reindenting_is_not_an_edit(signed: tuple[Path, str], cli: Run) -> None:
    report, public = signed
    trusted = report.parent / "trusted-keys"
    trusted.write_text(f"# the project\n\n{public} Example Signer\n")
    code, out, _ = cli("report", "verify", str(report), "--trusted-keys", str(trusted))
    assert code == 0 and "signed by Example Signer" in out and "valid until" in out
    doc = json.loads(report.read_text())
    report.write_text(json.dumps(dict(reversed(doc.items())), separators=(",", ":")))
    assert cli("report", "verify", str(report))[0] == 0


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "a status": lambda d: d["results"][0].update(status="fail"),
    "a message": lambda d: d["results"][1].update(message="parses!"),
    "a removed row": lambda d: d["results"].pop(),
    "an added key": lambda d: d.update(note="x"),
    "the verdict": lambda d: d.update(verdict="nonconformant"),
    "the expiry": lambda d: d["certificate"].update(expires="2999-01-01"),
    "a number": lambda d: d["summary"].update({"pass": d["summary"]["pass"] + 1}),
}


@pytest.mark.parametrize("edit", EDITS, ids=list(EDITS))
def test_any_edit_of_a_signed_report_is_rejected(signed: tuple[Path, str], cli: Run, edit: str) -> None:
    report, _ = signed
    doc = json.loads(report.read_text())
    EDITS[edit](doc)
    report.write_text(json.dumps(doc, indent=2))
    code, out, _ = cli("report", "verify", str(report))
    assert code == 1 and "changed after it was signed" in out


def test_a_re_signed_digest_without_the_key_is_rejected(signed: tuple[Path, str], cli: Run) -> None:
    report, _ = signed
    doc = json.loads(report.read_text())
    doc["results"][0]["status"] = "fail"
    report.write_text(json.dumps(doc))
    sidecar_path = Path(f"{report}.sig")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["digest"] = sign.digest(doc)  # the forger updates the digest but cannot sign
    sidecar_path.write_text(json.dumps(sidecar))
    code, out, _ = cli("report", "verify", str(report))
    assert code == 1 and "signature does not match" in out


def test_a_small_order_key_with_an_all_zero_signature_is_rejected(signed: tuple[Path, str], cli: Run) -> None:
    """The forgery some OpenSSL builds accept (seen in an s390x guest): the all-zero key and an all-zero signature."""
    report, _ = signed
    sidecar_path = Path(f"{report}.sig")
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["publicKey"] = base64.b64encode(bytes(32)).decode()
    sidecar["signature"] = base64.b64encode(bytes(64)).decode()
    sidecar_path.write_text(json.dumps(sidecar))
    code, out, _ = cli("report", "verify", str(report))
    assert code == 1 and "small order" in out


def test_a_signer_missing_from_the_trusted_keys_is_rejected(signed: tuple[Path, str], cli: Run) -> None:
    report, _ = signed
    trusted = report.parent / "trusted-keys"
    trusted.write_text(f"{key_pair()[1]} someone else\n")
    code, out, _ = cli("report", "verify", str(report), "--trusted-keys", str(trusted))
    assert code == 1 and "is not a trusted key" in out


def test_an_expired_certificate_is_reported(tmp_path: Path, cli: Run) -> None:
    pem, _ = key_pair()
    doc = run_doc(*passing_rows())
    doc["certificate"] = sign.certificate(doc, certified_mode=False, issued=date(2020, 1, 1), days=30)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(doc))
    Path(f"{report}.sig").write_text(json.dumps(sign.sign(doc, pem)))
    code, out, _ = cli("report", "verify", str(report))
    assert code == 1 and "certificate expired on 2020-01-31" in out
    result = sign.verify(doc, sign.sign(doc, pem), trusted=None, today=date(2020, 1, 31))
    assert result.valid  # its last day is still valid


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        (None, "cannot read"),
        ("not json", "is not JSON"),
        ('{"format": "bpfcert-report-signature/1"}', "is not a bpfcert report signature"),
        ('{"format": "bpfcert-report-signature/1", "algorithm": "rsa", "publicKey": "", "digest": "", "signature": ""}',
         "is not a bpfcert report signature"),
    ],
)
def test_unusable_signature_input_exits_2_in_one_line(
    tmp_path: Path, cli: Run, sidecar: str | None, reason: str
) -> None:
    report = tmp_path / "report.json"
    report.write_text(json.dumps(run_doc()))
    if sidecar is not None:
        Path(f"{report}.sig").write_text(sidecar)
    code, out, err = cli("report", "verify", str(report))
    assert code == 2 and reason in err and len(err.splitlines()) == 1 and out == ""


def test_bad_key_or_trusted_keys_exit_2(tmp_path: Path, cli: Run, signed: tuple[Path, str]) -> None:
    report, _ = signed
    (tmp_path / "bad.pem").write_text("not a key")
    code, _, err = cli("report", "sign", str(report), "--key", str(tmp_path / "bad.pem"))
    assert code == 2 and "cannot use the signing key" in err
    (tmp_path / "trusted").write_text("short-key someone\n")
    code, _, err = cli("report", "verify", str(report), "--trusted-keys", str(tmp_path / "trusted"))
    assert code == 2 and "line 1: not a base64 Ed25519 public key" in err


def test_a_certificate_for_another_spec_version_is_reported() -> None:
    doc = run_doc(Result.of("RT-INS-001", Status.PASS, "ok", target="host"))
    doc["certificate"] = sign.certificate(doc, certified_mode=False, issued=date.today()) | {"specVersion": "0.9"}
    pem, _ = key_pair()
    result = sign.verify(doc, sign.sign(doc, pem), trusted=None, today=date.today())
    assert result.problems == ["the certificate is for spec '0.9', the report for '1.0'"]


@pytest.mark.parametrize("mode", ["normal", "certified"])
def test_signing_a_report_without_a_certificate_gives_it_one(tmp_path: Path, cli: Run, mode: str) -> None:
    # `report merge` and `isa` write no certificate; the registry refuses a report without one (tests/test_registry)
    pem, public = key_pair()
    (tmp_path / "key.pem").write_bytes(pem)
    report = tmp_path / "report.json"
    report.write_text(json.dumps(run_doc(*passing_rows()) | {"mode": mode}))
    assert cli("report", "sign", str(report), "--key", str(tmp_path / "key.pem"))[0] == 0
    cert = json.loads(report.read_text())["certificate"]
    assert cert["certifiedMode"] is (mode == "certified") and cert["issued"] == date.today().isoformat()
    (tmp_path / "trusted").write_text(f"{public} signer\n")
    assert cli("report", "verify", str(report), "--trusted-keys", str(tmp_path / "trusted"))[0] == 0


def test_signing_keeps_an_existing_certificate_and_a_bad_key_writes_nothing(
        tmp_path: Path, cli: Run, signed: tuple[Path, str]) -> None:
    report, _ = signed
    before = report.read_text()
    assert cli("report", "sign", str(report), "--key", str(tmp_path / "key.pem"))[0] == 0
    assert report.read_text() == before
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(run_doc()))
    (tmp_path / "bad.pem").write_text("not a key")
    assert cli("report", "sign", str(bare), "--key", str(tmp_path / "bad.pem"))[0] == 2
    assert "certificate" not in json.loads(bare.read_text()) and not Path(f"{bare}.sig").exists()
