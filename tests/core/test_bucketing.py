"""Frozen bucketing: golden vectors, an independent murmur3, and the cohort properties."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollout.core.bucketing import bucket, in_cohort

VECTORS = json.loads((Path(__file__).parents[1] / "data" / "bucketing_vectors.json").read_text())


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    """A from-the-paper reference, so a regression in the mmh3 wheel cannot hide."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed
    rounded = len(data) & ~3
    for i in range(0, rounded, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    k = 0
    tail = data[rounded:]
    if len(tail) >= 3:
        k ^= tail[2] << 16
    if len(tail) >= 2:
        k ^= tail[1] << 8
    if tail:
        k ^= tail[0]
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        k = (k * c2) & mask
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def test_vectors_are_many_and_varied() -> None:
    cases = VECTORS["cases"]
    assert len(cases) >= 200
    assert len({c["salt"] for c in cases}) >= 4
    assert any(not c["user"].isascii() for c in cases)


@pytest.mark.parametrize("case", VECTORS["cases"], ids=lambda c: f"{c['salt']}:{c['user']}"[:40])
def test_golden_vector(case: dict[str, object]) -> None:
    salt, user = str(case["salt"]), str(case["user"])
    assert bucket(salt, user) == case["bucket"]
    reference = murmur3_x86_32(f"{salt}:{user}".encode()) % 10_000
    assert reference == case["bucket"]


def test_readme_table_matches_vectors() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and "bucket" not in line]
    checked = 0
    for row in rows:
        cells = [c.strip().strip("`") for c in row.strip("|").split("|")]
        if len(cells) == 3 and cells[2].isdigit():
            assert bucket(cells[0], cells[1]) == int(cells[2]), row
            checked += 1
    assert checked == 10  # every row of the README's table


users = st.text(min_size=0, max_size=40)
percents = st.integers(min_value=0, max_value=10_000)


@settings(max_examples=300)
@given(user=users, salt=st.text(max_size=20), a=percents, b=percents)
def test_raising_never_removes_and_lowering_never_adds(
    user: str, salt: str, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    if in_cohort(salt, user, low):
        assert in_cohort(salt, user, high)
    if not in_cohort(salt, user, high):
        assert not in_cohort(salt, user, low)


@pytest.mark.parametrize("percent", [10, 50, 90])
def test_share_of_100k_users_is_within_half_a_point(percent: int) -> None:
    n = 100_000
    share = sum(bucket("PROMPT_IMPROVER_ENABLED", f"user-{i}") < percent * 100 for i in range(n))
    assert abs(share / n * 100 - percent) <= 0.5


def test_flags_with_different_salts_are_independent() -> None:
    n, p1, p2 = 100_000, 0.3, 0.5
    both = sum(
        bucket("flag-a", f"u{i}") < p1 * 10_000 and bucket("flag-b", f"u{i}") < p2 * 10_000
        for i in range(n)
    )
    assert abs(both / n - p1 * p2) < 0.01
