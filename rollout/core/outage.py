"""When an outage is worth a log line: its first failure and its end, never the retries between.

Every loop that talks to Redis retries while it is away (the channel follower, the SDK's
metrics flush, the controller's and the notifier's lock), some several times a second; a line
per retry would bury the one that matters. This decides which failures and successes to
report; the caller writes the line, in its own words, at its own level.
"""

from __future__ import annotations


class Outage:
    """One caller's view of one dependency: up until a failure, down until a success."""

    __slots__ = ("_down",)

    def __init__(self) -> None:
        self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def failed(self) -> bool:
        """A failure: True when it starts an outage (report it), False while one goes on."""
        started = not self._down
        self._down = True
        return started

    def succeeded(self) -> bool:
        """A success: True when it ends an outage (report that), False otherwise."""
        ended = self._down
        self._down = False
        return ended
