"""The pin tree on the BPF filesystem: `<pin root>/<package>/{maps,progs,links}/<name>`, staged versions under
`<package>/staged-<N>/` until their record is committed. The root must be on a bpffs; the default one
(/sys/fs/bpf/bpfcert) is mounted when /sys/fs/bpf is not."""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path

from bpfcert.runners.serve import RunnerFailure

DEFAULT_PIN_ROOT = "/sys/fs/bpf/bpfcert"
PIN_ROOT_ENV = "BPFCERT_REFERENCE_BPFFS"
STAGING_PREFIX = "staged-"  # bpffs refuses names with a dot


def default_root() -> Path:
    return Path(os.environ.get(PIN_ROOT_ENV) or DEFAULT_PIN_ROOT)


def fs_type(path: Path) -> str | None:
    """The filesystem type of the mount holding `path` (the longest mount point above it in mountinfo)."""
    best, fstype = -1, None
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mount_point = fields[4].replace("\\040", " ")
            sep = fields.index("-")
            inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= best:
                best, fstype = len(mount_point), fields[sep + 1]
    return fstype


def mount(fstype: str, where: str) -> None:
    """mount -t fstype fstype where (bpf, tracefs)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(fstype.encode(), where.encode(), fstype.encode(), 0, None) != 0:
        err = ctypes.get_errno()
        raise RunnerFailure("internal", f"cannot mount {fstype} on {where}: {os.strerror(err)}")


def ensure_root(root: Path) -> Path:
    """Create the pin root on a bpffs (mounting /sys/fs/bpf if the root lies below it and it is not mounted)."""
    existing = next(p for p in (root, *root.parents) if p.exists())
    if fs_type(existing) != "bpf":
        if not str(root).startswith("/sys/fs/bpf/") or not os.path.isdir("/sys/fs/bpf"):
            raise RunnerFailure("bad-request", f"pin root {root} is not on a BPF filesystem (mount -t bpf)")
        if fs_type(Path("/sys/fs/bpf")) != "bpf":
            mount("bpf", "/sys/fs/bpf")
    root.mkdir(parents=True, exist_ok=True)
    return root


def staging_dir(package_dir: Path, generation: int) -> Path:
    return package_dir / f"{STAGING_PREFIX}{generation}"


def staged_generations(package_dir: Path) -> dict[int, Path]:
    out: dict[int, Path] = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in package_dir.iterdir():
            suffix = entry.name.removeprefix(STAGING_PREFIX)
            if entry.name.startswith(STAGING_PREFIX) and suffix.isdigit():
                out[int(suffix)] = entry
    return out


def pins_under(directory: Path) -> list[str]:
    """Every pin below `directory`, as paths relative to it (staging directories excluded)."""
    out: list[str] = []
    for top, dirs, files in os.walk(directory):
        dirs[:] = [d for d in dirs if not d.startswith(STAGING_PREFIX)]
        out.extend(os.path.relpath(os.path.join(top, f), directory) for f in files)
    return sorted(out)


def remove_tree(directory: Path) -> None:
    """Unpin everything below `directory` and remove it (missing is fine)."""
    for top, dirs, files in os.walk(directory, topdown=False):
        for f in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(top, f))
        for d in dirs:
            with contextlib.suppress(FileNotFoundError):
                os.rmdir(os.path.join(top, d))
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(directory)


def move_into_place(staging: Path, package_dir: Path) -> None:
    """Rename every staged pin over its final path (rename(2) replaces a pin atomically), then drop the staging
    directory. Safe to repeat after an interruption: pins already moved are no longer staged."""
    for rel in pins_under(staging):
        final = package_dir / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging / rel, final)
    remove_tree(staging)
