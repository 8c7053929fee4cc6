"""Joining queued messages keeps the byte stream and the size limit."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from taiinet.transport._coalesce import coalesce


@given(st.lists(st.binary(max_size=50), max_size=30), st.integers(1, 120))
def test_coalesce_keeps_the_stream_and_the_limit(messages: list[bytes], limit: int) -> None:
    joined = coalesce(messages, limit)
    assert b"".join(joined) == b"".join(messages)
    assert all(len(m) <= limit or m in messages for m in joined)
    # Greedy: no two neighbouring results would fit together.
    assert all(len(a) + len(b) > limit for a, b in itertools.pairwise(joined))
    assert len(joined) <= len(messages)


def test_coalesce_joins_small_messages() -> None:
    assert coalesce([b"ab", b"cd", b"ef"], 4) == [b"abcd", b"ef"]
