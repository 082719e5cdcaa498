"""The runtime's own record of what it installed: SQLite (WAL) in the state directory, one row per package holding
its record as JSON, and an exclusive lock file so that one operation runs at a time.

The record is the commit point of every operation: bpffs pins are made before it is written and removed after, so a
process killed at any step leaves pins that `reconcile` (refruntime.runtime) can finish or undo from the record."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bpfcert.runners.serve import RunnerFailure

DEFAULT_STATE_DIR = "/var/lib/bpfcert-reference"
STATE_ENV = "BPFCERT_REFERENCE_STATE"

TYPE_CHECKING = False  # typing only for the type checker (start-up time in a TCG guest)
if TYPE_CHECKING:
    from typing import Any

    Record = dict[str, Any]


def state_dir() -> Path:
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


class Store:
    """The package records in `<dir>/state.db`, with the pin directories claimed and the digests of package content
    that passed verification or was refused as invalid; package files kept for rollback under `<dir>/packages/`."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.packages_dir = self.dir / "packages"
        self.db = sqlite3.connect(self.dir / "state.db", isolation_level=None)  # transactions are explicit
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS packages (name TEXT PRIMARY KEY, record TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS pin_dirs (path TEXT PRIMARY KEY)")
        self.db.execute("CREATE TABLE IF NOT EXISTS verified (digest TEXT PRIMARY KEY)")
        self.db.execute("CREATE TABLE IF NOT EXISTS refused (digest TEXT PRIMARY KEY, code TEXT, message TEXT)")
        self.db.execute("CREATE TABLE IF NOT EXISTS requirements_met (question TEXT PRIMARY KEY)")

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the operation lock; RunnerFailure busy if another process holds it."""
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunnerFailure("busy", f"another operation holds {self.dir / 'lock'}") from None
            yield
        finally:
            os.close(fd)  # releases the lock

    def records(self) -> dict[str, Record]:
        rows = self.db.execute("SELECT name, record FROM packages ORDER BY name").fetchall()
        return {name: json.loads(text) for name, text in rows}

    def get(self, name: str) -> Record | None:
        row = self.db.execute("SELECT record FROM packages WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, record: Record) -> None:
        """Write one record in its own transaction (the commit point of install, upgrade and rollback)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO packages (name, record) VALUES (?, ?)",
                (record["name"], json.dumps(record, sort_keys=True)),
            )

    def delete(self, name: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM packages WHERE name = ?", (name,))

    def claim(self, pin_dir: Path) -> None:
        """Record a package's pin directory before anything is pinned there: reconcile removes claimed directories
        that no record owns, and never touches a directory this state did not claim (another instance's)."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO pin_dirs (path) VALUES (?)", (str(pin_dir),))

    def release(self, pin_dir: Path) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM pin_dirs WHERE path = ?", (str(pin_dir),))

    def verified(self, digest: str) -> bool:
        """Whether package content with this digest passed the signature and static checks before."""
        return self.db.execute("SELECT 1 FROM verified WHERE digest = ?", (digest,)).fetchone() is not None

    def remember_verified(self, digest: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO verified (digest) VALUES (?)", (digest,))

    def refusal(self, digest: str) -> tuple[str, str] | None:
        """The (code, message) package content with this digest was refused with before, if it was."""
        row = self.db.execute("SELECT code, message FROM refused WHERE digest = ?", (digest,)).fetchone()
        return (row[0], row[1]) if row else None

    def remember_refused(self, digest: str, code: str, message: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR REPLACE INTO refused (digest, code, message) VALUES (?, ?, ?)",
                            (digest, code, message))  # fmt: skip

    def requirements_met(self, question: str) -> bool:
        """Whether this kernel was found to meet a manifest's `requires` before (`question`: see runtime)."""
        found = self.db.execute("SELECT 1 FROM requirements_met WHERE question = ?", (question,)).fetchone()
        return found is not None

    def remember_requirements_met(self, question: str) -> None:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO requirements_met (question) VALUES (?)", (question,))

    def claimed(self) -> list[Path]:
        return [Path(row[0]) for row in self.db.execute("SELECT path FROM pin_dirs ORDER BY path")]
