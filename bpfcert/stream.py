"""The results stream writer: JSON lines, each written and flushed as soon as it is known, so that a run killed at
any moment leaves every line it decided (Report.from_stream reads a stream back; bpfcert.results describes it)."""

from __future__ import annotations

import json
import platform
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from bpfcert import SPEC_VERSION, __version__
from bpfcert.errors import BpfcertError
from bpfcert.results import STREAM_VERSION, Result


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class ResultsStream:
    """One run's results stream at `path`: `header` first, then `result` and `note` lines, `footer` last.

    Lines may come from several threads (targets boot in the background); each is written whole."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise BpfcertError(f"cannot write the results stream {self.path}: {exc.strerror}") from None
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self.results = 0

    def header(self, *, kind: str, subject: str, targets: list[str], profiles: list[str], **meta: Any) -> None:
        """The run's metadata: what is certified (`kind`, `subject`), the targets and profiles selected, and any
        more `meta` (runtime, packages...)."""
        self._write({
            "type": "header", "stream": STREAM_VERSION, "bpfcert": __version__, "specVersion": SPEC_VERSION,
            "kind": kind, "subject": subject, "started": now(), "host": platform.node(),
            "targets": targets, "profiles": profiles, **meta,
        })

    def result(self, result: Result) -> None:
        self._write({"type": "result", **result.to_json()})

    def note(self, kind: str, data: dict[str, Any]) -> None:
        """A fact learnt during the run: "target" (a target's TargetInfo, once open), "runner" (its start reply)."""
        self._write({**data, "type": kind})

    def footer(self) -> None:
        self._write({"type": "footer", "ended": now(), "seconds": round(time.monotonic() - self._started, 3),
                     "results": self.results})
        self.close()

    def close(self) -> None:
        """Close without a footer: the run did not finish (it reads back incomplete)."""
        self._file.close()

    def _write(self, line: dict[str, Any]) -> None:
        text = json.dumps(line, separators=(",", ":"), default=str) + "\n"
        with self._lock:
            self._file.write(text)
            self._file.flush()  # to the kernel: a killed process loses nothing already written
            self.results += line["type"] == "result"
