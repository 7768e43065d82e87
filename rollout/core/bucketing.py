"""Frozen bucketing (DESIGN §3). Changing this formula re-buckets every user in production.

``bucket(salt, user) = murmur3_x86_32(utf8(f"{salt}:{user}"), seed=0, unsigned) % 10000``
"""

from __future__ import annotations

import mmh3

BUCKETS = 10_000


def bucket(salt: str, user: str) -> int:
    """The user's bucket in 0..9999; a user is in the cohort iff ``bucket < percent_bp``.

    Hashes the UTF-8 bytes explicitly: mmh3 given a ``str`` with a lone surrogate crashes the
    interpreter, whereas ``encode`` raises an exception the caller can handle.
    """
    return mmh3.hash(f"{salt}:{user}".encode(), 0, False) % BUCKETS


def in_cohort(salt: str, user: str, percent_bp: int) -> bool:
    return bucket(salt, user) < percent_bp
