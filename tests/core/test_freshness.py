"""The one rule of every in-memory reader: older news than the flag held is ignored."""

from __future__ import annotations

from rollout.core.freshness import is_newer, with_news
from rollout.core.model import Flag


def flag(version: int, description: str = "") -> Flag:
    return Flag(key="F", salt="F", version=version, description=description)


def test_only_a_later_version_replaces_what_is_held() -> None:
    assert is_newer(None, 1)
    assert is_newer(flag(3), 4)
    assert not is_newer(flag(3), 3)
    assert not is_newer(flag(3), 2)


def test_with_news_returns_a_new_mapping_or_none() -> None:
    held = {"F": flag(3, "held"), "G": flag(1)}
    assert with_news(held, "F", 3, flag(3, "same version")) is None
    assert with_news(held, "F", 2, None) is None  # an old delete does not delete
    newer = with_news(held, "F", 4, flag(4, "newer"))
    assert newer == {"F": flag(4, "newer"), "G": flag(1)}
    assert held["F"].description == "held"  # never edited in place
    assert with_news(held, "F", 4, None) == {"G": flag(1)}
    assert with_news({}, "H", 1, flag(1)) == {"H": flag(1)}
    assert with_news({}, "H", 1, None) == {}  # gone, and nothing held: an empty mapping
