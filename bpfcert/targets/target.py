"""What a kernel target is (the `Target` protocol) and how targets are named and opened: the host in-process, a
Debian kernel booted under QEMU. Light at import: QEMU, apt and threads are imported on use."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from bpfcert.errors import TargetError, TargetErrorKind

if TYPE_CHECKING:
    from bpfcert.targets.info import TargetInfo


class Target(Protocol):
    """A kernel the suite runs on."""

    name: str
    python: str  # the Python binary this target's agent runs on; a Python runner's "{python}" (runners.discovery)

    def info(self) -> TargetInfo:
        """What this target is: name, kernel, accelerator, arch, boot time."""

    def call(self, op: str, **args: Any) -> Any:
        """Run op `op` (bpfcert.targets.agent.lookup) with `args` on this kernel; TargetError (classified) on
        failure."""

    def splats(self) -> list[str]:
        """Kernel splat lines seen since the target was opened."""

    def close(self) -> None:
        """Release the target (for a VM: shut down and reap QEMU and virtiofsd)."""


def resolve_names(spec: str | None) -> list[str]:
    """Target names: None -> host + cached x86_64 kernels; "kernels" -> the cached x86_64 kernels alone (the VM
    targets, for a run beside one on the host); "all" -> host + every x86_64 series; "all-arch" -> host + every
    series on every architecture; else a comma list ("6.1", "6.1/arm64")."""
    from bpfcert.targets.series import ALL_ARCH, HOST, SERIES, TargetName, known_names

    if spec is None or spec.strip() == "kernels":
        from bpfcert.targets.kernels import cached_kernels

        cached = cached_kernels()
        return [*([HOST] if spec is None else []), *(s for s in SERIES if s in cached)]
    if spec.strip() == "all":
        return [HOST, *SERIES]
    if spec.strip() == "all-arch":
        return [HOST, *ALL_ARCH]
    names, unknown = [], []
    for text in (n.strip() for n in spec.split(",") if n.strip()):
        try:
            names.append(str(TargetName.parse(text)))
        except TargetError:
            unknown.append(text)
    names = list(dict.fromkeys(names))  # "6.1/arm64" and "6.1/aarch64" are one target
    if unknown or not names:
        raise TargetError(
            f"unknown target {', '.join(unknown) or repr(spec)} (known: {known_names()}, kernels, all, all-arch)",
            TargetErrorKind.MISSING_KERNEL,
        )
    return names


def prepare_target(name: str, accel: str = "auto", **options: Any) -> Callable[[], Target]:
    """How to open target `name`, staged now in the caller's thread (for a VM: the environment is read, the
    kernel image and initramfs made ready); calling the result opens it (boots the VM, `options` going to
    VmTarget). TargetError if the name is unknown or the target cannot open here."""
    from bpfcert.targets.series import TargetName

    if TargetName.parse(name).is_host:
        from bpfcert.targets.host import HostTarget

        return HostTarget
    import functools

    from bpfcert.targets import vm

    return functools.partial(vm.start, vm.prepare(name, **options), accel)


def open_target(name: str, accel: str = "auto", **options: Any) -> Target:
    """The host (in-process) or a booted VM of a cached kernel series; TargetError if that cannot be done."""
    return prepare_target(name, accel, **options)()


def default_jobs() -> int:
    """VMs booted at a time: two on two cores (the measured optimum), one per core beyond that."""
    return max(2, os.cpu_count() or 1)
