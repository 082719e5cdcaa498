"""Static package checks: one small function per requirement ID, registered with @check.

Where things are: `registry` (@check, the ID -> check table), `context` (what a check receives: the package,
its manifest and artifacts, and the requirement it judges), one module per area of the standard (`manifest`,
`artifacts`, `programs`, `maps`, `license`, `requires`, `portable`, `service`; `kernel` for the kernel
profile; `runtime` for the runtime profiles, run through a runner), `profiles` (which profiles a check covers),
`run` (running the checks into a report), `inventory` (what the objects define). Checks never print and never
decide exit codes.
"""

from __future__ import annotations

from bpfcert.checks.run import check_package

__all__ = ["check_package"]
