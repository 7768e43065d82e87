"""TLS with Sentinel and Cluster, on real TLS-only servers behind an ACL user.

The groups (``tls_sentinel_group``, ``tls_cluster`` in ``tests/fixtures_redis.py``) run Debian's
TLS-built redis-server with ``port 0``: a plain-text connection has nowhere to go, so every
call that succeeds here went over TLS, to the sentinels, the data nodes and the Cluster nodes
the client found by itself (the URL names two seeds of the three masters). The tests go
through our own code only: ``client_for_url``, the store, the change feed, the wiring from
``ROLLOUT_*`` settings, the SDK and the CLI. Skipped, saying why, without the TLS binary.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rollout.cli.main import cli
from rollout.core.errors import ConcurrentUpdate, StorageError, ValidationError
from rollout.core.model import Flag, new_flag
from rollout.sdk.client import RolloutClient
from rollout.settings import load_settings
from rollout.storage.connection import client_for_url
from rollout.storage.feed import Change, ChangeFeed
from rollout.storage.flags import AuditEntry, FlagStore
from rollout.storage.keys import Keys
from rollout.wiring import build_services
from tests.cli.conftest import assert_one_line_error
from tests.fixtures_redis import TLS_PASSWORD, TLS_USER
from tests.support import wait_for
from tests.tls_servers import Tls, make_certs

KEYS = Keys("rollout")  # the default prefix: the SDK and the CLI read it from their settings


@pytest.fixture(params=["sentinel", "cluster"])
def group(request: pytest.FixtureRequest) -> Any:
    found = request.getfixturevalue(
        "tls_sentinel_group" if request.param == "sentinel" else "tls_cluster"
    )
    found.flush()
    return found


@pytest.fixture
def client(group: Any, tls_files: Tls) -> Iterator[Any]:
    made = client_for_url(group.url, ca_file=tls_files.ca, socket_timeout=2.0)
    yield made
    made.close()


def one_flag_per_master(group: Any) -> list[str]:
    """Flag names whose slots lie on every master in turn (one name on a Sentinel group), so
    the writes reach the Cluster nodes that only discovery could have found."""
    masters = getattr(group, "masters", 0)
    if not masters:
        return ["F"]
    names: dict[int, str] = {}
    for number in range(10_000):
        name = f"F{number}"
        names.setdefault(group.nodes.index(group.master_of(KEYS.flag(name))), name)
        if len(names) == masters:
            return [names[index] for index in sorted(names)]
    raise AssertionError("no flag name for some master")


def entry(action: str) -> AuditEntry:
    return AuditEntry(actor="tls-test", action=action, reason=None, at=1000)


def create(store: FlagStore, name: str) -> Flag:
    stored = store.write(
        new_flag(name, 1000), key=name, expected_version=0, audit=entry("create"), before=None
    )
    assert stored is not None
    return stored


def test_the_client_is_the_acl_user_over_tls_on_every_node(client: Any, group: Any) -> None:
    assert client.acl_whoami() == TLS_USER
    if hasattr(group, "masters"):  # every node of the slot map came from discovery, over TLS
        nodes = {(node.host, node.port) for node in client.get_nodes()}
        assert nodes == {("127.0.0.1", node.port) for node in group.nodes}
        assert client.execute_command("PING", target_nodes=client.ALL_NODES) is True


def test_writes_compare_and_set_audit_once_and_announce_over_tls(client: Any, group: Any) -> None:
    store = FlagStore(client, KEYS)
    feed = ChangeFeed(client, KEYS)
    feed.subscribe()
    try:
        names = one_flag_per_master(group)
        for name in names:
            created = create(store, name)
            assert created.version == 1
            changed = created.with_changes(description="over TLS")
            updated = store.write(
                changed, key=name, expected_version=1, audit=entry("update"), before=created
            )
            assert updated is not None and updated.version == 2
            with pytest.raises(ConcurrentUpdate):  # a write that read version 1 lost the race
                store.write(
                    changed, key=name, expected_version=1, audit=entry("update"), before=created
                )
            stored = store.get(name)
            assert (stored.version, stored.description) == (2, "over TLS")
            assert [(e["version"], e["action"]) for e in store.audit(name)] == [
                (2, "update"),
                (1, "create"),
            ]
        # Every change message reaches the subscriber (on a Cluster, from every master's
        # script across the TLS cluster bus to whichever node the subscription sits on).
        heard: set[tuple[str, int]] = set()
        wanted = {(name, version) for name in names for version in (1, 2)}

        def all_heard() -> bool:
            change = feed.next_change(timeout=0.2)
            if isinstance(change, Change):
                heard.add((change.key, change.version))
            return wanted <= heard

        assert wait_for(all_heard), f"heard {sorted(heard)} of {sorted(wanted)}"
        assert store.keys_list() == sorted(names)
    finally:
        feed.close()


def test_the_wiring_and_an_sdk_serve_over_tls_from_the_settings(
    group: Any, tls_files: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ROLLOUT_REDIS_URL and ROLLOUT_REDIS_CA_FILE, as an operator sets them: the services
    write, the SDK syncs, answers, hears a kill on the channel and flushes its metrics."""
    monkeypatch.setenv("ROLLOUT_REDIS_URL", group.url)
    monkeypatch.setenv("ROLLOUT_REDIS_CA_FILE", str(tls_files.ca))
    services = build_services(load_settings(), start_embedded=False)
    sdk = None
    try:
        services.flags.create("ON", actor="t", stages=[{"percent": 100}])
        serving = services.flags.advance("ON", actor="t")
        sdk = RolloutClient(environ={}, resync_interval=300, flush_interval=60)
        assert sdk.wait_synced(15), "the SDK never synced over TLS"
        assert sdk.connected and sdk.known_flag("ON") == serving
        handle = sdk.flag("ON")
        assert all(handle.is_enabled(f"user-{i}") for i in range(50))
        for i in range(20):
            handle.record(f"user-{i}", ok=True, duration_ms=5)
        sdk.flush()
        evidence = services.gates.evidence(services.flags.get("ON"))
        assert evidence.stage.treatment.samples == 20
        killed = services.flags.kill("ON", reason="over TLS", actor="oncall")
        # Not the resync (300 s away): the change channel, over TLS.
        assert wait_for(lambda: not handle.is_enabled("user-1")), "the kill never reached the SDK"
        assert sdk.known_flag("ON") is not None
        assert sdk.known_flag("ON").version == killed.version  # type: ignore[union-attr]
    finally:
        if sdk is not None:
            sdk.close()
        services.close()


@pytest.fixture(scope="module")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory, tls_files: Tls) -> Path:
    """A CA that signed nothing the servers present: a valid PEM file, the wrong one."""
    return make_certs(tmp_path_factory.mktemp("wrong-ca")).ca


def test_a_wrong_ca_file_is_one_clear_line(
    group: Any, wrong_ca: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Said in one line naming the cause, and at once: a certificate that does not verify
    will not verify on a retry, so no retry is spent on it. (The servers do not count failed
    handshakes, so the client's are counted, at the ssl module, which is left to work.)"""
    handshakes = {"count": 0}
    wrap_socket = ssl.SSLContext.wrap_socket

    def counted(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
        handshakes["count"] += 1
        return wrap_socket(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "wrap_socket", counted)
    with pytest.raises(StorageError) as caught:  # a Cluster client fails at once, reading
        client = client_for_url(group.url, ca_file=wrong_ca, socket_timeout=1.0)  # the slots
        try:
            FlagStore(client, KEYS).ping()  # a Sentinel one at its first call
        finally:
            client.close()
    monkeypatch.undo()
    text = str(caught.value)
    assert "\n" not in text and TLS_PASSWORD not in text
    assert "CERTIFICATE_VERIFY_FAILED" in text and "ROLLOUT_REDIS_CA_FILE" in text, text
    assert "network:ConnectionError" not in text  # redis-py's reprs say nothing of the cause
    # Each sentinel (each Cluster seed) tried once: the failover retries would try 17 times.
    seeds = len(group.sentinels) if hasattr(group, "sentinels") else len(group.nodes[:2])
    assert 0 < handshakes["count"] <= seeds, handshakes


def test_the_cli_names_a_wrong_or_missing_ca_file_in_one_line(
    group: Any, wrong_ca: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"ROLLOUT_REDIS_URL": group.url, "ROLLOUT_REDIS_CA_FILE": str(wrong_ca)}
    line = assert_one_line_error(runner.invoke(cli, ["list"], env=env), 1)
    assert "storage unavailable" in line and "certificate verify failed" in line, line
    assert TLS_PASSWORD not in line
    env["ROLLOUT_REDIS_CA_FILE"] = str(tmp_path / "absent.pem")
    line = assert_one_line_error(runner.invoke(cli, ["list"], env=env), 2)
    assert "invalid setting ROLLOUT_REDIS_CA_FILE: no such file" in line, line  # at start
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    env["ROLLOUT_REDIS_CA_FILE"] = str(tmp_path / "junk.pem")
    line = assert_one_line_error(runner.invoke(cli, ["list"], env=env), 2)
    assert "invalid setting ROLLOUT_REDIS_CA_FILE: " in line, line
    assert "holds no usable PEM certificate" in line, line


def test_a_bad_ca_file_given_to_the_client_is_refused_before_connecting(
    group: Any, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError) as caught:
        client_for_url(group.url, ca_file=tmp_path / "absent.pem")
    assert "ROLLOUT_REDIS_CA_FILE" in str(caught.value) and "no such file" in str(caught.value)
