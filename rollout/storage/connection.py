"""Redis connections: ``ROLLOUT_REDIS_URL`` when set, else the embedded server.

One function per topology builds the client; nothing above ``storage/`` learns which one it
got. Every client has bounded timeouts (an outage becomes an error, never a hang) and redis-py's
``Retry`` with explicit settings: a few retries with exponential, fully jittered backoff, so a
dropped connection or a Sentinel failover is ridden out without a thundering herd, and the
library's defaults (which changed between versions) never decide.

TLS applies to every connection of a topology: the data nodes, the sentinels, and the Cluster
nodes that the client discovers from its seeds. The CA file is checked before anything
connects; a server whose certificate does not verify is reported in those words, and a Sentinel
group that no sentinel could be verified with, or that knows no such service, is not retried
as if it were a failover.
"""

from __future__ import annotations

import inspect
import re
import ssl
from pathlib import Path
from typing import Any

import redis
from redis.backoff import AbstractBackoff, EqualJitterBackoff, ExponentialWithJitterBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from rollout.core.defaults import (
    REDIS_BACKOFF_BASE,
    REDIS_BACKOFF_CAP,
    REDIS_FAILOVER_RETRIES,
    REDIS_RETRIES,
    SOCKET_TIMEOUT,
)
from rollout.core.errors import StorageError, ValidationError
from rollout.core.redis_url import (
    RedisTarget,
    RedisUrlError,
    ca_file_problem,
    mask_secrets,
    parse_redis_url,
)
from rollout.storage.errors import wrapped


def driver_retry(retries: int = REDIS_RETRIES, *, failover: bool = False) -> Retry:
    """Exponential backoff with full jitter for one server (fail fast, spread the herd); with
    equal jitter where a failover can happen, so the retries surely span one (6-13 s)."""
    backoff: AbstractBackoff
    if failover:
        backoff = EqualJitterBackoff(cap=REDIS_BACKOFF_CAP, base=REDIS_BACKOFF_BASE)
    else:
        backoff = ExponentialWithJitterBackoff(cap=REDIS_BACKOFF_CAP, base=REDIS_BACKOFF_BASE)
    return Retry(backoff, retries)


def _common(target: RedisTarget, socket_timeout: float, ca_file: Path | None) -> dict[str, Any]:
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": socket_timeout,
        "retry": driver_retry(
            REDIS_RETRIES if target.topology == "single" else REDIS_FAILOVER_RETRIES
        ),
        "username": target.username,
        "password": target.password,
    }
    if target.tls:
        options["ssl"] = True
        options["ssl_cert_reqs"] = "required"
        if ca_file is not None:
            options["ssl_ca_certs"] = str(ca_file)
    return options


def _single(target: RedisTarget, options: dict[str, Any]) -> Any:
    options["health_check_interval"] = 30
    if target.path is not None:  # the parser refuses TLS on a socket
        return redis.Redis(unix_socket_path=target.path, db=target.db, **options)
    host, port = target.hosts[0]
    return redis.Redis(host=host, port=port, db=target.db, **options)


TLS_HINT = "is ROLLOUT_REDIS_CA_FILE the CA that signed the servers' certificates?"
_CONNECTING = re.compile(r"^Error -?\d+ connecting to \S+:\d+\.\s*")


class SentinelRefused(redis.exceptions.RedisError):
    """The sentinels were asked and no retry will change their answer: not one could be
    verified over TLS (a wrong CA file or certificate), or every one answered and none knows
    the service (a typo in the URL). Not a ConnectionError, so no retry spends seconds on it
    as if it were a failover; it still becomes a StorageError like any driver error."""


def _tls_failure(error: BaseException) -> bool:
    """Whether ``error`` (redis-py wraps the ssl module's error) came from the TLS handshake."""
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class _Sentinel(Sentinel):
    """redis-py's Sentinel, with a failed discovery in words: each sentinel's address and what
    it said. (redis-py lists the sentinel clients' reprs, which hide a certificate or a password
    error behind "network:ConnectionError".)"""

    def discover_master(self, service_name: str) -> tuple[str, int]:
        reasons: dict[str, list[str]] = {}  # what went wrong -> the sentinels it happened at
        tls_only = unknown_only = bool(self.sentinels)
        for number, sentinel in enumerate(self.sentinels):
            kwargs = sentinel.connection_pool.connection_kwargs
            address = f"{kwargs.get('host')}:{kwargs.get('port')}"
            try:
                masters: Any = sentinel.sentinel_masters()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as error:
                tls = _tls_failure(error)
                tls_only, unknown_only = tls_only and tls, False
                text = _CONNECTING.sub("", str(error)).rstrip(". ") or type(error).__name__
                reasons.setdefault(f"TLS: {text}" if tls else text, []).append(address)
                continue
            tls_only = False
            state = masters.get(service_name)
            if state and self.check_master_state(state, service_name):  # type: ignore[no-untyped-call]
                self.sentinels[0], self.sentinels[number] = sentinel, self.sentinels[0]
                return state["ip"], state["port"]
            unknown_only = unknown_only and not state
            why = "knows no such service" if not state else "names no usable master now"
            reasons.setdefault(why, []).append(address)
        said = "; ".join(f"{', '.join(where)}: {why}" for why, where in reasons.items())
        message = f"No master found for {service_name!r} (sentinels {said})"
        if tls_only:
            raise SentinelRefused(f"{message} ({TLS_HINT})")
        if unknown_only:
            raise SentinelRefused(message)
        raise MasterNotFoundError(message)  # a failover under way, sentinels down: retried


def _sentinel(target: RedisTarget, options: dict[str, Any]) -> Any:
    sentinel_options = {k: v for k, v in options.items() if k.startswith(("socket_", "ssl"))}
    sentinel_options["retry"] = driver_retry(0)  # a dead sentinel: ask the next one at once
    sentinel_options["decode_responses"] = True
    sentinel_options["username"] = target.sentinel_username
    sentinel_options["password"] = target.sentinel_password
    options["health_check_interval"] = 30
    sentinel = _Sentinel(list(target.hosts), sentinel_kwargs=sentinel_options, **options)  # type: ignore[no-untyped-call]
    # The client asks the sentinels for the master before each new connection, so it follows
    # a failover by itself once the old master's connections fail.
    return sentinel.master_for(target.service, db=target.db)  # type: ignore[no-untyped-call]


def _script_routing() -> dict[str, Any]:
    """redis-py 8's cluster client looks up a command's routing policy first, and for a
    command its table lacks and whose keys move (EVAL, EVALSHA) asks a server with
    ``COMMAND GETKEYS``: one more round trip to one node for every script call, which made that
    node the Cluster's busiest (1.35x its share in ``bench/scale.py``). Our scripts are always
    keyed by their KEYS, which the client reads without asking."""
    try:
        from redis._parsers.commands import CommandPolicies, RequestPolicy, ResponsePolicy
        from redis.commands.policies import (
            BasePolicyResolver,
            PolicyResolver,
            StaticPolicyResolver,
        )
    except ImportError:  # redis-py before 8: routes EVALSHA by its keys without a lookup
        return {}
    if "policy_resolver" not in inspect.signature(RedisCluster.__init__).parameters:
        return {}
    keyed = CommandPolicies(
        request_policy=RequestPolicy.DEFAULT_KEYED, response_policy=ResponsePolicy.DEFAULT_KEYED
    )

    class Scripts(BasePolicyResolver):
        def with_fallback(self, fallback: PolicyResolver) -> PolicyResolver:
            return Scripts(self._policies, fallback)

    # redis-py's own table stays the fallback for every other command.
    scripts = Scripts({"core": {"eval": keyed, "evalsha": keyed}}, StaticPolicyResolver())
    return {"policy_resolver": scripts}


class _RoutedCluster(RedisCluster):
    """A cluster client whose pipelines route scripts as it does: redis-py 8.1's ``pipeline()``
    does not hand the client's ``policy_resolver`` on to the pipeline."""

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> Any:
        pipe = super().pipeline(transaction, shard_hint)  # type: ignore[no-untyped-call]
        if getattr(self, "_policy_resolver", None) is not None:
            pipe._policy_resolver = self._policy_resolver
        return pipe


def _cluster(target: RedisTarget, options: dict[str, Any]) -> Any:
    nodes = [ClusterNode(host, port) for host, port in target.hosts]  # type: ignore[no-untyped-call]
    try:
        return _RoutedCluster(
            startup_nodes=nodes,
            require_full_coverage=True,
            reinitialize_steps=1,  # re-read the slot map at the first MOVED: failovers move slots
            **_script_routing(),
            **options,
        )
    except redis.exceptions.RedisClusterException as error:
        # redis-py keeps only the text of the seeds' errors: tell a TLS one by its words.
        tls = target.tls and ("[SSL" in str(error) or "[X509" in str(error))
        hint = TLS_HINT if tls else "is each seed a cluster node, with every slot assigned?"
        raise StorageError(f"no Redis Cluster at {target.masked}: {error} ({hint})") from None


def client_for_url(
    url: str, *, socket_timeout: float = SOCKET_TIMEOUT, ca_file: Path | None = None
) -> Any:
    """A client of the topology ``url`` names. ``ValidationError`` for a malformed URL."""
    try:
        target = parse_redis_url(url)
    except RedisUrlError as error:
        # A URL that cannot even be parsed is the operator's typo, not an outage.
        raise ValidationError(f"invalid Redis URL: {error}", "redis_url") from None
    if target.tls and ca_file is not None and (problem := ca_file_problem(ca_file)) is not None:
        message = f"invalid CA file (ROLLOUT_REDIS_CA_FILE): {problem}"
        raise ValidationError(message, "redis_ca_file")
    options = _common(target, socket_timeout, ca_file)
    try:
        with wrapped():
            if target.topology == "sentinel":
                return _sentinel(target, options)
            if target.topology == "cluster":
                return _cluster(target, options)
            return _single(target, options)
    except StorageError as error:
        cause = error.cause
        text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        raise StorageError(mask_secrets(text, url)) from None


def masked(url: str | None) -> str:
    """``url`` fit for a log line or a start-up banner: every password blanked out."""
    from rollout.core.redis_url import mask_url

    return "embedded" if not url else mask_url(url)


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
    ca_file: Path | None = None,
) -> Any:
    url = resolve_url(redis_url, data_dir, start_embedded=start_embedded)
    return client_for_url(url, socket_timeout=socket_timeout, ca_file=ca_file)
