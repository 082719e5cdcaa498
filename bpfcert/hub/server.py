"""A private registry for tests and benchmarks: Debian's `docker-registry` (distribution 2.x) as a plain process on
127.0.0.1 and a free port, with its own config (filesystem storage in a directory of ours, delete enabled, no auth),
stopped by its PID. Nothing listens beyond loopback. Also where distribution's filesystem driver keeps a blob, for
the tampering check on this registry or on an operator's own (`certify --hub URL --hub-storage DIR`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from bpfcert.errors import HubError

BINARY = "docker-registry"
CONFIG = """version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
"""


BLOBS = "docker/registry/v2/blobs"  # under distribution's filesystem `rootdirectory`


def blob_path(storage: Path, digest: str) -> Path:
    """Where distribution's filesystem driver under `storage` keeps the blob `digest` (sha256:HEX)."""
    hexdigest = digest.split(":", 1)[1]
    return storage / BLOBS / "sha256" / hexdigest[:2] / hexdigest / "data"


def check_storage(storage: Path) -> None:
    """HubError ("format") unless `storage` looks like a distribution filesystem root (it holds BLOBS)."""
    if not (storage / BLOBS).is_dir():
        raise HubError(f"{storage} is not a registry's storage root: no {BLOBS} under it (give distribution's "
                       "filesystem rootdirectory)", "format")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalRegistry:
    """`docker-registry serve` under `directory` (config, storage, log); `url` is oci://127.0.0.1:PORT."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)
        self.storage = self.dir / "storage"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"oci://{self.address}"

    def start(self, timeout: float = 15.0) -> LocalRegistry:
        binary = shutil.which(BINARY)
        if binary is None:
            raise HubError(f"{BINARY} is not installed (Debian package docker-registry)", "unreachable")
        self.storage.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        config = self.dir / "config.yml"
        config.write_text(CONFIG.format(root=self.storage, port=self.port, secret=secrets.token_hex(16)))
        log = (self.dir / "registry.log").open("wb")
        with log:
            self.process = subprocess.Popen([binary, "serve", str(config)], stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.dir, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                tail = (self.dir / "registry.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise HubError(f"{BINARY} exited with {self.process.returncode}: {' '.join(tail)}", "unreachable")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise HubError(f"{BINARY} did not listen on {self.address} within {timeout:.0f} s", "unreachable")

    def stop(self) -> None:
        """SIGTERM the registry by its PID (SIGKILL if it lingers) and reap it."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def blob_path(self, digest: str) -> Path:
        """Where this registry keeps the blob `digest` (for the tampering tests)."""
        return blob_path(self.storage, digest)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
