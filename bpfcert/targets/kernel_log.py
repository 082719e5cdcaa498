"""Reading a kernel's log: the splats in it (requirement KRN-SPLAT-001) and, for a guest that died, the fault
that shows how. Used by the host target (its /dev/kmsg) and the VM targets (the serial console, dmesg)."""

from __future__ import annotations

import re

CONSOLE_TAIL_LINES = 30
CONSOLE_TAIL_MAX_LINES = 200  # a tail reaches back to the line that shows the fault, up to this many lines
# Console lines that show how a guest died, in the order they decide the fault kind: the first needle found
# gives the kind, its first line is quoted in the error, and the attached tail starts there.
FAULT_LINES = (
    ("Out of memory", "oom"),
    ("invoked oom-killer", "oom"),
    ("Kernel panic", "panic"),
    ("kernel BUG", "oops"),
    ("BUG: ", "oops"),
    ("Oops", "oops"),
    ("bpfcert-init: agent exited", "agent-died"),
)
# Kernel splats (requirement KRN-SPLAT-001).
SPLAT = re.compile(r"kernel BUG|BUG: |WARNING: |Oops|KASAN|Call Trace")
LOG_PREFIX = re.compile(r"^(<\d+>)?(\[\s*\d+\.\d+\]\s*)?")


def splat_lines(log: str) -> list[str]:
    """The lines of a kernel log that are part of a splat, without their level and timestamp prefixes."""
    return [LOG_PREFIX.sub("", line).strip() for line in log.splitlines() if SPLAT.search(line)]


def diagnose(console: str, default: str) -> tuple[str, str, str]:
    """(fault kind, the console line that shows it, the console tail to attach) for a guest that died.

    Without a FAULT_LINES match the kind is `default`, the line the last non-empty one, the tail the last
    CONSOLE_TAIL_LINES lines; with one, the tail reaches back to that line (CONSOLE_TAIL_MAX_LINES at most)."""
    lines = console.splitlines()
    start = max(0, len(lines) - CONSOLE_TAIL_LINES)
    match = next(((kind, i) for needle, kind in FAULT_LINES for i, line in enumerate(lines) if needle in line), None)
    if match is None:
        kind, shown = default, next((line for line in reversed(lines) if line.strip()), "")
    else:
        kind, found = match
        start, shown = min(start, max(found, len(lines) - CONSOLE_TAIL_MAX_LINES)), lines[found]
    return kind, LOG_PREFIX.sub("", shown).strip(), "\n".join(lines[start:])
