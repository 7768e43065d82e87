"""The dashboard list's trends, read from the packed 5-minute history (``storage/rollups.py``).

Only two counters of each span, the treatment's samples and errors, never the latency
histograms, for every flag in one pipeline: the list of 200 flags costs one round trip of small
replies. ``BITFIELD`` with GETs only reads (and creates no key); not ``BITFIELD_RO``, which
fakeredis lacks, and these reads go to the master anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys
from rollout.storage.rollups import ARM_INDEX, COARSE

# Counter ``slot`` of ``arm`` sits at u32 offset 2 * slot + arm: slot 0 samples, 1 errors.
_TREATMENT = ARM_INDEX["treatment"]
_GETS = ("GET", "u32", f"#{_TREATMENT}", "GET", "u32", f"#{2 + _TREATMENT}")


class TrendStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys

    @storage_call
    def read(
        self, stages: Sequence[tuple[str, int]], first: int, count: int
    ) -> list[list[tuple[int, int]]]:
        """For each (flag key, stage epoch in ms), the treatment's (samples, errors) in each of
        the ``count`` 5-minute spans from span ``first`` on; spans before the stage began read
        as (0, 0) without a call."""
        pipe = self.redis.pipeline(transaction=False)
        starts = []
        for key, epoch in stages:
            start = min(first + count, max(first, epoch // 1000 // COARSE.seconds))
            starts.append(start)
            for span in range(start, first + count):
                counts = self.keys.history_counts(key, COARSE.code, epoch, span)
                pipe.execute_command("BITFIELD", counts, *_GETS)
        replies = iter(pipe.execute())
        found = []
        for start in starts:
            row = [(0, 0)] * (start - first)
            for _span in range(start, first + count):
                samples, errors = next(replies)
                row.append((int(samples), int(errors)))
            found.append(row)
        return found
