"""The `bpfcert` command as a user meets it: exit codes, output formats, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from bpfcert import spec
from bpfcert.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "socket-filter"


def bpfcert(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpfcert", *args], capture_output=True, text=True, cwd=ROOT, timeout=120
    )


def test_check_text_conformant() -> None:
    proc = bpfcert("check", str(EXAMPLE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: conformant" in proc.stdout


def test_check_json_report_matches_schema() -> None:
    proc = bpfcert("check", str(EXAMPLE), "--format", "json")
    assert proc.returncode == 0
    doc = json.loads(proc.stdout)
    jsonschema.Draft202012Validator(spec.schema("report")).validate(doc)
    assert doc["verdict"] == "conformant"
    assert {"name": "ipv4_tcp_only", "section": "socket", "type": "socket_filter"}.items() <= doc[
        "inventory"
    ]["programs"][0].items()
    assert {m["name"] for m in doc["inventory"]["maps"]} >= {"verdict_counters"}


def test_check_junit_parses(tmp_path: Path) -> None:
    out = tmp_path / "r.xml"
    assert main(["check", str(EXAMPLE), "--format", "junit", "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    cases = root.findall(".//testcase")
    assert cases and all(c.get("classname", "").startswith("PKG-") for c in cases)
    assert root.get("failures") == "0"


def test_nonconformant_exit_1_and_junit_failure(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    subprocess.run(["cp", "-r", str(EXAMPLE), str(pkg)], check=True)
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    proc = bpfcert("check", str(pkg), "--format", "junit")
    assert proc.returncode == 1
    failures = ET.fromstring(proc.stdout).findall(".//failure")
    assert [f.get("type") for f in failures] == ["PKG-ART-003"]


@pytest.mark.parametrize(
    "args",
    [
        ["check", "/nonexistent/package"],
        ["check", "/dev/null"],
        ["pack", "/nonexistent.o", "-o", "/tmp/x"],
        ["pack", "/bin/true", "-o", "/tmp/x"],
        ["import", "bpfman", "/nonexistent.o", "--programs", "{}", "-o", "/tmp/x"],
        ["import", "eunomia", "/etc/hostname", "-o", "/tmp/x"],
        ["check", str(EXAMPLE), "--profile", "no-such-profile"],
    ],
)
def test_unusable_input_exit_2_one_line(args: list[str]) -> None:
    proc = bpfcert(*args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("bpfcert ")


def test_internal_error_exit_3_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A crash is not a verdict: exit 3 and one line on stderr naming the exception, no traceback."""

    def crash(args: object) -> int:
        raise ValueError("boom\nverdict: conformant")

    monkeypatch.setattr("bpfcert.commands.check", crash)
    monkeypatch.delenv("BPFCERT_DEBUG", raising=False)
    assert main(["check", str(EXAMPLE)]) == 3
    err = capsys.readouterr().err
    assert err.startswith("bpfcert check: internal error: ValueError: boom\\nverdict: conformant")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_internal_error_traceback_on_request(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def crash(args: object) -> int:
        raise KeyError("x")

    monkeypatch.setattr("bpfcert.commands.check", crash)
    monkeypatch.setenv("BPFCERT_DEBUG", "1")
    assert main(["check", str(EXAMPLE)]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("(please report)")


def test_closed_stdout_is_not_a_verdict() -> None:
    """A reader that goes away (`| head`) gives the shell's SIGPIPE status, not 1 (nonconformant)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bpfcert", "check", str(EXAMPLE), "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 141, err
    assert err == b""


def test_examples_main_job_writes_reports(tmp_path: Path) -> None:
    proc = bpfcert("examples", "--reports", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = sorted(tmp_path.glob("*.json"))
    assert len(reports) >= 4
    validator = jsonschema.Draft202012Validator(spec.schema("report"))
    for path in reports:
        validator.validate(json.loads(path.read_text()))
    assert ET.parse(tmp_path / "junit.xml").getroot().get("failures") == "0"


def subcommand_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The command path of every subcommand under `parser`, nested ones included (`import bpfman`)."""
    found: list[tuple[str, ...]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*path, name))
                found += subcommand_parsers(sub, (*path, name))
    return found


def test_every_subcommand_help_shows_an_example_and_exit_codes() -> None:
    commands = subcommand_parsers(build_parser())
    assert ("check",) in commands and ("import", "bpfman") in commands
    for command in commands:
        proc = bpfcert(*command, "--help")
        assert proc.returncode == 0, proc.stderr
        assert "Example" in proc.stdout, f"bpfcert {' '.join(command)} --help shows no example"
        assert "exit codes:\n  0  " in proc.stdout, f"bpfcert {' '.join(command)} --help states no exit codes"


def test_profile_help_lists_the_catalogues_profiles() -> None:
    """`check` names the package profiles, `requirements` every profile, each read from the catalogue."""
    package_profiles = [p for p in spec.profiles() if p.startswith("package-")]
    assert len(package_profiles) >= 3
    for command, profiles in (("check", package_profiles), ("requirements", list(spec.profiles()))):
        text = " ".join(bpfcert(command, "--help").stdout.split()).replace("- ", "-")  # argparse wraps at hyphens
        assert all(p in text for p in profiles), f"{command} --help: {text}"


def test_profile_takes_a_comma_list_and_repeats(tmp_path: Path) -> None:
    proc = bpfcert("check", str(EXAMPLE), "--profile", "package-portable,package-service", "--format", "json")
    assert set(json.loads(proc.stdout)["profiles"]) >= {"package-portable", "package-service"}
    proc = bpfcert(
        "check", str(EXAMPLE), "--profile", "package-core", "--profile", "package-portable,package-service",
        "--format", "json",
    )
    assert set(json.loads(proc.stdout)["profiles"]) >= {"package-core", "package-portable", "package-service"}
    proc = bpfcert("check", str(EXAMPLE), "--profile", "package-core,no-such-profile")
    assert proc.returncode == 2 and "no-such-profile" in proc.stderr


def test_requirements_lists_the_catalogue() -> None:
    proc = bpfcert("requirements")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split()[:3] for line in proc.stdout.splitlines() if line[:1].isupper()]
    catalogue = spec.catalogue()
    assert [r[0] for r in rows if r[0] in catalogue] == list(catalogue)
    assert all([r.level, r.profile] == row[1:] for row in rows if (r := catalogue.get(row[0])))
    portable = bpfcert("requirements", "--profile", "package-portable", "--format", "json")
    listed = json.loads(portable.stdout)
    ids = {r["id"] for r in listed}
    assert "PKG-PORT-001" in ids and "PKG-MAN-001" in ids  # its own and the included package-core
    assert not any(i.startswith(("PKG-SVC-", "KRN-")) for i in ids)
    assert listed[0] == {**dataclasses.asdict(catalogue[listed[0]["id"]])}
    proc = bpfcert("requirements", "--profile", "no-such-profile")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "package-core" in proc.stderr


def test_explain_prints_the_requirement_its_clause_and_the_fix() -> None:
    proc = bpfcert("explain", "pkg-sig-001")
    assert proc.returncode == 0, proc.stderr
    requirement = spec.requirement("PKG-SIG-001")
    for part in ("PKG-SIG-001", "MUST", "package-core", requirement.title, requirement.fix):
        assert part in proc.stdout
    # the clause as STANDARD.md words it, not the catalogue's title
    assert "it MUST verify over the canonical manifest (section 5)" in " ".join(proc.stdout.split())


def test_explain_unknown_id_suggests_close_matches() -> None:
    proc = bpfcert("explain", "PKG-ART-004")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "PKG-ART-003" in proc.stderr and "PKG-ART-001" in proc.stderr


def test_failed_rows_end_with_a_fix_hint(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    shutil.copytree(EXAMPLE, pkg)
    manifest = json.loads((pkg / "bpfpkg.json").read_text())
    manifest["artifacts"][0]["sha256"] = "0" * 64
    (pkg / "bpfpkg.json").write_text(json.dumps(manifest))
    lines = bpfcert("check", str(pkg)).stdout.splitlines()
    row = next(i for i, line in enumerate(lines) if "PKG-ART-003" in line)
    assert lines[row].split()[0] == "FAIL"
    assert lines[row + 1].split() == ["fix:", *spec.requirement("PKG-ART-003").fix.split()]
    assert sum(line.lstrip().startswith("fix:") for line in lines) == 1  # passes get no hint


def copy_source_tree(dest: Path) -> Path:
    """The checkout without VCS data, caches and build output, so a build leaves the worktree untouched."""
    skip = shutil.ignore_patterns(".git", ".tox", ".venv*", "build", "*.egg-info", "reports", "__pycache__", ".*cache")
    return Path(shutil.copytree(ROOT, dest, ignore=skip))


def _wheel_build_options() -> list[str]:
    """Build with this interpreter's setuptools (offline) when it meets pyproject.toml's floor and can build a
    wheel itself (70.1 on; before, with the `wheel` package); else let pip fetch one into an isolated build."""
    from importlib.metadata import PackageNotFoundError, version

    def release(dist: str) -> tuple[int, ...]:
        try:
            text = version(dist)
        except PackageNotFoundError:
            return ()
        return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    floor = next(r for r in requires if r.startswith("setuptools>=")).removeprefix("setuptools>=")
    have = release("setuptools")
    offline = have >= tuple(map(int, floor.split("."))) and (have >= (70, 1) or release("wheel") != ())
    return ["--no-build-isolation"] if offline else []


@dataclasses.dataclass(frozen=True)
class Installed:
    """bpfcert installed from a wheel into a fresh venv, its source tree deleted, run from an unrelated directory."""

    venv: Path
    purelib: Path
    elsewhere: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.venv / "bin" / "bpfcert", *args], capture_output=True, text=True,
                              cwd=self.elsewhere, env=self.env, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A non-editable install: the wheel of a copy of the checkout, runtime dependencies from the test
    interpreter's environment (no network unless this setuptools is too old to build the wheel)."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = copy_source_tree(tmp_path / "src")
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", *_wheel_build_options(), str(source), "-w", str(wheels), "--no-deps"], check=True,
                   timeout=600)
    shutil.rmtree(source)  # nothing may still point at a source tree
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", *map(str, wheels.glob("*.whl"))],
                   check=True, timeout=300)
    purelib = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies from the test interpreter's environment, after the wheel on the path
    (Path(purelib) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    where = subprocess.run([python, "-c", "import bpfcert; print(bpfcert.__file__)"], capture_output=True,
                           text=True, cwd=elsewhere, env=env, check=True).stdout
    assert where.startswith(purelib), where
    return Installed(venv, Path(purelib), elsewhere, env)


@pytest.mark.slow
def test_wheel_install_works_outside_the_checkout(installed: Installed) -> None:
    """spec/ and the example packages ship in the wheel: an installed bpfcert finds them without a checkout."""
    proc = installed.run("examples", "--reports", "out")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(list((installed.elsewhere / "out").glob("*.json"))) >= 4
    example = installed.purelib / "bpfcert" / "examples" / "xdp-counter-v1"
    proc = installed.run("check", str(example))
    assert proc.returncode == 0 and "verdict: conformant" in proc.stdout, proc.stdout + proc.stderr
    proc = installed.run("requirements")
    assert proc.returncode == 0 and "PKG-MAN-001" in proc.stdout, proc.stderr
    proc = installed.run("explain", "PKG-ART-001")
    assert proc.returncode == 0 and "MUST" in proc.stdout, proc.stderr


@pytest.mark.slow
def test_wheel_install_certifies_from_anywhere(installed: Installed) -> None:
    """The conformance suite ships in the wheel: `bpfcert certify` runs it from an unrelated directory and writes
    only its output directory there."""
    before = set(installed.elsewhere.iterdir())
    example = installed.purelib / "bpfcert" / "examples" / "xdp-counter-v1"  # the package suite only, not the main job
    proc = installed.run("certify", "--output", "certified", str(example), timeout=300)
    assert proc.returncode == 0 and "verdict: conformant" in proc.stdout, proc.stdout + proc.stderr
    out = installed.elsewhere / "certified"
    assert set(installed.elsewhere.iterdir()) - before == {out}
    assert sorted(p.name for p in out.iterdir()) == [  # report.html: its templates ship in the wheel
        "badge.json", "junit.xml", "report.html", "report.json", "results.jsonl", "summary.md"]
    assert "matrix" in (out / "report.html").read_text()
    assert (installed.purelib / "bpfcert" / "conformance" / "test_certify_packages.py").is_file()


@pytest.mark.slow
def test_wheel_install_gives_the_guest_agent_its_bpfcert(installed: Installed) -> None:
    """The command line a VM's init runs the agent with names the installed agent, and its --path entries,
    put on an isolated interpreter's path as the agent does, import the installed bpfcert (no VM needed)."""
    show = ("import json; from bpfcert.targets.machines import MACHINES; from bpfcert.targets import vm;"
            " print(json.dumps(vm.agent_argv(vm.guest_python(MACHINES[('6.1', 'x86_64')]), False)))")
    argv = json.loads(subprocess.run([installed.venv / "bin" / "python", "-c", show], capture_output=True, text=True,
                                     cwd=installed.elsewhere, env=installed.env, check=True).stdout)
    site = installed.purelib.resolve()
    assert argv[1:3] == ["-I", "-S"] and Path(argv[3]) == site / "bpfcert" / "targets" / "agent.py", argv
    assert Path(argv[3]).is_file()
    paths = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--path"]
    guest = "import sys; sys.path += sys.argv[1:]; import bpfcert.targets.ops; print(bpfcert.__file__)"
    where = subprocess.run([argv[0], "-I", "-S", "-c", guest, *paths], capture_output=True, text=True,
                           cwd=installed.elsewhere, env=installed.env, check=True).stdout
    assert Path(where.strip()) == site / "bpfcert" / "__init__.py", where


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="probing the host kernel needs root")
def test_wheel_install_probes_the_host(installed: Installed) -> None:
    """`bpfcert probe --target host`, with a prediction for an installed example, from the wheel install."""
    example = installed.purelib / "bpfcert" / "examples" / "xdp-counter-v1"
    proc = installed.run("probe", "--target", "host", "--package", str(example), "-o", "probe.json", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads((installed.elsewhere / "probe.json").read_text())
    jsonschema.validate(report, spec.schema("probe"))
    (target,) = report["targets"]
    assert target["findings"]["prog_types"]["xdp"]["status"] == "available"
    (package,) = report["packages"]
    assert package["name"] == "xdp-counter" and [p["meets"] for p in package["predictions"]] == [True], package


@pytest.mark.vm
@pytest.mark.slow
def test_wheel_install_boots_a_vm(installed: Installed) -> None:
    """A VM's guest agent runs bpfcert from the wheel install (site-packages on its path, no source tree)."""
    from bpfcert.targets.vm import unavailable

    if (problem := unavailable("5.10")) is not None:
        pytest.skip(str(problem))
    proc = installed.run("probe", "--target", "5.10", "-o", "probe.json", "-q", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (target,) = json.loads((installed.elsewhere / "probe.json").read_text())["targets"]
    assert target["findings"]["system"]["release"].startswith("5.10."), target["findings"]["system"]


def test_readme_first_package_walk_through(tmp_path: Path) -> None:
    """The README's "your first package" builds with the clang command it gives, packs, and checks conformant."""
    walk = (ROOT / "README.md").read_text().split("## Your first package", 1)[1]
    source = walk.split("```c\n", 1)[1].split("```", 1)[0]
    build = next(line[2:] for line in walk.splitlines() if line.startswith("$ clang "))
    (tmp_path / "prog.bpf.c").write_text(source)
    subprocess.run(build, shell=True, cwd=tmp_path, check=True, timeout=60)
    assert main(["pack", str(tmp_path / "prog.bpf.o"), "-o", str(tmp_path / "mypkg"), "--name", "first-pkg"]) == 0
    proc = bpfcert("check", str(tmp_path / "mypkg"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
