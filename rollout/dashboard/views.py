"""``GET /`` and ``GET /flags/<key>`` serve the page; ``/assets/...`` its scripts and styles.

Every response of this blueprint carries a Content-Security-Policy that allows nothing but the
app's own origin: no inline script, no ``eval``, no inline style, no CDN. The page is built
with DOM calls and ``textContent`` only, so the policy costs it nothing, and a description such
as ``<img src=x onerror=...>`` can never run even if a rendering bug slipped through.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"

CSP = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)

bp = Blueprint(
    "dashboard",
    __name__,
    static_folder=str(STATIC),
    static_url_path="/assets",
)


def _page() -> Response:
    # One shell for every page: the script reads the path and draws the list or a flag. An
    # unknown flag is the script's business ("Flag not found"), so the shell is always 200.
    return send_from_directory(HERE, "page.html", mimetype="text/html", max_age=0)


@bp.get("/")
def index() -> Response:
    return _page()


@bp.get("/flags/<path:key>")
def flag_page(key: str) -> Response:
    return _page()


@bp.get("/favicon.ico")
def favicon() -> Response:
    return send_from_directory(STATIC, "favicon.svg", mimetype="image/svg+xml")


@bp.after_request
def _guard(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
