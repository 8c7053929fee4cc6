"""Test-wide settings: hypothesis runs are derandomized so every run is the same;
a MockClock fixture for in-process runs that use worker threads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from trio.testing import MockClock

from taiinet.testing.clock import clock_waits_for_threads

settings.register_profile(
    "taiinet",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("taiinet")


@pytest.fixture
def thread_aware_clock() -> Iterator[MockClock]:
    """``MockClock(autojump_threshold=0)`` that does not jump while a worker thread
    runs (a seeder's SQLite store): see ``taiinet.testing.clock``."""
    clock = MockClock(autojump_threshold=0)
    with clock_waits_for_threads(clock):
        yield clock
