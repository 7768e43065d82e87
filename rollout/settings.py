"""Every setting, read from ``ROLLOUT_*`` variables (and ``.env``), each with its meaning.

An invalid value stops the process at start with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from rollout.core import defaults
from rollout.core.errors import ValidationError as RolloutValidationError
from rollout.core.redis_url import ca_file_problem, parse_redis_url

_TOKEN_PAIR = re.compile(r"^([A-Za-z0-9_.@-]{1,64}):(\S{16,512})$")


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "rollout"


def parse_tokens(value: object) -> dict[str, str]:
    """``name:token,name:token`` -> {token: name}; several per role so tokens can rotate."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, str):
        raise ValueError("must be a comma-separated list of name:token pairs")
    tokens: dict[str, str] = {}
    for position, raw in enumerate(filter(None, (p.strip() for p in value.split(","))), 1):
        match = _TOKEN_PAIR.fullmatch(raw)
        if not match:
            # Never echo the entry: without its colon, all of it may be the secret.
            raise ValueError(
                f"entry {position} is not name:token "
                "(name of letters, digits, _.@-; token of 16+ non-space characters)"
            )
        tokens[match.group(2)] = match.group(1)
    return tokens


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ROLLOUT_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    redis_url: str | None = Field(
        None,
        description="URL of the Redis that holds the state: redis://, rediss://, unix://, "
        "redis+sentinel://[user:pass@]host:port[,...]/SERVICE[/DB] or "
        "redis+cluster://[user:pass@]host:port[,...]; TLS with rediss[+...]:// or ?tls=true. "
        "Unset: the embedded redis-server under data_dir.",
    )
    redis_ca_file: Path | None = Field(
        None, description="CA bundle (PEM) that verifies the Redis servers' TLS certificates."
    )
    write_replicas: int | None = Field(
        None,
        ge=0,
        le=16,
        description="Replicas that must hold a flag write before it is acknowledged (WAIT). "
        "Unset: 1 when the master reports a connected replica, else 0.",
    )
    write_replicas_timeout: float = Field(
        defaults.WRITE_REPLICAS_TIMEOUT,
        gt=0,
        le=60,
        description="Seconds a write waits for its replicas; past that it stands, reported as "
        "not yet replicated.",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the embedded server keeps its files, and serve its admin token.",
    )
    key_prefix: str = Field(defaults.KEY_PREFIX, description="Prefix of every Redis key.")
    socket_timeout: float = Field(
        defaults.SOCKET_TIMEOUT,
        gt=0,
        le=60,
        description="Seconds before a Redis call gives up (not used by is_enabled).",
    )
    resync_interval: float = Field(
        defaults.RESYNC_INTERVAL,
        gt=0,
        le=3600,
        description="SDK and API read cache: seconds between full resyncs from Redis.",
    )
    bootstrap_file: Path | None = Field(
        None,
        description="SDK: file written after each sync and read at start when Redis is down.",
    )
    admin_tokens: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="API: comma-separated name:token pairs that may read and write.",
    )
    read_tokens: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="API: comma-separated name:token pairs that may read."
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (),
        description="API: comma-separated origins (https://app.example.com) whose browser "
        "pages may call /ofrep/; '*' for any. Default: none.",
    )
    flush_interval: float = Field(
        defaults.FLUSH_INTERVAL,
        gt=0,
        le=60,
        description="SDK: seconds between metric flushes to Redis.",
    )
    metrics_buffer: int = Field(
        defaults.METRICS_BUFFER,
        gt=0,
        description="SDK: replaced flag values whose unsent outcome counts are kept while Redis "
        "is away; past that the oldest are dropped and counted.",
    )
    metrics_retention: float = Field(
        defaults.METRICS_RETENTION,
        ge=60,
        description="Seconds metric windows live in Redis before expiring.",
    )
    history_retention: float = Field(
        defaults.HISTORY_RETENTION,
        ge=3600,
        description="Seconds the 5-minute history rollups (the charts) live in Redis.",
    )
    controller_interval: float = Field(
        defaults.CONTROLLER_INTERVAL,
        gt=0,
        le=3600,
        description="Controller: seconds between ticks.",
    )
    leader_ttl: float = Field(
        defaults.LEADER_TTL,
        gt=0,
        le=600,
        description="Controller: seconds the leader lock lives unless renewed.",
    )
    watch_period: float = Field(
        defaults.WATCH_PERIOD,
        ge=0,
        description="Controller: seconds a complete flag stays armed for kills.",
    )

    public_url: str | None = Field(
        None,
        description="The address operators reach rollout at (https://rollout.example.com): "
        "prefixes trigger URLs and the flag links in notifications.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value.strip()):
            raise ValueError("must be an http:// or https:// address without query or fragment")
        return value.strip().rstrip("/")

    @field_validator("admin_tokens", "read_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: Any) -> dict[str, str]:
        return parse_tokens(value)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list | tuple):
            raise ValueError("must be a comma-separated list of origins")
        origins = tuple(str(o).strip().rstrip("/") for o in value if str(o).strip())
        for origin in origins:
            if origin != "*" and not re.fullmatch(r"https?://[^\s/]+", origin):
                raise ValueError("each origin is scheme://host[:port], or '*'")
        return origins

    @field_validator("redis_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            return None
        if value is not None:
            parse_redis_url(value)  # RedisUrlError is a ValueError: one line, no secret
        return value

    @field_validator("redis_ca_file", mode="before")
    @classmethod
    def _ca_file_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("redis_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and (problem := ca_file_problem(value)) is not None:
            raise ValueError(problem)
        return value

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(defaults.KEY_PREFIX_PATTERN, value):
            raise ValueError("must be 1-64 of letters, digits and _ . : -")
        return value


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with explicit overrides; one clear line on error."""
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "?"
        variable = f"ROLLOUT_{name.upper()}"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise RolloutValidationError(f"invalid setting {variable}: {message}") from None
    except SettingsError as error:
        raise RolloutValidationError(f"invalid setting: {error}") from None
