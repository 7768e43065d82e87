"""Which news about a flag a reader that keeps flags in memory takes (DESIGN §5).

Every such reader subscribes before its full load, so a change that landed in between arrives
after the load already holds it; and a reconnect may replay what a resync has overtaken. Both
are older news than what is held, and taking them would step a flag back in time.
"""

from __future__ import annotations

from collections.abc import Mapping

from rollout.core.model import Flag


def is_newer(held: Flag | None, version: int) -> bool:
    """Does news at ``version`` replace ``held``? Only a later version does."""
    return held is None or held.version < version


def with_news(
    flags: Mapping[str, Flag], key: str, version: int, flag: Flag | None
) -> dict[str, Flag] | None:
    """``flags`` with ``key`` set to ``flag`` (None: gone), or None when the news is older.

    A new mapping, never an edit in place: readers on other threads see the old whole or the new
    whole, never one half-changed.
    """
    if not is_newer(flags.get(key), version):
        return None
    updated = dict(flags)
    if flag is None:
        updated.pop(key, None)
    else:
        updated[key] = flag
    return updated
