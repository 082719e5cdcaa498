"""Fixtures of the harness's own VM tests: which cached kernels the lifecycle and fault tests boot.

They follow --target, so that `tox run -e kernel-7.2` tests booting, faults and reaping on 7.2 itself; by
default (host + every cached kernel) they use 5.10, the fastest to boot, and 6.1 where they need two."""

from __future__ import annotations

import pytest

from bpfcert.targets import resolve_names
from bpfcert.targets.kernels import cached_kernels
from bpfcert.targets.vm import missing_tools


@pytest.fixture(scope="session")
def vm_series_list(pytestconfig: pytest.Config) -> list[str]:
    """The selected VM series that can boot here, in --target order (5.10, the fastest, first by default);
    skips with the reason when there is none."""
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    selected = [n for n in resolve_names(pytestconfig.getoption("--target")) if n != "host"]
    if not selected and pytestconfig.getoption("--target"):
        pytest.skip(f"no VM target selected (--target {pytestconfig.getoption('--target')})")
    cached = cached_kernels()
    usable = [n for n in selected if n in cached]
    if not usable:
        missing = " ".join(selected) or "5.10"
        pytest.skip(f"no selected VM target is cached; run `bpfcert kernels fetch {missing}`")
    return usable


@pytest.fixture(scope="session")
def vm_series(vm_series_list: list[str]) -> str:
    """The one series a lifecycle or fault test boots."""
    return vm_series_list[0]
