"""The dashboard's server side: the page shell and assets, whoami, legal moves, trends, and the
conditional reads (ETag / If-None-Match) its polling rests on. The page itself is tested in a
real browser (tests/browser)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from rollout.core.units import parse_instant
from rollout.services.container import Services
from rollout.storage.metrics import Batch
from tests.api.conftest import ADMIN, READ, create, error_of
from tests.support import FakeClock

DASHBOARD = Path(__file__).resolve().parents[2] / "rollout" / "dashboard"
STAGES = [{"percent": 10, "bake": "1h"}, {"percent": 50}, {"percent": 100}]


# -- the shell and its assets --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/flags/PROMPT_IMPROVER_ENABLED", "/flags/NOPE"])
def test_every_page_path_serves_the_shell_without_a_token(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert b'<main id="main">' in response.data
    assert "Set-Cookie" not in response.headers  # bearer tokens only: nothing to forge


@pytest.mark.parametrize(
    "asset",
    [
        "/assets/js/main.js",
        "/assets/app.css",
        "/assets/vendor/uPlot.iife.min.js",
        "/assets/vendor/uPlot.min.css",
        "/favicon.ico",
    ],
)
def test_assets_are_served_by_the_app_under_the_policy(client: FlaskClient, asset: str) -> None:
    response = client.get(asset)
    assert response.status_code == 200, asset
    assert response.data
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_an_unknown_asset_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/assets/js/nope.js")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


class _Shell(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inline: list[str] = []
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "style":
            self.inline.append("<style>")
        if tag == "script" and not named.get("src"):
            self.inline.append("<script> without src")
        for name, value in attrs:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}=")
            if name in ("src", "href") and value:
                self.urls.append(value)


def test_the_shell_has_no_inline_script_or_style_and_only_local_urls() -> None:
    shell = _Shell()
    shell.feed((DASHBOARD / "page.html").read_text())
    assert shell.inline == []  # the CSP would block them, and the page would break
    assert shell.urls and all(
        url.startswith("/") and not url.startswith("//") for url in shell.urls
    )


def test_the_scripts_never_write_markup_or_evaluate_text() -> None:
    scripts = sorted((DASHBOARD / "static" / "js").glob("*.js"))
    assert scripts
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setAttribute\(\s*[\"']style|https?://|localStorage|document\.cookie"
    )
    for script in scripts:
        found = forbidden.findall(script.read_text())
        assert found == [], f"{script.name}: {found}"


# -- whoami --------------------------------------------------------------------------------


def test_whoami_names_the_token_and_its_role(client: FlaskClient) -> None:
    assert client.get("/api/v1/whoami", headers=ADMIN).get_json() == {
        "name": "alice",
        "role": "admin",
    }
    assert client.get("/api/v1/whoami", headers=READ).get_json() == {"name": "bob", "role": "read"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer not-a-token-0123456789"}, {"Authorization": "x"}]
)
def test_whoami_refuses_a_missing_or_unknown_token(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/whoami", headers=headers)
    assert response.status_code == 401
    error = error_of(response)
    assert error["code"] == "unauthorized"
    assert "not-a-token" not in error["message"]  # a token is never echoed


# -- legal moves ---------------------------------------------------------------------------


def test_moves_of_a_draft_and_of_a_killed_flag(client: FlaskClient) -> None:
    create(client, stages=STAGES)
    draft = client.get("/api/v1/flags/F/moves", headers=READ).get_json()
    assert draft["key"] == "F"
    moves = draft["moves"]
    assert moves["advance"] is None and moves["kill"] is None and moves["set"] is None
    assert "draft already" in moves["rollback"]
    assert "only a rolling flag pauses" in moves["pause"]
    assert "not killed" in moves["revive"]

    client.post("/api/v1/flags/F/advance", headers=ADMIN)
    client.post("/api/v1/flags/F/kill", json={"reason": "drill"}, headers=ADMIN)
    killed = client.get("/api/v1/flags/F/moves", headers=ADMIN).get_json()["moves"]
    assert killed["revive"] is None
    assert "already killed" in killed["kill"]
    for move in ("advance", "rollback", "set"):
        assert "revive it first" in killed[move], move


def test_moves_of_an_unknown_flag_is_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/flags/NOPE/moves", headers=READ)
    assert response.status_code == 404
    assert error_of(response)["code"] == "flag_not_found"


# -- conditional reads ---------------------------------------------------------------------


def test_the_list_answers_304_until_a_flag_or_a_status_word_changes(
    client: FlaskClient, services: Services
) -> None:
    create(client, stages=STAGES)
    first = client.get("/api/v1/flags", headers=READ)
    etag = first.headers["ETag"]
    again = client.get("/api/v1/flags", headers={**READ, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""

    services.flags.record_status("F", "hold", "error_rate 6% over 812 samples")
    worded = client.get("/api/v1/flags", headers={**READ, "If-None-Match": etag})
    assert worded.status_code == 200
    assert worded.get_json()["flags"][0]["status"]["decision"] == "hold"

    etag = worded.headers["ETag"]
    client.post("/api/v1/flags/F/advance", headers=ADMIN)
    moved = client.get("/api/v1/flags", headers={**READ, "If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.headers["ETag"] != etag


def test_a_flag_answers_304_while_its_version_stands(client: FlaskClient) -> None:
    created = create(client, stages=STAGES)
    etag = f'"{created["version"]}"'
    unchanged = client.get("/api/v1/flags/F", headers={**READ, "If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.headers["ETag"] == etag
    client.post("/api/v1/flags/F/advance", headers=ADMIN)
    moved = client.get("/api/v1/flags/F", headers={**READ, "If-None-Match": etag})
    assert moved.status_code == 200
    assert moved.get_json()["state"] == "rolling"


# -- trends --------------------------------------------------------------------------------


def _flush(services: Services, key: str, at: float, samples: int, errors: int) -> None:
    flag = services.flags.get(key)
    batch = Batch()
    tally = batch.tally(key, flag.stage_started_at or 0, "treatment")
    tally.samples, tally.errors = samples, errors
    tally.latency = {40: samples}
    services.gates.metrics.flush(batch, now=at, process="p")


def test_trends_give_every_flag_on_one_axis_in_one_call(
    client: FlaskClient, services: Services, clock: FakeClock
) -> None:
    create(client, "A", stages=STAGES)
    create(client, "B", stages=STAGES)
    client.post("/api/v1/flags/A/advance", headers=ADMIN)
    start = clock.now
    _flush(services, "A", start + 1, 100, 5)
    _flush(services, "A", start + 301, 200, 2)
    clock.advance(400)

    body = client.get("/api/v1/trends", headers=READ).get_json()
    assert body["step"] == 300
    axis = [parse_instant(at, "at") for at in body["at"]]
    assert axis == sorted(axis) and len(axis) == 2 * 3600 // 300 + 1
    assert set(body["flags"]) == {"A", "B"}
    a = body["flags"]["A"]
    assert len(a["samples"]) == len(a["error_rate"]) == len(axis)
    seen = [(n, r) for n, r in zip(a["samples"], a["error_rate"], strict=True) if n]
    assert seen == [(100, 0.05), (200, 0.01)]
    # The step of each flush holds it: the axis is the rollups' own.
    index = a["samples"].index(100)
    assert axis[index] is not None and axis[index] <= (start + 1) * 1000 < axis[index] + 300_000
    b = body["flags"]["B"]  # a draft: nothing served, nothing to draw
    assert set(b["samples"]) == {0} and set(b["error_rate"]) == {None}


def test_trends_need_a_token(client: FlaskClient) -> None:
    assert client.get("/api/v1/trends").status_code == 401


def test_the_shell_preloads_every_module_it_ships() -> None:
    shell = _Shell()
    shell.feed((DASHBOARD / "page.html").read_text())
    modules = {p.name for p in (DASHBOARD / "static" / "js").glob("*.js")}
    listed = {u.rsplit("/", 1)[1] for u in shell.urls if u.startswith("/assets/js/")}
    assert listed == modules
