"""The machine table: everything that differs between the architectures a Debian kernel is booted for, keyed by
(series, arch). An `Arch` holds one architecture's facts (QEMU binary and machine type, CPU model, devices,
console and agent channels, kernel command line, Debian architecture and kernel flavour, bpf(2) number, byte order,
guest userland); a `Machine` is one kernel series on one architecture. The VM code reads these values and has no
branch of its own on the architecture.

Stdlib only and light at import: bpf.py reads the bpf(2) number from here inside the guest.
"""

from __future__ import annotations

import os
from typing import NamedTuple


class Arch(NamedTuple):
    """One architecture as QEMU emulates it and Debian builds for it."""

    name: str  # `uname -m`
    debian: str  # Debian architecture, also the ARCH of a SERIES/ARCH target name
    byteorder: str  # "little" or "big": of the kernel's BPF instructions, map keys and values, ELF files
    bpf_syscall: int  # __NR_bpf
    qemu: str
    qemu_package: str  # the Debian package with `qemu`
    machine: tuple[str, ...]  # QEMU options choosing the board
    tcg_cpu: str  # -cpu under TCG
    flavour: str  # the Debian kernel flavour ending the image package's name
    console: tuple[str, ...]  # QEMU options wiring the kernel console to {console} (a file)
    agent: tuple[str, ...]  # QEMU options wiring the guest's virtio console (AGENT_DEVICE) to the chardev "agent"
    share: tuple[str, ...]  # QEMU options sharing the host's / read-only as {tag} (virtiofs: via {socket})
    share_mount: str  # how the guest's busybox mounts it: "-t TYPE -o OPTIONS"
    cmdline: str
    modules: tuple[str, ...]  # what the guest loads for its share and channels (dependencies follow)
    userland: str  # "host": the host's own root and python; "debian": a Debian userland of this architecture


AGENT_DEVICE = "/dev/hvc0"  # the agent's channel in every guest: a virtio console


def _agent_console(bus: str) -> tuple[str, ...]:
    """The agent's channel: QEMU's stdio as a virtio console on the board's virtio-serial `bus` device. Not an
    emulated UART: a round trip to a 6.1 TCG guest's agent takes 0.8 ms over it against 5.6 ms over a 16550
    (bench/bench_agent_channel.py), and every check makes hundreds."""
    return ("-chardev", "stdio,id=agent,signal=off", "-device", bus, "-device", "virtconsole,chardev=agent")


_VIRTIOFS_MOUNT = "-t virtiofs -o ro"


def _virtiofs(device: str, *memory: str) -> tuple[str, ...]:
    """virtiofsd serves the host's / to QEMU's vhost-user `device`, which needs guest memory it can share
    (`memory`: the options giving the board that memory)."""
    return (
        "-chardev",
        "socket,id=vfs,path={socket}",
        "-device",
        f"{device},chardev=vfs,tag={{tag}}",
        "-object",
        "memory-backend-memfd,id=mem,size={memory},share=on",
        *memory,
    )


_QUIET = "panic=-1 quiet loglevel=5 rdinit=/init cryptomgr.notests"

ARCHES: dict[str, Arch] = {
    # acpi=off saves about a second of ACPI table interpretation under TCG; virtio-pci works without it. The CPU
    # vulnerability mitigations stay at the kernel's defaults: they change what the verifier does (Spectre
    # sanitisation), and turning them off was no faster under TCG. RDRAND lets the guest's crng initialise at
    # once; without it Python's start waits ~1.4 s for entropy (6.12).
    "x86_64": Arch(
        "x86_64",
        "amd64",
        "little",
        321,
        "qemu-system-x86_64",
        "qemu-system-x86",
        (),
        "qemu64,+rdrand",
        "cloud-amd64",
        ("-serial", "file:{console}"),
        _agent_console("virtio-serial-pci"),
        _virtiofs("vhost-user-fs-pci", "-numa", "node,memdev=mem"),
        _VIRTIOFS_MOUNT,
        f"console=ttyS0 {_QUIET} acpi=off tsc=reliable no_timer_check 8250.nr_uarts=1 pci=nomsi",
        ("virtio_pci", "virtiofs", "virtio_console"),
        "host",
    ),
    # The virt board's one PL011 UART is the console; the agent speaks over a virtio console (hvc0). cortex-a57
    # is ~4x faster under TCG than -cpu max.
    "aarch64": Arch(
        "aarch64",
        "arm64",
        "little",
        280,
        "qemu-system-aarch64",
        "qemu-system-arm",
        ("-M", "virt"),
        "cortex-a57",
        "cloud-arm64",
        ("-serial", "file:{console}"),
        _agent_console("virtio-serial-pci"),
        _virtiofs("vhost-user-fs-pci", "-machine", "memory-backend=mem"),
        _VIRTIOFS_MOUNT,
        f"console=ttyAMA0 {_QUIET}",
        ("virtio_pci", "virtiofs", "virtio_console", "overlay"),
        "debian",
    ),
    # Big-endian: the bpfeb case. The SCLP console is the kernel console; devices sit on the channel subsystem.
    # FUSE messages travel in the guest's byte order, which virtiofsd (little-endian) cannot read, so the host's
    # / is shared over 9p (a little-endian wire format; QEMU serves it, no daemon), which this kernel has.
    "s390x": Arch(
        "s390x",
        "s390x",
        "big",
        351,
        "qemu-system-s390x",
        "qemu-system-misc",
        ("-M", "s390-ccw-virtio"),
        "max",
        "s390x",
        ("-serial", "file:{console}"),
        _agent_console("virtio-serial-ccw"),
        (
            "-fsdev",
            "local,id=vfs,path=/,security_model=none,readonly=on",
            "-device",
            "virtio-9p-ccw,fsdev=vfs,mount_tag={tag}",
        ),
        "-t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000",
        f"console=ttysclp0 {_QUIET}",
        # virtio_ccw comes with S390_GUEST=y (a bool: not in modules.builtin)
        ("9pnet_virtio", "9p", "virtio_console", "overlay"),
        "debian",
    ),
}
DEBIAN_ARCHES = {arch.debian: arch for arch in ARCHES.values()}


class SeriesSpec(NamedTuple):
    """Where one kernel series comes from: the Debian suite, the image package (a regex with {flavour} for the
    architecture's kernel flavour; the newest match is fetched) and the architectures it is a target on."""

    series: str
    suite: str
    image_package: str
    companions: tuple[str, ...] = ()  # prefixes replacing "linux-binary-" for the packages fetched alongside
    arches: tuple[str, ...] = ("x86_64",)


FOREIGN = ("aarch64", "s390x")
SERIES_SPECS: dict[str, SeriesSpec] = {
    "5.10": SeriesSpec("5.10", "bullseye", r"linux-image-5\.10\.0-\d+-{flavour}"),
    "6.1": SeriesSpec("6.1", "bookworm", r"linux-image-6\.1\.0-\d+-{flavour}", arches=("x86_64", *FOREIGN)),
    "6.12": SeriesSpec("6.12", "trixie", r"linux-image-6\.12\.\d+\+deb13-{flavour}", arches=("x86_64", *FOREIGN)),
    # In sid linux-image-7.2* is a metapackage: the image, modules and config live in three packages.
    "7.2": SeriesSpec(
        "7.2", "sid", r"linux-binary-7\.2\.\d+\+deb14-{flavour}", companions=("linux-modules-", "linux-base-")
    ),
}


class Machine(NamedTuple):
    """One kernel series on one architecture: a row of the table."""

    spec: SeriesSpec
    arch: Arch

    @property
    def name(self) -> str:
        """The target name: the series for x86_64 (today's names), SERIES/ARCH otherwise."""
        return self.spec.series if self.arch.name == "x86_64" else f"{self.spec.series}/{self.arch.debian}"

    @property
    def kvm_possible(self) -> bool:
        """Whether KVM could run this guest here: only on a host of the same architecture."""
        return self.arch.name == os.uname().machine

    @property
    def image_package(self) -> str:
        return self.spec.image_package.format(flavour=self.arch.flavour)

    @property
    def virtiofsd(self) -> bool:
        """Whether the share is served by virtiofsd (whose socket QEMU connects to)."""
        return any("{socket}" in option for option in self.arch.share)

    def qemu_argv(
        self, accel: str, memory_mb: int, image: str, initrd: str, console: str, socket: str, tag: str
    ) -> list[str]:
        """QEMU's command line: one CPU, the kernel booted directly, the console to a file, the agent channel on
        stdio, the host's / shared read-only (over virtio-fs from virtiofsd's `socket`, or 9p) as `tag`."""
        a = self.arch
        cpu = ["-accel", "kvm", "-cpu", "host"] if accel == "kvm" else ["-accel", "tcg", "-cpu", a.tcg_cpu]
        memory = f"{memory_mb}M"
        fill = {"console": console, "memory": memory, "socket": socket, "tag": tag}
        return [
            a.qemu,
            *a.machine,
            "-nodefaults",
            "-no-reboot",
            "-display",
            "none",
            "-m",
            memory,
            "-smp",
            "1",
            *cpu,
            "-kernel",
            image,
            "-initrd",
            initrd,
            "-append",
            a.cmdline,
            *(o.format(**fill) for o in a.console),
            *a.agent,
            *(o.format(**fill) for o in a.share),
        ]


MACHINES: dict[tuple[str, str], Machine] = {
    (spec.series, arch): Machine(spec, ARCHES[arch])
    for arch in ARCHES
    for spec in SERIES_SPECS.values()
    if arch in spec.arches
}


def bpf_syscall(machine: str) -> int:
    """__NR_bpf on the machine `uname -m` names; -1 for one not in the table."""
    arch = ARCHES.get(machine)
    return arch.bpf_syscall if arch else -1
