"""Every default in one place (rq's ``defaults.py`` style): one constant a line, each explained.

Settings, the controller, the channel follower, the connection and the key builder import from
here, so a default is written once and cannot disagree with itself. Times are seconds unless the
name says ``_MS``.
"""

from __future__ import annotations

KEY_PREFIX = "rollout"
"""Prefix of every Redis key (``ROLLOUT_KEY_PREFIX``)."""

KEY_PREFIX_PATTERN = r"[A-Za-z0-9_.:-]{1,64}"
"""What a key prefix may be: short, and nothing that would need quoting in a key name."""

SOCKET_TIMEOUT = 2.0
"""Seconds before a Redis call gives up (``ROLLOUT_SOCKET_TIMEOUT``); never on ``is_enabled``."""

WRITE_REPLICAS_TIMEOUT = 1.0
"""Seconds a flag write waits for its replicas (``ROLLOUT_WRITE_REPLICAS_TIMEOUT``)."""

REDIS_RETRIES = 2
"""Driver-level retries of one call to a single server after a dropped connection or a timeout."""

REDIS_FAILOVER_RETRIES = 16
"""The same on a Sentinel group or a Cluster, enough to ride out a failover (6-13 s)."""

REDIS_BACKOFF_BASE = 0.05
"""Seconds of the first driver retry's backoff (exponential, full jitter)."""

REDIS_BACKOFF_CAP = 1.0
"""The longest driver backoff between two retries."""

WRITE_RETRY_SECONDS = 20.0
"""How long a flag write keeps retrying, with the same write id, across a failover."""

RESYNC_INTERVAL = 30.0
"""Seconds between full reloads by every channel follower (``ROLLOUT_RESYNC_INTERVAL``)."""

BACKOFF_START = 0.05
"""Seconds a follower waits before its first reconnect after an outage; doubled each try."""

BACKOFF_MAX = 5.0
"""The longest wait between two reconnect attempts of a follower."""

FOLLOW_POLL = 0.5
"""Longest a follower blocks on the channel before it checks whether it should stop or resync."""

FLUSH_INTERVAL = 1.0
"""SDK: seconds between metric flushes (``ROLLOUT_FLUSH_INTERVAL``)."""

METRICS_BUFFER = 100_000
"""SDK: replaced flag values whose unsent counts wait out an outage (``ROLLOUT_METRICS_BUFFER``)."""

METRICS_RETENTION = 6 * 3600.0
"""Seconds 10-second metric windows live in Redis (``ROLLOUT_METRICS_RETENTION``)."""

HISTORY_RETENTION = 30 * 86400.0
"""Seconds the 5-minute rollups behind the history charts live (``ROLLOUT_HISTORY_RETENTION``)."""

ROLLUP_SECONDS = 300
"""Width of one history rollup: a 3-day stage is 864 of them, charted whole in one read."""

MAX_HISTORY_STEPS = 2_000
"""Most time steps one metrics-history answer holds; the default step keeps under it."""

MEMORY_REPORT_INTERVAL = 5.0
"""SDK: seconds between two reports of this process's memory growth."""

RETIRED_KEEP = 120.0
"""SDK: seconds a replaced answer function is still flushed; longer than any tracked request."""

CONTROLLER_INTERVAL = 1.0
"""Controller: seconds between ticks (``ROLLOUT_CONTROLLER_INTERVAL``)."""

LEADER_TTL = 5.0
"""Controller: seconds the leader lock lives unless renewed (``ROLLOUT_LEADER_TTL``)."""

WATCH_PERIOD = 24 * 3600.0
"""Controller: seconds a complete flag stays armed for kills (``ROLLOUT_WATCH_PERIOD``)."""

GATE_WINDOW_MS = 60_000
"""A gate's sliding window when the plan names none."""

GATE_MIN_SAMPLES = 100
"""Samples a counting gate needs before it reads more than ``insufficient``, when the plan is
silent (a kind may differ: ``core.gates.GATE_KINDS``)."""

MIN_GATE_WINDOW_MS = 1_000
"""Shortest sliding window: below one 10 s metric window it would read mostly nothing."""

MAX_GATE_WINDOW_MS = 3_600_000
"""Longest sliding window: the stage reading covers the long run, and each 10 s costs a read."""

WRITE_RETRY_BUDGET = 10.0
"""Seconds an operator's move keeps retrying lost compare-and-set races before it gives up."""

MAX_ACTOR = 256
"""Longest audit actor (an operator's name, ``cli:$USER``, ``controller``)."""

MAX_TEXT = 4_096
"""Longest free text an operator may type (a reason, a description)."""

MAX_USER = 1_024
"""Longest user id accepted by the API and the CLI."""

MAX_LISTED_USER = 256
"""Longest user id in a flag's ``allow`` or ``deny`` list. Shorter than ``MAX_USER``: up to
``schema.MAX_USERS`` of them sit in the flag's one document, which every change sends to every
SDK process, so a longer id can be evaluated but not listed."""

MAX_SALT = 256
"""Longest bucketing salt (set at creation, default: the key); it is hashed on every answer."""

VALUE_NAMES_PER_FLAG = 20
"""Business values (``value:NAME``): names an SDK process keeps per flag, and value gates a flag
may have; more names are dropped and counted."""

VALUE_LIMIT = 1e100
"""Business values: observations beyond +-this are dropped (and counted) in the SDK, so no
mean, M2 or Chan merge of them can overflow to infinity on the server: differences stay below
2e100, their squares below 4e200, and sums of those over any realistic count stay finite."""

MAX_RULES = 50
"""Most targeting rules a flag may hold (DESIGN §2.1); each costs a little on every answer."""

MAX_RULE_VALUES = 100
"""Most values one rule may list; a longer list of ids belongs in allow/deny."""

MAX_RULE_TEXT = 1_024
"""Longest string value a rule may hold (as long as the longest user id)."""

MAX_ATTRIBUTES = 100
"""Most context attributes an operator may pass to ``check --attr`` or ``evaluate?attr.*``."""

TREND_SPAN = 2 * 3600
"""Seconds of the error-rate trend drawn beside each flag in the dashboard's list (5 m steps)."""

TRIGGER_RATE = 10
"""Triggers: POSTs a second one trigger takes; more are answered 429 (after the secret check)."""

TRIGGER_SECRET_BYTES = 32
"""Triggers: random bytes in a trigger's secret (shown once; only its SHA-256 is stored)."""

NOTIFY_TIMEOUT = 5.0
"""Notifier: seconds one webhook POST may take."""

NOTIFY_RETRY_FOR = 24 * 3600.0
"""Notifier: seconds an event is retried for before it is dropped, counted and logged once."""

NOTIFY_BACKOFF_START = 0.5
"""Notifier: seconds before the first retry of a failed delivery; doubled each try (jittered)."""

NOTIFY_BACKOFF_MAX = 300.0
"""Notifier: the longest wait between two attempts at one event."""

NOTIFY_SAFETY_POLL = 5.0
"""Notifier: seconds between two reads of every flag's streams while nothing woke it.

The notifier wakes on the change channel (every flag write) and on event-stream appends, and
reads only the flags named there; this slow pass (its channel follower's full resync) is what
delivers an entry whose message was lost, within this many seconds."""

NOTIFY_RENEW = 1.0
"""Notifier: seconds between two renewals of its leader lock, and re-reads of the destinations
(at most a third of ``ROLLOUT_LEADER_TTL``). While its channel follower is disconnected it also
reads every flag's streams this often, as it did before it woke on the channel."""

NOTIFY_BATCH = 200
"""Notifier: stream entries read per flag per read."""
