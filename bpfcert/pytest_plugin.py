"""pytest plugin: Hypothesis profiles (dev, ci) and the kernel targets (--target, the `target` fixture)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        default=None,
        help="kernel targets: host, 5.10, 6.1, 6.12, 7.2, comma-separated, or all (default: host + cached kernels)",
    )
