"""vagrant/: the Vagrantfile validates for every box, its provisioning script parses, the README matches."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

VAGRANT_DIR = Path(__file__).resolve().parent.parent / "vagrant"
VAGRANTFILE = (VAGRANT_DIR / "Vagrantfile").read_text()
BOXES = dict(re.findall(r'^\s*"(\w+)"\s*=>\s*\["([\w/.-]+)"', VAGRANTFILE, re.M))

needs_vagrant = pytest.mark.skipif(
    shutil.which("vagrant") is None, reason="vagrant is not installed (Debian: apt-get install vagrant)"
)


def vagrant_validate(boxes: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # --ignore-provider: validation must not need libvirt or VirtualBox on the machine running the tests;
    # VAGRANT_DOTFILE_PATH keeps Vagrant's state out of the source tree.
    env = {**os.environ, "BPFCERT_BOXES": boxes, "VAGRANT_DOTFILE_PATH": str(tmp_path / "dotfile")}
    return subprocess.run(
        ["vagrant", "validate", "--ignore-provider"],
        cwd=VAGRANT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_box_table_is_read() -> None:
    assert len(BOXES) >= 4
    assert BOXES["debian11"] == "generic/debian11"


@needs_vagrant
def test_vagrantfile_validates_with_every_box(tmp_path: Path) -> None:
    proc = vagrant_validate(",".join(BOXES), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "validated successfully" in proc.stdout
    for name in BOXES:
        assert f"{name}:" in proc.stdout


@needs_vagrant
def test_vagrantfile_refuses_an_unknown_box(tmp_path: Path) -> None:
    proc = vagrant_validate("debian12,nosuchdistro", tmp_path)
    assert proc.returncode != 0
    assert "unknown box(es) nosuchdistro" in proc.stdout + proc.stderr


def test_provisioning_script_is_valid_shell(tmp_path: Path) -> None:
    script = re.search(r"<<~'SHELL'\n(.*?)^SHELL$", VAGRANTFILE, re.S | re.M)
    assert script is not None
    path = tmp_path / "provision.sh"
    path.write_text(script.group(1))
    proc = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "--target host" in script.group(1) and "bpfcert probe" in script.group(1)


def test_readme_documents_every_box() -> None:
    readme = (VAGRANT_DIR / "README.md").read_text()
    for name, box in BOXES.items():
        assert f"| `{name}` | `{box}` |" in readme
    assert "vagrant validate" in readme
