"""`bpfcert ci matrix --format github` and .github/workflows/certify.yml: the matrix is every target x profile with
a shard name; the workflow parses, takes its matrix from that command, and every bpfcert command it runs is one
the CLI accepts; its merge names every shard of the matrix."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from bpfcert import spec
from bpfcert.cli import build_parser, main
from bpfcert.targets.series import HOST, SERIES

WORKFLOW = Path(__file__).resolve().parent.parent / ".github" / "workflows" / "certify.yml"


def matrix(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main(["ci", "matrix", "--format", "github", *args]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_matrix_is_every_target_by_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    entries = matrix(capsys)["include"]
    assert {(e["target"], e["profile"]) for e in entries} == {(t, p) for t in (HOST, *SERIES) for p in spec.profiles()}
    assert len({e["shard"] for e in entries}) == len(entries)
    assert matrix(capsys, "--target", "host,6.1", "--profile", "kernel")["include"] == [
        {"target": "host", "arch": "amd64", "profile": "kernel", "shard": "host-kernel"},
        {"target": "6.1", "arch": "amd64", "profile": "kernel", "shard": "6.1-kernel"},
    ]


def test_matrix_takes_every_architecture_and_shards_by_it(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfcert.targets.series import ALL_ARCH

    entries = matrix(capsys, "--target", "all-arch", "--profile", "kernel")["include"]
    assert [e["target"] for e in entries] == [HOST, *ALL_ARCH] and "6.1/s390x" in ALL_ARCH
    assert {e["shard"] for e in entries} >= {"6.1-arm64-kernel", "6.12-s390x-kernel"}  # no "/" in artifact names
    by_arch = matrix(capsys, "--target", "all-arch", "--profile", "kernel", "--shard-by", "arch")["include"]
    assert {e["arch"]: e["target"] for e in by_arch} == {
        "amd64": ",".join((HOST, *SERIES)),
        "arm64": "6.1/arm64,6.12/arm64",
        "s390x": "6.1/s390x,6.12/s390x",
    }
    assert [e["shard"] for e in by_arch] == ["amd64-kernel", "arm64-kernel", "s390x-kernel"]
    one = matrix(capsys, "--target", "6.1/aarch64,6.12/arm64", "--profile", "kernel", "--shard-by", "arch")
    assert one["include"] == [{"target": "6.1/arm64,6.12/arm64", "arch": "arm64", "profile": "kernel",
                               "shard": "arm64-kernel"}]


def test_matrix_refuses_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ci", "matrix", "--target", "4.19"]) == 2
    assert "unknown target 4.19 (known: " in capsys.readouterr().err


def _bpfcert_commands(script: str, values: dict[str, str]) -> list[list[str]]:
    """Every `python -m bpfcert ...` of a step's script, with ${{ }} expressions replaced by sample values."""
    script = re.sub(r"\$\{\{\s*([^}]+?)\s*\}\}", lambda m: values[m.group(1)], script)
    return [shlex.split(args) for args in re.findall(r"python -m bpfcert ([^)>|\"\n]*)", script)]


def test_the_workflow_uses_the_matrix_and_real_commands() -> None:
    flow = yaml.safe_load(WORKFLOW.read_text())
    jobs = flow["jobs"]
    assert jobs["shard"]["strategy"]["matrix"] == "${{ fromJSON(needs.matrix.outputs.shards) }}"
    values = {"matrix.target": "6.1", "matrix.profile": "runtime-core", "matrix.shard": "6.1-runtime-core",
              "needs.matrix.outputs.shards": "{}", "steps.matrix.outputs.shards": "{}"}
    commands = [c for job in jobs.values() for step in job["steps"] if "run" in step
                for c in _bpfcert_commands(step["run"], values)]
    assert [c[:2] for c in commands] == [["ci", "matrix"], ["kernels", "fetch"], ["certify", "--runtime"],
                                         ["report", "merge"]]
    for command in commands:
        build_parser(command[0]).parse_args([a if a != "$streams" else "shards/x/results.jsonl" for a in command])
    certify = next(c for c in commands if c[0] == "certify")
    assert certify[certify.index("--output") + 1] == "shard/6.1-runtime-core"
    upload = next(s for s in jobs["shard"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "shard/${{ matrix.shard }}/results.jsonl" and upload["if"] == "always()"
    merge = next(s for s in jobs["merge"]["steps"] if s.get("name") == "merge")
    assert '.include[].shard | "shards/shard-\\(.)/results.jsonl"' in merge["run"]  # every shard, arrived or not
    assert "GITHUB_STEP_SUMMARY" in merge["run"] and jobs["merge"]["if"] == "always()"
