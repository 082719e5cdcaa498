"""A Debian kernel booted under QEMU as a target: virtiofsd + QEMU processes, the agent channel, timeouts,
fault classification with the console tail, splat scanning, and guaranteed reaping. What differs between
architectures (QEMU binary, board, devices, channels, userland) comes from the kernel's row of the machine table."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import platform
import select
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bpfcert.bundled import PACKAGE
from bpfcert.errors import TargetError, TargetErrorKind
from bpfcert.targets import initramfs
from bpfcert.targets.debian import cache_dir
from bpfcert.targets.info import TargetInfo
from bpfcert.targets.kernel_log import diagnose, splat_lines
from bpfcert.targets.kernels import CachedKernel, cached_kernel, uncompressed_kernel
from bpfcert.targets.machines import AGENT_DEVICE, Machine

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
GUEST_MEMORY_MB = 256
# A KVM guest not ready by then is slower than a TCG one (~3 s here) and KVM is treated as not working.
KVM_PROBE_TIMEOUT = 5.0
# A request longer than this goes to the guest as a file: the virtio console carries ~400 KB/s into a TCG guest
# (an ISA batch of 580 cases, 54 KB, ~0.14 s), virtio-fs a batch in milliseconds.
INLINE_REQUEST_BYTES = 4096

# Run beside each VM: reads the process groups of QEMU and virtiofsd, one a line, and when its input ends
# without being killed first (the harness died, even by SIGKILL) kills them and removes the work dir.
REAPER = 'g=; while read -r p; do g="$g -$p"; done; [ -z "$g" ] || kill -s KILL -- $g 2>/dev/null; rm -rf "$1"'

_live: set[VmTarget] = set()
_live_lock = threading.Lock()


def missing_tools(machine: Machine) -> str | None:
    """Why VM targets of `machine` cannot run on this machine (its QEMU or virtiofsd missing), or None."""
    qemu = machine.arch.qemu
    if shutil.which(qemu) is None:
        return f"{qemu} is not installed (Debian: apt-get install {machine.arch.qemu_package})"
    if machine.virtiofsd and not os.access(VIRTIOFSD, os.X_OK):
        return f"{VIRTIOFSD} is not installed (Debian bookworm: part of qemu-system-common)"
    return None


def unavailable(name: str) -> TargetError | None:
    """Why a VM `name` ("6.1", "6.1/arm64") cannot open on this machine (unknown name, kernel or userland not
    cached, then QEMU or virtiofsd missing), as the TargetError opening it raises; None if it can. The one answer
    to "can this VM run here?" for the CLI, the pytest plugin and the tests' fixtures."""
    try:
        kernel = cached_kernel(name)
        guest_userland(kernel.machine)
    except TargetError as exc:
        return exc
    reason = missing_tools(kernel.machine)
    return TargetError(f"{kernel.name}: {reason}", TargetErrorKind.BOOT) if reason else None


def guest_userland(machine: Machine) -> Path | None:
    """The cached userland `machine`'s guest runs on (None: the host's own); TargetError("missing-kernel")
    naming the fetch command if it needs one not cached."""
    if machine.arch.userland != "debian":
        return None
    from bpfcert.targets import userland

    root = userland.cached(machine.arch)
    if root is None:
        message = f"no {machine.arch.debian} guest userland cached; run `bpfcert kernels fetch {machine.name}` first"
        raise TargetError(message, TargetErrorKind.MISSING_KERNEL)
    return root


def guest_python(machine: Machine) -> str:
    """The Python binary a guest of `machine` runs bpfcert on. A guest on the host's own root runs the
    distribution's /usr/bin/python3.X when that is this interpreter's version (the same bytecode and extension ABI),
    else this interpreter: Debian builds it with PGO and LTO, and under TCG it starts in half the time of an
    unoptimized build such as pyenv's (0.14 s against 0.25-0.28 s in a 6.1 guest) and runs the agent's ops and the
    runners faster. A foreign guest runs its userland's python, bound at this interpreter's path
    (bpfcert.targets.initramfs)."""
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    if machine.arch.userland == "host" and os.access(system, os.X_OK):
        return system
    return os.path.realpath(sys.executable)


def agent_argv(python: str, faults: bool) -> list[str]:
    """How the initramfs runs the agent on the agent channel (AGENT_DEVICE): `python` (guest_python), isolated, this
    bpfcert on its path.

    The guest sees the host's root read-only, so the directory this bpfcert was imported from -- the checkout's
    root, or the site-packages a wheel installed it into -- gives the guest the same bpfcert in either layout."""
    argv = [
        python,
        "-I",
        "-S",
        str(PACKAGE / "targets" / "agent.py"),
        "--path",
        str(PACKAGE.parent),
        "--path",
        sysconfig.get_paths()["purelib"],
        "--device",
        AGENT_DEVICE,
    ]
    return [*argv, "--faults"] if faults else argv


# Whether KVM runs guests on this machine: probed by the first boot with accel "auto", remembered in the cache
# per host kernel release (False only) and in this process; concurrent boots wait for the first one's verdict.
_kvm_works: bool | None = None
_kvm_lock = threading.Lock()


def _kvm_known_broken(cache: Path) -> bool:
    path = cache / "kvm-probe.json"
    try:
        return bool(json.loads(path.read_text()).get(platform.release()) is False)
    except (OSError, ValueError, AttributeError):
        return False


def _remember_kvm_broken(cache: Path) -> None:
    path = cache / "kvm-probe.json"
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({platform.release(): False}) + "\n")


class _ChannelClosed(Exception):
    pass


class _ChannelTimeout(Exception):
    pass


class VmTarget:
    """One booted kernel: `call` runs an op in the guest agent; a fault kills the VM, raising TargetError."""

    def __init__(
        self,
        kernel: CachedKernel,
        *,
        memory_mb: int = GUEST_MEMORY_MB,
        boot_timeout: float = 60.0,
        op_timeout: float = 300.0,
        vm_timeout: float = 3600.0,
        faults: bool = False,
    ) -> None:
        self.name = kernel.name
        self.kernel = kernel
        self.machine = kernel.machine
        self.memory_mb = memory_mb
        self.boot_timeout = boot_timeout
        self.op_timeout = op_timeout
        self.vm_timeout = vm_timeout
        self.faults = faults
        self.cache = cache_dir()  # read once, here: booting may run in a thread while the environment changes
        # Staged here, in the caller's thread (extraction runs decompressors; a boot thread should only start
        # QEMU): the vmlinux ELF for a PVH boot where there is one, and the initramfs.
        self.image = uncompressed_kernel(kernel) or kernel.vmlinuz
        self.python = guest_python(self.machine)
        argv = agent_argv(self.python, faults)
        self.initrd = initramfs.build(kernel, argv, self.cache, guest_userland(self.machine))
        self.accel = ""
        self.boot_seconds = 0.0
        self.hello: dict[str, Any] = {}
        self._workdir = Path(tempfile.mkdtemp(prefix=f"bpfcert-vm-{self.name.replace('/', '-')}-"))
        self._qemu: subprocess.Popen[bytes] | None = None
        self._virtiofsd: subprocess.Popen[bytes] | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._buf = b""
        self._next_id = 1
        self._started = 0.0
        self._failure: TargetError | None = None
        self._lock = threading.Lock()
        self._log_fds: list[int] = []
        with _live_lock:
            _live.add(self)

    def boot(self, accel: str = "auto") -> None:
        """Start virtiofsd and QEMU and wait for the agent; `auto` tries KVM briefly, then TCG."""
        global _kvm_works
        if accel == "auto" and not self.machine.kvm_possible:
            accel = "tcg"
        if accel == "auto":
            with _kvm_lock:
                if _kvm_works is None:
                    usable = os.access("/dev/kvm", os.R_OK | os.W_OK) and not _kvm_known_broken(self.cache)
                    _kvm_works = usable and self._try_kvm()
                    if _kvm_works:
                        return  # the probe itself booted this target
            accel = "kvm" if _kvm_works else "tcg"
        self._start(accel, self.boot_timeout)

    def _try_kvm(self) -> bool:
        """Boot under KVM within KVM_PROBE_TIMEOUT; on failure clean up and remember that KVM does not work."""
        try:
            self._start("kvm", KVM_PROBE_TIMEOUT)
            return True
        except TargetError:
            self._reap()
            self._failure = None  # KVM not working here is not a fault of this target
            _remember_kvm_broken(self.cache)
            return False

    def _start(self, accel: str, timeout: float) -> None:
        """Start virtiofsd and QEMU under `accel`, each watched by the reaper, and wait for the agent."""
        self.accel = accel
        self._buf = b""
        self._started = time.monotonic()
        self._spawn_reaper()
        socket = self._start_virtiofsd() if self.machine.virtiofsd else self._workdir / "virtiofs.sock"
        self._qemu = subprocess.Popen(
            self.machine.qemu_argv(
                accel,
                self.memory_mb,
                str(self.image),
                str(self.initrd),
                str(self._workdir / "console.log"),
                str(socket),
                initramfs.VIRTIOFS_TAG,
            ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log("qemu.log"),
            start_new_session=True,
        )
        self._watch(self._qemu)
        self._wait_ready(accel, timeout)

    def _spawn_reaper(self) -> None:
        """The shell that kills QEMU and virtiofsd and removes the work dir if this process dies first."""
        self._reaper = subprocess.Popen(
            ["/bin/sh", "-c", REAPER, "bpfcert-reaper", str(self._workdir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _start_virtiofsd(self) -> Path:
        """Start virtiofsd serving the host's / (mounted read-only by the guest); its socket once it listens."""
        socket = self._workdir / "virtiofs.sock"
        with contextlib.suppress(FileNotFoundError):
            socket.unlink()
        argv = [VIRTIOFSD, f"--socket-path={socket}", "-o", "source=/", "-o", "cache=always", "-o", "sandbox=chroot"]
        self._virtiofsd = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log("virtiofsd.log"),
            start_new_session=True,
        )
        self._watch(self._virtiofsd)
        while not socket.exists():
            if self._virtiofsd.poll() is not None or time.monotonic() - self._started > 10:
                tail = self._log_tail("virtiofsd.log")
                raise TargetError(f"{self.name}: virtiofsd did not start ({tail})", TargetErrorKind.BOOT)
            time.sleep(0.01)
        return socket

    def _wait_ready(self, accel: str, timeout: float) -> None:
        """Wait for the agent's ready message (within `timeout` and the whole-VM budget); keep its hello."""
        started = self._started
        try:
            ready = self._receive(0, min(started + timeout, started + self.vm_timeout)).get("result") or {}
        except _ChannelTimeout:
            raise self._fail("boot", f"agent not ready within {timeout:.0f}s ({accel})", channel_closed=False) from None
        except _ChannelClosed:
            raise self._fail(
                "boot", f"guest exited before its agent was ready ({accel})", channel_closed=True
            ) from None
        self.boot_seconds = time.monotonic() - started
        self.hello = {k: v for k, v in ready.items() if k != "ready"}

    def close(self) -> None:
        """Shut the guest down cleanly if it is up, then reap QEMU and virtiofsd and remove the work dir."""
        with self._lock:
            if self._failure is None and self._qemu is not None and self._qemu.poll() is None:
                with contextlib.suppress(TargetError, OSError):
                    self._exchange("shutdown", {}, 10.0)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._qemu.wait(10)
            self._reap()
            shutil.rmtree(self._workdir, ignore_errors=True)
        with _live_lock:
            _live.discard(self)

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Hand `proc`'s process group to the reaper."""
        assert self._reaper is not None and self._reaper.stdin is not None
        self._reaper.stdin.write(f"{proc.pid}\n".encode())
        self._reaper.stdin.flush()

    def _reap(self) -> None:
        """Kill and wait for QEMU and virtiofsd (the reaper first, so that it does not act on reused ids)."""
        for proc in (self._reaper, self._qemu, self._virtiofsd):
            if proc is None:
                continue
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        self._reaper = self._qemu = self._virtiofsd = None
        for fd in self._log_fds:
            os.close(fd)
        self._log_fds.clear()

    def info(self) -> TargetInfo:
        k = self.kernel
        return TargetInfo(
            self.name,
            k.release,
            k.series,
            k.version,
            k.deb_sha256,
            self.accel,
            self.machine.arch.name,
            round(self.boot_seconds, 2),
        )

    def call(self, op: str, **args: Any) -> Any:
        """Run `op` in the guest; op errors raise TargetError("op-failed"), faults their classified kind."""
        with self._lock:
            if self._failure is not None:
                raise TargetError(
                    f"{self.name}: target is down after an earlier fault: {self._failure}",
                    self._failure.kind,
                    self._failure.console,
                )
            if self._qemu is None:
                raise TargetError(f"{self.name}: target is not booted", TargetErrorKind.BOOT)
            response = self._exchange(op, args, self.op_timeout)
        if not response.get("ok"):
            error = response.get("error") or {}
            raise TargetError(
                f"{self.name}: op {op!r} failed: {error.get('type')}: {error.get('message')}",
                TargetErrorKind.OP_FAILED,
            )
        return response.get("result")

    def splats(self) -> list[str]:
        """Splat lines from the console, plus from the guest's dmesg while the agent is up."""
        lines = splat_lines(self.console())
        with contextlib.suppress(TargetError):
            if self._failure is None and self._qemu is not None:
                lines += splat_lines(str(self.call("dmesg")))
        return list(dict.fromkeys(lines))

    def console(self) -> str:
        """The guest console so far."""
        try:
            return (self._workdir / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    @property
    def pids(self) -> list[int]:
        """The process ids of QEMU and virtiofsd while they run."""
        return [p.pid for p in (self._qemu, self._virtiofsd) if p is not None]

    def _exchange(self, op: str, args: dict[str, Any], timeout: float) -> dict[str, Any]:
        assert self._qemu is not None and self._qemu.stdin is not None
        rid, self._next_id = self._next_id, self._next_id + 1
        vm_deadline = self._started + self.vm_timeout  # read per call: vm_timeout may be changed while up
        deadline = min(time.monotonic() + timeout, vm_deadline)
        whole_vm = deadline == vm_deadline
        line = json.dumps({"id": rid, "op": op, "args": args}).encode()
        spilled = self._workdir / f"request-{rid}.json"
        if len(line) > INLINE_REQUEST_BYTES:  # the guest reads it over virtio-fs (the host's / is its root)
            spilled.write_bytes(line)
            line = json.dumps({"id": rid, "op": op, "request_file": str(spilled)}).encode()
        try:
            self._qemu.stdin.write(line + b"\n")
            self._qemu.stdin.flush()
            return self._receive(rid, deadline)
        except _ChannelTimeout:
            what = f"the whole-VM timeout ({self.vm_timeout:.0f}s)" if whole_vm else f"{timeout:.0f}s"
            raise self._fail("timeout", f"op {op!r} did not answer within {what}", channel_closed=False) from None
        except (_ChannelClosed, BrokenPipeError):
            raise self._fail("agent-died", f"agent channel closed during op {op!r}", channel_closed=True) from None
        finally:
            spilled.unlink(missing_ok=True)

    def _receive(self, rid: int, deadline: float) -> dict[str, Any]:
        assert self._qemu is not None and self._qemu.stdout is not None
        fd = self._qemu.stdout.fileno()
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if sep:
                self._buf = rest
                with contextlib.suppress(ValueError):
                    message = json.loads(line)
                    if isinstance(message, dict) and message.get("id") == rid:
                        return message
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _ChannelTimeout
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    raise _ChannelClosed
                self._buf += chunk

    def _fail(self, default_kind: str, what: str, *, channel_closed: bool) -> TargetError:
        """Stop the VM after a fault and build the classified error with the console tail."""
        if self._qemu is not None and channel_closed:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._qemu.wait(5)  # let a dying guest finish printing (panic, init's exit message)
        self._reap()
        kind, shown, tail = diagnose(self.console(), default_kind)
        where = f"console: {shown[:160]}" if shown else f"empty console; qemu: {self._log_tail('qemu.log')[:160]}"
        self._failure = TargetError(f"{self.name}: {kind}: {what} ({where})", TargetErrorKind(kind), tail)
        return self._failure

    def _log(self, name: str) -> int:
        """A write-only descriptor on a log file in the work dir, for a child's stderr (closed in _reap)."""
        fd = os.open(self._workdir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._log_fds.append(fd)
        return fd

    def _log_tail(self, name: str) -> str:
        try:
            lines = (self._workdir / name).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return lines[-1] if lines else "no log"


@functools.cache
def _compile_bpfcert() -> None:
    """Write bpfcert's bytecode once: guests see the tree read-only, so without it every guest recompiles
    from source (~1 s under TCG), and PYTHONDONTWRITEBYTECODE may be set on the host."""
    import compileall

    with contextlib.suppress(OSError):
        compileall.compile_dir(str(PACKAGE), quiet=2)


def prepare(name: str, **options: Any) -> VmTarget:
    """An unbooted target for the cached kernel of `name`; TargetError if it is `unavailable` here."""
    problem = unavailable(name)
    if problem is not None:
        raise problem
    _compile_bpfcert()
    return VmTarget(cached_kernel(name), **options)


def start(target: VmTarget, accel: str = "auto") -> VmTarget:
    """Boot a prepared target; on failure it is closed (nothing left running) and the TargetError raised."""
    try:
        target.boot(accel)
    except BaseException:
        target.close()
        raise
    return target


def boot(name: str, accel: str = "auto", **options: Any) -> VmTarget:
    """Boot the cached kernel of `name` (TargetError if it is missing, QEMU is missing or boot fails)."""
    return start(prepare(name, **options), accel)


@atexit.register
def _reap_all() -> None:
    with _live_lock:
        live = list(_live)
    for target in live:
        target.close()
