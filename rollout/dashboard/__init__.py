"""The operator dashboard: one HTML shell and its static assets, nothing else.

The views here read no flag and hold no token: the page is the same for every visitor, and
every figure it shows comes from the JSON API, called by the browser with the operator's bearer
token. That keeps the dashboard as thin as an adapter can be (DESIGN §1) and means a page view
needs no Redis at all.
"""

from rollout.dashboard.views import bp

__all__ = ["bp"]
