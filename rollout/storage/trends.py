"""The dashboard list's trends, read from the 5-minute rollups: treatment samples and errors.

Two fields of each rollup (``HMGET``), never its latency histograms, for every flag in one
pipeline: the list of 200 flags costs one round trip of small replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout.storage.errors import storage_call
from rollout.storage.keys import Keys
from rollout.storage.metrics import ARM_LETTER, ROLLUP_SECONDS

_FIELDS = (ARM_LETTER["treatment"] + "n", ARM_LETTER["treatment"] + "e")


class TrendStore:
    def __init__(self, client: Any, keys: Keys) -> None:
        self.redis: Any = client
        self.keys = keys

    @storage_call
    def read(
        self, stages: Sequence[tuple[str, int]], first: int, count: int
    ) -> list[list[tuple[int, int]]]:
        """For each (flag key, stage epoch in ms), the treatment's (samples, errors) in each of
        the ``count`` rollups from bucket ``first`` on; buckets before the stage began read as
        (0, 0) without a call."""
        pipe = self.redis.pipeline(transaction=False)
        starts = []
        for key, epoch in stages:
            start = max(first, epoch // 1000 // ROLLUP_SECONDS)
            starts.append(start)
            for bucket in range(start, first + count):
                pipe.hmget(self.keys.rollup(key, epoch, bucket), *_FIELDS)
        replies = iter(pipe.execute())
        found = []
        for start in starts:
            row = [(0, 0)] * (start - first)
            for _bucket in range(start, first + count):
                samples, errors = next(replies)
                row.append((int(samples or 0), int(errors or 0)))
            found.append(row)
        return found
