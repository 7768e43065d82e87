"""The API's in-memory flag reads: current through the channels, never wrong for long."""

from __future__ import annotations

from typing import Any

import pytest

from rollout.core.errors import FlagNotFound, MalformedFlag
from rollout.core.model import Flag
from rollout.services.container import Services
from rollout.services.reads import FlagReads
from rollout.storage.connection import client_for_url
from rollout.storage.flags import FlagStore
from rollout.storage.keys import Keys
from rollout.wiring import build_services
from tests.conftest import make_settings
from tests.support import FakeClock, wait_until, write_quietly


@pytest.fixture
def pair(real_redis: Any, clock: FakeClock) -> tuple[Services, Services]:
    """Two processes' worth of services on one Redis: an API worker and another writer."""
    reader = build_services(make_settings(), redis_client=real_redis, clock=clock)
    writer = build_services(make_settings(), redis_client=real_redis, clock=clock)
    yield reader, writer
    reader.close()


def _missing(services: Services, key: str) -> bool:
    try:
        services.reads.get(key)
    except FlagNotFound:
        return True
    return False


def test_writes_elsewhere_reach_the_cache_through_the_channel(
    pair: tuple[Services, Services], real_redis: Any
) -> None:
    reader, writer = pair
    writer.flags.create("F", actor="t", stages=[{"percent": 10}])
    assert reader.reads.get("F").version == 1  # a miss reads Redis
    assert reader.reads.wait_synced()
    advanced = writer.flags.advance("F", actor="t")
    assert wait_until(lambda: reader.reads.get("F").version == 2)
    write_quietly(real_redis, advanced.with_changes(description="quiet"))
    assert reader.reads.get("F").description == ""  # served from memory now, not from Redis
    writer.flags.record_status("F", "hold", "baking: 1h left")
    assert wait_until(lambda: reader.reads.get("F").status is not None)
    writer.flags.delete("F", actor="t")
    assert wait_until(lambda: _missing(reader, "F"))


def test_own_writes_are_visible_at_once(pair: tuple[Services, Services]) -> None:
    reader, _writer = pair
    reader.flags.create("F", actor="t", stages=[{"percent": 10}])
    reader.reads.get("F")
    assert reader.reads.wait_synced()
    for _ in range(5):
        percent = reader.reads.get("F").percent_bp // 100 + 1
        moved = reader.flags.set_percent("F", percent, actor="t")
        assert reader.reads.get("F").version == moved.version  # no wait: read your writes


def test_a_malformed_flag_still_answers_its_clear_error(
    pair: tuple[Services, Services], real_redis: Any
) -> None:
    reader, writer = pair
    writer.flags.create("BAD", actor="t")
    real_redis.hset(Keys().flag("BAD"), "d", "{oops")
    reader.reads.start()
    assert reader.reads.wait_synced()
    with pytest.raises(MalformedFlag):
        reader.reads.get("BAD")


def test_the_list_is_rendered_again_only_after_a_change(
    pair: tuple[Services, Services], real_redis: Any
) -> None:
    reader, writer = pair
    writer.flags.create("B", actor="t")
    writer.flags.create("A", actor="t", stages=[{"percent": 10}])
    rendered: list[list[tuple[str, int, str | None]]] = []

    def render(flags: list[Flag], problems: list[str]) -> int:
        rendered.append([(f.key, f.version, f.status and f.status.decision) for f in flags])
        return len(rendered)

    reader.reads.start()
    assert reader.reads.wait_synced()
    first = reader.reads.rendered_list(render)
    assert rendered[-1] == [("A", 1, None), ("B", 1, None)]  # by key
    assert reader.reads.rendered_list(render) == first  # nothing changed: not rendered again
    writer.flags.record_status("A", "hold", "baking: 1h left")  # a status word is a change
    assert wait_until(lambda: reader.reads.rendered_list(render) != first)
    assert rendered[-1] == [("A", 1, "hold"), ("B", 1, None)]
    second = len(rendered)
    writer.flags.advance("A", actor="t")
    assert wait_until(lambda: reader.reads.rendered_list(render) != second)
    assert rendered[-1][0][:2] == ("A", 2)
    # Another renderer never gets this one's result.
    assert reader.reads.rendered_list(lambda flags, problems: "other") == "other"


def test_an_unsynced_list_comes_from_redis_every_time(
    real_redis: Any, clock: FakeClock, closed_port: int
) -> None:
    """The follower cannot reach its Redis, so nothing is held: each list reads the store."""
    writer = build_services(make_settings(), redis_client=real_redis, clock=clock)
    down = client_for_url(f"redis://127.0.0.1:{closed_port}", socket_timeout=0.2)
    reads = FlagReads(FlagStore(real_redis, Keys()), down, Keys())
    try:
        created = writer.flags.create("F", actor="t")
        assert [f.key for f in reads.flags()] == ["F"]
        seen = reads.rendered_list(lambda flags, problems: [f.description for f in flags])
        write_quietly(real_redis, created.with_changes(description="quiet"))
        again = reads.rendered_list(lambda flags, problems: [f.description for f in flags])
        assert (seen, again) == ([""], ["quiet"])
    finally:
        reads.stop(timeout=5.0)
        down.close()


def test_a_restored_status_word_reaches_another_worker_without_a_resync(
    real_redis: Any, clock: FakeClock
) -> None:
    """Restore writes the word with the value; the reader, whose resync is an hour away, can
    only have heard it on the channel."""
    writer = build_services(make_settings(), redis_client=real_redis, clock=clock)
    reader = build_services(make_settings(resync_interval=3600), redis_client=real_redis)

    def word() -> str | None:
        held = reader.reads.synced()
        flag = None if held is None else held.get("F")
        return None if flag is None or flag.status is None else flag.status.decision

    try:
        writer.flags.create("F", actor="t", stages=[{"percent": 10}])
        writer.flags.advance("F", actor="t")
        wordless = writer.snapshots.take()
        writer.flags.record_status("F", "hold", "baking: 1h left")
        holding = writer.snapshots.take()
        reader.reads.start()
        assert reader.reads.wait_synced()
        writer.flags.record_status("F", "awaiting_approval", "all gates pass")
        assert wait_until(lambda: word() == "awaiting_approval")
        assert writer.snapshots.restore(holding, actor="restorer").updated == ["F"]
        assert wait_until(lambda: word() == "hold")
        assert writer.snapshots.restore(wordless, actor="restorer").updated == ["F"]
        assert wait_until(lambda: word() is None and reader.reads.get("F").version == 4)
    finally:
        reader.close()
