"""Every Redis key name, built from one configurable prefix.

A flag's own keys carry the flag key as a hash tag (``rollout:{KEY}:flag``) so that its
multi-key operations stay in one slot on Redis Cluster.
"""

from __future__ import annotations

import re

from rollout.core.defaults import KEY_PREFIX, KEY_PREFIX_PATTERN

PREFIX_PATTERN = re.compile(KEY_PREFIX_PATTERN)


class Keys:
    def __init__(self, prefix: str = KEY_PREFIX) -> None:
        if not PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(f"invalid key prefix {prefix!r}")
        self.prefix = prefix
        self.index = f"{prefix}:flags"  # set of every flag key
        self.audited = f"{prefix}:audited"  # set of flag keys that have an audit stream
        self.changes = f"{prefix}:changes"  # pub/sub channel of every write
        self.status_changes = f"{prefix}:status-changes"  # the controller's words (not writes)
        self.audit_sequence = f"{prefix}:audit:seq"  # global order of audit entries
        self.snapshots = f"{prefix}:snapshots"  # hash: snapshot id -> JSON
        self.snapshot_times = f"{prefix}:snapshots:by-time"  # zset: id -> taken-at ms
        self.leader = f"{prefix}:controller:leader"
        self.controller_stats = f"{prefix}:controller:stats"
        self.sdk_stats = f"{prefix}:sdk:stats"
        # Triggers and the notifier's state share one tag ("~" is in no flag key, so no
        # flag's tag can be this one): their multi-key operations stay in one Cluster slot.
        shared = f"{prefix}:{{~global}}"
        self.triggers = f"{shared}:triggers"  # hash: trigger id -> JSON (secret hash only)
        self.destinations = f"{shared}:notify:destinations"  # hash: name -> JSON (no URL)
        self.notifier_leader = f"{shared}:notifier:leader"
        self._shared = shared

    def trigger_rate(self, trigger_id: str, second: int) -> str:
        """Counter of one trigger's POSTs in one second (expires soon after)."""
        return f"{self._shared}:trigger-rate:{trigger_id}:{second}"

    def notify_cursors(self, destination: str) -> str:
        """Hash: flag key -> the last stream positions delivered to ``destination``."""
        return f"{self._shared}:notify:cursor:{destination}"

    def notify_stats(self, destination: str) -> str:
        """Hash: delivered, failed, dropped, backlog, last success and last error."""
        return f"{self._shared}:notify:stats:{destination}"

    def _tagged(self, key: str, name: str) -> str:
        return f"{self.prefix}:{{{key}}}:{name}"

    def flag(self, key: str) -> str:
        return self._tagged(key, "flag")

    def status(self, key: str) -> str:
        return self._tagged(key, "status")

    def audit(self, key: str) -> str:
        return self._tagged(key, "audit")

    def events(self, key: str) -> str:
        """Stream: the controller's status events (hold, awaiting_approval, ...) for notifiers."""
        return self._tagged(key, "events")

    def event_marks(self, key: str) -> str:
        """Hash: which once-per-stage events were already appended (stage epoch|type|gate)."""
        return self._tagged(key, "event-marks")

    def high_water(self, key: str) -> str:
        """The highest version ever issued, kept past a delete so versions never repeat."""
        return self._tagged(key, "hwm")

    # Metrics are keyed by the stage's epoch (its stage_started_at): a new stage, a manual move
    # or a revive starts from fresh keys, so old evidence can never count again.

    def stage_metrics(self, key: str, epoch: int, arm: str) -> str:
        """Hash: the arm's counters and latency histogram over the whole stage."""
        return self._tagged(key, f"s:{epoch}:{arm}")

    def window_metrics(self, key: str, epoch: int, window: int, arm: str) -> str:
        """Hash: the same over one 10-second window (window = epoch seconds // 10)."""
        return self._tagged(key, f"w:{epoch}:{window}:{arm}")

    def memory(self, key: str, epoch: int) -> str:
        """Hash: process -> memory growth (MB) of each process that served the treatment."""
        return self._tagged(key, f"mem:{epoch}")

    # The packed history of the charts (storage/rollups.py), at resolution RES ("f" 10 s,
    # "c" 5 min): counts per span, errors by type and memory per group of spans.

    def history_counts(self, key: str, res: str, epoch: int, span: int) -> str:
        """String: both arms' counters over one span, as BITFIELD u32 slots."""
        return self._tagged(key, f"h{res}:{epoch}:{span}")

    def history_types(self, key: str, res: str, epoch: int, group: int) -> str:
        """Hash: SPAN:ARM:TYPE -> errors of that type, for a group of spans."""
        return self._tagged(key, f"h{res}e:{epoch}:{group}")

    def history_memory(self, key: str, res: str, epoch: int, group: int) -> str:
        """Sorted set: span -> highest memory growth (MB) reported in it, for a group of spans."""
        return self._tagged(key, f"h{res}m:{epoch}:{group}")

    def summaries(self, key: str) -> str:
        """Hash: stage epoch -> JSON summary of that ended stage; never expires."""
        return self._tagged(key, "summaries")
