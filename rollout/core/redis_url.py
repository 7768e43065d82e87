"""The grammar of ``ROLLOUT_REDIS_URL``: parsed once, checked at start, never printed in clear.

Pure (no driver): settings validate a URL with it at start, and ``storage.connection`` builds
the client of the topology it names. Forms::

    redis://[user:pass@]host[:port][/DB]          rediss://... (TLS)
    unix://[user:pass@]/path/to/socket[?db=N]
    redis+sentinel://[user:pass@]host[:port][,host[:port]...]/SERVICE[/DB]
        ?sentinel_username=U&sentinel_password=P   (credentials for the sentinels themselves)
    redis+cluster://[user:pass@]host[:port][,host[:port]...]

TLS: the ``rediss`` form of each (``rediss+sentinel://``, ``rediss+cluster://``) or
``?tls=true`` on any TCP form; ``ROLLOUT_REDIS_CA_FILE`` names the CA bundle (checked at start
by ``ca_file_problem``). ``user:pass`` always authenticate to the data nodes (ACL user, or only
a password: ``:pass@``).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

Topology = Literal["single", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Topology, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
_PARAMS = {"tls", "db", "sentinel_username", "sentinel_password"}
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([^:]*))?$")
_SERVICE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379


class RedisUrlError(ValueError):
    """What is wrong with a URL, in words that never contain its password."""


@dataclass(frozen=True)
class RedisTarget:
    topology: Topology
    hosts: tuple[tuple[str, int], ...] = ()  # data node (single), sentinels, or cluster seeds
    path: str | None = None  # unix socket
    service: str | None = None  # sentinel master name
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)
    tls: bool = False

    @property
    def masked(self) -> str:
        """The URL as an operator may see it: every password replaced by ``***``."""
        scheme = {"single": "redis", "sentinel": "redis+sentinel", "cluster": "redis+cluster"}
        name = "unix" if self.path is not None else scheme[self.topology]
        if self.tls and self.path is None:
            name = name.replace("redis", "rediss", 1)
        auth = ""
        if self.username or self.password:
            auth = f"{self.username or ''}{':***' if self.password else ''}@"
        if self.path is not None:
            tail = f"{self.path}{f'?db={self.db}' if self.db else ''}"
            return f"{name}://{auth}{tail}"
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.hosts)
        path = ""
        if self.service is not None:
            path = f"/{self.service}"
        if self.topology != "cluster" and (self.db or self.service is None):
            path += f"/{self.db}"
        query = []
        if self.sentinel_username:
            query.append(f"sentinel_username={self.sentinel_username}")
        if self.sentinel_password:
            query.append("sentinel_password=***")
        return f"{name}://{auth}{hosts}{path}{'?' + '&'.join(query) if query else ''}"


@dataclass(frozen=True)
class _Auth:
    username: str | None
    password: str | None = field(repr=False)
    tls: bool

    def target(self, topology: Topology, **values: Any) -> RedisTarget:
        return RedisTarget(
            topology, username=self.username, password=self.password, tls=self.tls, **values
        )


def _port(text: str, where: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise RedisUrlError(f"bad port {text!r} in {where} (must be 1-65535)")
    return int(text)


def _hosts(netloc: str, default_port: int, *, many: bool) -> tuple[tuple[str, int], ...]:
    parts = netloc.split(",") if netloc else []
    if not parts or not all(parts):
        raise RedisUrlError("no host given" if not netloc else "an empty host in the host list")
    if len(parts) > 1 and not many:
        raise RedisUrlError("several hosts need redis+sentinel:// or redis+cluster://")
    hosts = []
    for part in parts:
        match = _HOST.fullmatch(part)
        if not match:
            raise RedisUrlError(f"bad host {part!r}")
        host, port = match.group(1).strip("[]"), match.group(2)
        hosts.append((host, default_port if port is None else _port(port, f"host {host!r}")))
    return tuple(hosts)


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 10_000:
        raise RedisUrlError(f"bad database number {text!r}")
    return int(text)


def _flag(name: str, text: str) -> bool:
    if text.lower() in _TRUE:
        return True
    if text.lower() in _FALSE:
        return False
    raise RedisUrlError(f"{name} must be true or false, not {text!r}")


def parse_redis_url(url: str) -> RedisTarget:
    """Raises ``RedisUrlError`` (one line, no secret) for anything it cannot use."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        known = ", ".join(f"{name}://" for name in _SCHEMES)
        shown = scheme if sep and len(scheme) <= 32 else "(none)"
        raise RedisUrlError(f"unknown scheme {shown!r}; use one of {known}")
    topology, tls = _SCHEMES[scheme.lower()]
    # urlsplit would choke on a host list; take the credentials off by hand.
    head, _, query = rest.partition("?")
    netloc, slash, path = head.partition("/")
    userinfo, at, hostpart = netloc.rpartition("@")
    if not at:
        userinfo, hostpart = "", netloc
    user, colon, password = userinfo.partition(":")
    username = unquote(user) or None
    secret = unquote(password) if colon and password else None
    params: dict[str, str] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in _PARAMS:
            raise RedisUrlError(f"unknown parameter {name!r}")
        params[name] = values[-1]
    if "tls" in params:
        tls = _flag("tls", params["tls"]) or tls
    common = _Auth(username, secret, tls)
    if scheme.lower() == "unix":
        socket_path = "/" + path if slash else ""
        if hostpart or not path:
            raise RedisUrlError("unix:// needs an absolute socket path (unix:///run/redis.sock)")
        if tls:
            raise RedisUrlError("TLS does not apply to a unix socket")
        db = _db(params.get("db", "0"))
        return common.target("single", path=unquote(urlsplit(socket_path).path), db=db)
    sentinel_params = {"sentinel_username", "sentinel_password"} & set(params)
    if sentinel_params and topology != "sentinel":
        raise RedisUrlError(f"{sorted(sentinel_params)[0]} applies to redis+sentinel:// only")
    segments = [unquote(s) for s in path.split("/")] if path else []
    if segments and segments[-1] == "":
        segments.pop()  # a trailing slash
    if topology == "single":
        hosts = _hosts(hostpart, DEFAULT_PORT, many=False)
        if len(segments) > 1:
            raise RedisUrlError("the path may only be a database number")
        db = _db(segments[0]) if segments else _db(params.get("db", "0"))
        return common.target("single", hosts=hosts, db=db)
    if topology == "cluster":
        hosts = _hosts(hostpart, DEFAULT_PORT, many=True)
        if any(s not in ("", "0") for s in segments) or params.get("db", "0") != "0":
            raise RedisUrlError("a Cluster has only database 0")
        return common.target("cluster", hosts=hosts)
    hosts = _hosts(hostpart, DEFAULT_SENTINEL_PORT, many=True)
    if not segments or not segments[0]:
        raise RedisUrlError("no service name (redis+sentinel://host:26379/SERVICE)")
    if not _SERVICE.fullmatch(segments[0]) or len(segments) > 2:
        raise RedisUrlError("the path must be /SERVICE or /SERVICE/DB")
    db = _db(segments[1]) if len(segments) == 2 else _db(params.get("db", "0"))
    return common.target(
        "sentinel",
        hosts=hosts,
        service=segments[0],
        db=db,
        sentinel_username=params.get("sentinel_username") or None,
        sentinel_password=params.get("sentinel_password") or None,
    )


def mask_url(url: str) -> str:
    """``url`` fit to print: parsed and masked, or, when it cannot be parsed, its scheme only."""
    try:
        return parse_redis_url(url).masked
    except RedisUrlError:
        scheme, sep, _ = url.partition("://")
        return f"{scheme}://***" if sep else "***"


def mask_secrets(text: str, url: str | None) -> str:
    """``text`` (a driver's error, a log line) with every password of ``url`` blanked out."""
    if not url:
        return text
    try:
        target = parse_redis_url(url)
    except RedisUrlError:
        return text
    for secret in (target.password, target.sentinel_password):
        if secret:
            text = text.replace(secret, "***")
    return text


def ca_file_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a CA bundle (missing, unreadable, no PEM certificate in
    it), in one line; None when it loads. Checked at start, so that a bad file is named as such
    rather than surfacing later as a connection error that looks like an outage."""
    try:
        ssl.create_default_context(cafile=str(path))
    except FileNotFoundError:
        return f"no such file {str(path)!r}"
    except IsADirectoryError:
        return f"{str(path)!r} is a directory, not a PEM file"
    except PermissionError:
        return f"{str(path)!r} is not readable"
    except (ssl.SSLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", None) or str(error)
        return f"{str(path)!r} holds no usable PEM certificate ({reason})"
    return None
