"""Every Redis key name, built from one configurable prefix.

A flag's own keys carry the flag key as a hash tag (``rollout:{KEY}:flag``) so that its
write script stays in one slot on Redis Cluster. The global keys (index, audit sequence,
snapshots, leaders, counters, triggers, destinations, notifier state) share one tag of their
own, ``{@PREFIX}``: ``@`` cannot appear in a flag key, so no flag's keys can ever collide with
them, and a multi-key operation on globals stays in one slot too. ``legacy_globals`` names
where they lived before (for ``migrate``).
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
        # Channels are not keys (no slot): every node of a Cluster relays them.
        self.changes = f"{prefix}:changes"  # pub/sub channel of every write
        self.status_changes = f"{prefix}:status-changes"  # the controller's words (not writes)
        self.event_appends = f"{prefix}:event-appends"  # an event stream got an entry (notifier)
        self.index = self.global_key("flags")  # set of flag keys: a hint, see FlagStore
        self.audited = self.global_key("audited")  # set of flag keys that have an audit stream
        self.audit_sequence = self.global_key("audit:seq")  # global order of audit entries
        self.snapshots = self.global_key("snapshots")  # hash: snapshot id -> JSON
        self.snapshot_times = self.global_key("snapshots:by-time")  # zset: id -> taken-at ms
        self.leader = self.global_key("controller:leader")
        self.leader_token = self.global_key("controller:fence")  # INCR: one per leadership
        self.controller_stats = self.global_key("controller:stats")
        self.sdk_stats = self.global_key("sdk:stats")
        self.layout = self.global_key("layout")  # the key layout's version, set by migrate
        # Triggers and the notifier's state are globals too: the same tag, so their multi-key
        # operations stay in the one slot of every other global.
        self.triggers = self.global_key("triggers")  # hash: trigger id -> JSON (secret hash only)
        self.destinations = self.global_key("notify:destinations")  # hash: name -> JSON (no URL)
        self.notifier_leader = self.global_key("notifier:leader")

    def global_key(self, name: str) -> str:
        return f"{self.prefix}:{{@{self.prefix}}}:{name}"

    def trigger_rate(self, trigger_id: str, second: int) -> str:
        """Counter of one trigger's POSTs in one second (expires soon after)."""
        return self.global_key(f"trigger-rate:{trigger_id}:{second}")

    def notify_cursors(self, destination: str) -> str:
        """Hash: flag key -> the last stream positions delivered to ``destination``."""
        return self.global_key(f"notify:cursor:{destination}")

    def notify_stats(self, destination: str) -> str:
        """Hash: delivered, failed, dropped, backlog, last success and last error."""
        return self.global_key(f"notify:stats:{destination}")

    def legacy_globals(self) -> dict[str, str]:
        """Layout 1 (one server only, before Cluster support): old name -> new name."""
        names = {
            "flags": self.index,
            "audited": self.audited,
            "audit:seq": self.audit_sequence,
            "snapshots": self.snapshots,
            "snapshots:by-time": self.snapshot_times,
            "controller:leader": self.leader,
            "controller:stats": self.controller_stats,
            "sdk:stats": self.sdk_stats,
            "{~global}:triggers": self.triggers,
            "{~global}:notify:destinations": self.destinations,
            "{~global}:notifier:leader": self.notifier_leader,
        }
        return {f"{self.prefix}:{old}": new for old, new in names.items()}

    def legacy_notifier_keys(self) -> tuple[str, str]:
        """SCAN patterns of the notifier's cursors and stats under their old tag, and the
        prefix that ``global_key`` replaces in their names (for ``migrate``)."""
        old = f"{self.prefix}:{{~global}}:"
        return old + "notify:*", old

    def _tagged(self, key: str, name: str) -> str:
        return f"{self.prefix}:{{{key}}}:{name}"

    def flag(self, key: str) -> str:
        return self._tagged(key, "flag")

    def status(self, key: str) -> str:
        return self._tagged(key, "status")

    def audit(self, key: str) -> str:
        return self._tagged(key, "audit")

    def fence(self, key: str) -> str:
        """The highest leader token a write of this flag has carried (fencing)."""
        return self._tagged(key, "fence")

    def write_id(self, key: str, write_id: str) -> str:
        """Set by the write that carried ``write_id`` (its version), for a while: a retry of it
        finds it and applies nothing twice."""
        return self._tagged(key, f"wid:{write_id}")

    def value_pattern(self) -> str:
        """SCAN pattern of every flag's value key (the index's reconciliation)."""
        return f"{self.prefix}:{{*}}:flag"

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

    def stage_counts(self, key: str, epoch: int) -> str:
        """String: both arms' counters and latency histograms over the whole stage, as BITFIELD
        i64 slots (the layout of ``history_counts``). A window's are its 10-second span's."""
        return self._tagged(key, f"sc:{epoch}")

    def stage_metrics(self, key: str, epoch: int, arm: str) -> str:
        """Hash: the arm's errors by type and business values over the whole stage (and, from
        the layout before ``stage_counts``, its counters and histogram)."""
        return self._tagged(key, f"s:{epoch}:{arm}")

    def window_metrics(self, key: str, epoch: int, window: int, arm: str) -> str:
        """Hash: the same over one 10-second window (window = epoch seconds // 10)."""
        return self._tagged(key, f"w:{epoch}:{window}:{arm}")

    def flush_marker(self, key: str, epoch: int, process: str) -> str:
        """The highest batch sequence of ``process`` applied to this stage, for a while: a retry
        of a batch finds it and adds nothing twice. In the flag's slot, outside its
        ``PREFIX:{KEY}:*`` names (the stage's keys, as a scan of them lists them)."""
        return f"{self.prefix}:fm:{{{key}}}:{epoch}:{process}"

    def sdk_flush_marker(self, process: str) -> str:
        """The same marker for the process's SDK-wide counters (``sdk_stats``)."""
        return f"{self.prefix}:fm:{{@{self.prefix}}}:{process}"

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

    def history_values(self, key: str, res: str, epoch: int, group: int) -> str:
        """Hash: SPAN:ARM:NAME:n|mean|m2 -> each business value's moments, for a group of spans."""
        return self._tagged(key, f"h{res}v:{epoch}:{group}")

    def history_memory(self, key: str, res: str, epoch: int, group: int) -> str:
        """Sorted set: span -> highest memory growth (MB) reported in it, for a group of spans."""
        return self._tagged(key, f"h{res}m:{epoch}:{group}")

    def summaries(self, key: str) -> str:
        """Hash: stage epoch -> JSON summary of that ended stage; never expires."""
        return self._tagged(key, "summaries")
