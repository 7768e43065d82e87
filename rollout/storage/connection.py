"""Redis connections: ``ROLLOUT_REDIS_URL`` when set, else the embedded server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from rollout.core.defaults import SOCKET_TIMEOUT
from rollout.core.errors import StorageError, ValidationError
from rollout.storage.errors import wrapped


def client_for_url(url: str, *, socket_timeout: float = SOCKET_TIMEOUT) -> Any:
    """A client with bounded timeouts, so an outage becomes an error, never a hang."""
    with wrapped():
        try:
            return redis.Redis.from_url(
                url,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                health_check_interval=30,
                retry_on_timeout=False,
                # Our callers decide about retries: the SDK backs off on its own, services
                # retry CAS moves. Driver-level retries would only delay noticing an outage.
                retry=Retry(NoBackoff(), 0),
            )
        except ValueError as error:
            # A URL that cannot even be parsed is the operator's typo, not an outage.
            raise ValidationError(f"invalid Redis URL: {error}", "redis_url") from None


def resolve_url(redis_url: str | None, data_dir: Path, *, start_embedded: bool) -> str:
    """The URL to use. Only servers and the CLI start the embedded server; the SDK never does."""
    if redis_url:
        return redis_url
    from rollout.storage.embedded import EmbeddedRedis

    embedded = EmbeddedRedis(data_dir)
    if start_embedded:
        return embedded.ensure_running()
    url = embedded.running_url()
    if url is None:
        raise StorageError(f"no embedded Redis server is running under {data_dir}")
    return url


def connect(
    redis_url: str | None,
    data_dir: Path,
    *,
    start_embedded: bool = True,
    socket_timeout: float = SOCKET_TIMEOUT,
) -> Any:
    url = resolve_url(redis_url, data_dir, start_embedded=start_embedded)
    return client_for_url(url, socket_timeout=socket_timeout)
