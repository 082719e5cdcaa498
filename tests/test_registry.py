"""The registry under reports/: every submission in the tree is valid (all its files, schema, signature by a key
of reports/trusted-keys, certificate not expired, "Certified" only from certified mode). The same validation is
shown rejecting a tampered, expired, untrusted, wrongly certified or incomplete submission built in tmp."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from bpfcert.report.registry import TRUSTED_KEYS, submissions, validate
from bpfcert.report.sign import read_trusted_keys
from tests.signed_reports import key_pair, passing_rows, run_doc, submit

REGISTRY = Path(__file__).resolve().parent.parent / "reports"
TODAY = date.today()


def test_the_tree_has_submissions() -> None:
    # the reference runtime, the third-party loaders and the ISA engines (issue 11's registry)
    assert {p.name for p in submissions(REGISTRY)} >= {
        "bpfcert-reference", "linux-bpftool", "xdp-project-xdp-loader", "linux-iproute2", "dpdk-librte-bpf-interp",
        "dpdk-librte-bpf-jit", "linux-kernel", "bpfcert-python-reference"}


@pytest.mark.parametrize("path", submissions(REGISTRY), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_submission_in_the_tree_is_valid(path: Path) -> None:
    sub = validate(path, read_trusted_keys(REGISTRY / TRUSTED_KEYS), TODAY)
    assert sub.problems == []
    assert sub.doc["run"]["complete"] is True and sub.signer


@pytest.fixture
def registry(tmp_path: Path) -> tuple[Path, bytes, dict[str, str]]:
    pem, public = key_pair()
    return tmp_path, pem, {public: "test signer"}


def test_a_valid_submission_built_in_tmp_passes(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    sub = validate(submit(root, run_doc(*passing_rows()), pem), trusted, TODAY)
    assert (sub.problems, sub.signer) == ([], "test signer")


def test_a_tampered_submission_is_rejected(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    path = submit(root, run_doc(*passing_rows()), pem)
    doc = json.loads((path / "report.json").read_text())
    doc["results"][0]["status"] = "pass" if doc["results"][0]["status"] != "pass" else "skip"
    (path / "report.json").write_text(json.dumps(doc))
    assert any("changed after it was signed" in p for p in validate(path, trusted, TODAY).problems)


def test_an_expired_submission_is_rejected(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    path = submit(root, run_doc(*passing_rows()), pem, issued=date(2024, 1, 1))
    assert validate(path, trusted, TODAY).problems == ["the certificate expired on 2024-12-31"]


def test_an_untrusted_signer_is_rejected(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, _, trusted = registry
    path = submit(root, run_doc(*passing_rows()), key_pair()[0])
    assert [p for p in validate(path, trusted, TODAY).problems if "not a trusted key" in p]


def test_certified_only_from_certified_mode(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    doc = run_doc(*passing_rows())
    doc["run"]["profileVerdicts"] = {"runtime-core": {"verdict": "Certified"}}
    wrong = validate(submit(root, doc, pem, product="wrong"), trusted, TODAY)
    assert wrong.problems == ['it states "Certified" but was not made in certified mode']
    right = validate(submit(root, doc, pem, product="right", certified_mode=True), trusted, TODAY)
    assert right.problems == []


def test_missing_files_wrong_place_and_schema_are_rejected(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    path = submit(root, run_doc(*passing_rows()), pem, spec_version="0.9")
    (path / "junit.xml").unlink()
    (path / "product.yaml").write_text("vendor: other\nproduct: loader\n")
    problems = validate(path, trusted, TODAY).problems
    assert problems[:3] == [
        "missing junit.xml",
        "a spec '1.0' report under 0.9/",
        "product.yaml names 'other-loader' (vendor-product), not 'acme-loader'",
    ]
    doc = run_doc(*passing_rows())
    doc["verdict"] = "great"
    problems = validate(submit(root, doc, pem, product="bad"), trusted, TODAY).problems
    assert len(problems) == 1 and problems[0].startswith("report.json is not valid against report.schema.json")


def test_a_product_yaml_with_aliases_is_rejected_unexpanded(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    root, pem, trusted = registry
    path = submit(root, run_doc(*passing_rows()), pem)
    (path / "product.yaml").write_text("a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]\n")
    assert validate(path, trusted, TODAY).problems == ["product.yaml: YAML aliases are not allowed"]


def test_a_product_yaml_larger_than_certify_reads_is_rejected(registry: tuple[Path, bytes, dict[str, str]]) -> None:
    from bpfcert.product import MAX_BYTES

    root, pem, trusted = registry
    path = submit(root, run_doc(*passing_rows()), pem)
    (path / "product.yaml").write_text("vendor: acme\n" + "#" * MAX_BYTES + "\n")
    assert validate(path, trusted, TODAY).problems == [f"{path / 'product.yaml'} is larger than {MAX_BYTES} bytes"]
