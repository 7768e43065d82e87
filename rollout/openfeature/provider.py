"""``RolloutProvider``: the in-process SDK behind OpenFeature's API (DESIGN §6).

Every answer is the SDK's own evaluation (``RolloutClient.evaluate``), translated by
``core.openfeature``; the provider adds no rule. Boolean flags only: every other type answers
``TYPE_MISMATCH`` with the caller's default.

Events, from the client's ``on_change`` and ``on_connection`` hooks (sync thread):
``PROVIDER_CONFIGURATION_CHANGED`` with ``flags_changed`` when flags change,
``PROVIDER_STALE`` while Redis is unreachable (last-known values keep serving), and
``PROVIDER_READY`` when it answers again. ``PROVIDER_READY`` after ``initialize`` is the
OpenFeature SDK's own (openfeature-sdk 0.10 emits it when ``initialize`` returns).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode, ProviderFatalError
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata
from openfeature.track import TrackingEventDetails

from rollout.core.errors import RolloutError
from rollout.core.openfeature import PLACEHOLDER_USER, answer
from rollout.sdk.client import RolloutClient

log = logging.getLogger("rollout.openfeature")

NAME = "rollout"
INIT_TIMEOUT = 5.0
# After an initialize that found Redis down, PROVIDER_STALE waits for the SDK's PROVIDER_READY
# (dispatched by the thread that called initialize, once it returns) so that it is not undone.
_READY_GRACE = 1.0


class RolloutProvider(AbstractProvider):
    """An OpenFeature provider over a ``RolloutClient``.

    ``RolloutProvider(client)`` uses (and at shutdown closes) the given client;
    ``RolloutProvider(redis_url=..., **settings)`` builds one in ``initialize``, where a bad
    setting raises ``ProviderFatalError``. An unreachable Redis is never fatal: ``initialize``
    waits up to ``init_timeout`` seconds for the first sync, then returns, and the provider
    reports ``PROVIDER_STALE`` until Redis answers.
    """

    def __init__(
        self,
        client: RolloutClient | None = None,
        *,
        init_timeout: float = INIT_TIMEOUT,
        **client_options: Any,
    ) -> None:
        super().__init__()
        self._client = client
        self._builds_client = client is None  # then each initialize builds one from options
        self._options = client_options
        self._init_timeout = init_timeout
        self._lock = threading.Lock()
        self._stale = False
        self._closed = False
        self._unsubscribe: list[Callable[[], None]] = []

    @property
    def client(self) -> RolloutClient | None:
        return self._client

    def get_metadata(self) -> Metadata:
        return Metadata(name=NAME)

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        with self._lock:
            client = self._client
            if client is None:
                try:
                    client = RolloutClient(**self._options)
                except RolloutError as error:  # a setting that cannot work: retrying won't help
                    raise ProviderFatalError(str(error)) from None
                self._client = client
            self._closed = False
            if not self._unsubscribe:
                self._unsubscribe = [
                    client.on_change(self._flags_changed),
                    client.on_connection(self._connection_changed),
                ]
        client.wait_synced(self._init_timeout)
        if not client.connected:
            caller = threading.current_thread()
            threading.Thread(
                target=self._stale_after_ready,
                args=(caller,),
                name="rollout-openfeature-stale",
                daemon=True,
            ).start()

    def _stale_after_ready(self, caller: threading.Thread) -> None:
        caller.join(_READY_GRACE)  # returns as soon as an init thread has dispatched READY
        client = self._client
        if client is not None:
            self._connection_changed(client.connected)

    def shutdown(self) -> None:
        """Close the client (its last outcomes are flushed). Safe to call more than once."""
        with self._lock:
            unsubscribe, self._unsubscribe = self._unsubscribe, []
            client = None if self._closed else self._client
            self._closed = True
            if self._builds_client:  # a later initialize builds a fresh one
                self._client = None
        for remove in unsubscribe:
            remove()
        if client is not None:
            try:
                client.close()
            except Exception:
                log.exception("closing the rollout client failed")

    # -- events (sync thread) -----------------------------------------------------------

    def _flags_changed(self, keys: list[str]) -> None:
        self.emit_provider_configuration_changed(ProviderEventDetails(flags_changed=list(keys)))

    def _connection_changed(self, connected: bool) -> None:
        with self._lock:
            if self._stale == (not connected):
                return
            self._stale = not connected
        if connected:
            self.emit_provider_ready(ProviderEventDetails(message="Redis answers again"))
        else:
            self.emit_provider_stale(
                ProviderEventDetails(message="Redis unreachable; serving last-known flag values")
            )

    # -- resolving ----------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        client = self._client
        if client is None:
            return _error(default_value, ErrorCode.PROVIDER_NOT_READY, "not initialized")
        try:
            targeting_key = attributes = None
            if evaluation_context is not None:
                targeting_key = evaluation_context.targeting_key
                attributes = evaluation_context.attributes or None
            has_key = targeting_key is not None and targeting_key != ""
            user = str(targeting_key) if has_key else PLACEHOLDER_USER
            flag = client.known_flag(flag_key)
            evaluation = client.evaluate(
                flag_key, user, default=default_value, attributes=attributes
            )
            found = answer(flag_key, evaluation, flag, has_targeting_key=has_key)
        except Exception as error:  # never into the caller's code
            log.exception("rollout provider failed on flag %r", flag_key)
            return _error(default_value, ErrorCode.GENERAL, type(error).__name__)
        if found.error is not None:
            return _error(default_value, ErrorCode(found.error), found.message, found.metadata)
        return FlagResolutionDetails(
            value=found.value,
            variant=found.variant,
            reason=Reason(found.reason),
            flag_metadata=found.metadata,
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return _mismatch(flag_key, default_value)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return _mismatch(flag_key, default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return _mismatch(flag_key, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return _mismatch(flag_key, default_value)

    # -- tracking -----------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: EvaluationContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Business values (``value:NAME`` gates, DESIGN §4.1) feed on this: the event name is
        the value's name and ``details.value`` its value, observed (``FlagHandle.observe``) in
        the user's arm of every flag that gates on ``value:<event name>``. Without a targeting
        key or a value, or with no such gate, nothing is recorded. Never raises."""
        client = self._client
        if client is None or evaluation_context is None or tracking_event_details is None:
            return
        targeting_key = evaluation_context.targeting_key
        value = tracking_event_details.value
        if targeting_key is None or targeting_key == "" or value is None:
            return
        try:
            metric = f"value:{tracking_event_name}"
            attributes = evaluation_context.attributes or None
            for key, flag in client.known_flags().items():
                if any(gate.metric == metric for gate in flag.gates):
                    client.flag(key).observe(
                        str(targeting_key), tracking_event_name, value, attributes
                    )
        except Exception:  # never into the caller's code
            log.exception("rollout provider failed to track %r", tracking_event_name)


def _error(
    default: Any, code: ErrorCode, message: str, metadata: Mapping[str, Any] | None = None
) -> FlagResolutionDetails[Any]:
    return FlagResolutionDetails(
        value=default,
        error_code=code,
        error_message=message,
        reason=Reason.ERROR,
        flag_metadata=dict(metadata or {}),
    )


def _mismatch(key: str, default: Any) -> FlagResolutionDetails[Any]:
    return _error(default, ErrorCode.TYPE_MISMATCH, f"flag {key!r} is boolean")
