"""Test-wide settings: hypothesis runs are derandomized so every run is the same."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "taiinet",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("taiinet")
