"""The rollout report: plan, timeline (audit), stage summaries, totals and each Go/No-Go.

``GET /api/v1/flags/{key}/report`` returns it as JSON; ``rollout report`` renders it as
Markdown or as one self-contained HTML file (with the history's charts, ``with_history``).
"""

from __future__ import annotations

from typing import Any

from rollout.core import report
from rollout.core.model import Flag
from rollout.core.schema import flag_to_dict
from rollout.core.transitions import serving
from rollout.core.units import render_instant, to_ms
from rollout.services.flags import FlagService
from rollout.services.gates import GateService
from rollout.services.history import HistoryService
from rollout.services.summaries import SummaryService, summarize

TIMELINE_MAX = 10_000  # the audit stream keeps about as many per flag


def _timeline(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Audit entries oldest first, each with the state and percent it left the flag in."""
    out = []
    for entry in reversed(entries):
        after = entry.get("after") or {}
        out.append(
            {
                "at": entry["at"],
                "actor": entry["actor"],
                "action": entry["action"],
                "reason": entry["reason"],
                "version": entry["version"],
                "state": after.get("state"),
                "percent": after.get("percent"),
            }
        )
    return out


def _plan(flag: Flag) -> dict[str, Any]:
    doc = flag_to_dict(flag)
    keep = ("description", "state", "percent", "stage", "stages", "gates", "auto_advance")
    return {name: doc[name] for name in keep}


class ReportService:
    def __init__(
        self,
        flags: FlagService,
        gates: GateService,
        summaries: SummaryService,
        history: HistoryService,
    ) -> None:
        self.flags = flags
        self.gates = gates
        self.summaries = summaries
        self.history = history

    def report(self, key: str, *, with_history: bool = False) -> dict[str, Any]:
        flag = self.flags.get(key)
        self.summaries.drain()  # this process's last move may still be summarizing
        stored = self.summaries.of(flag.key)
        current = None
        if serving(flag) and flag.stage_started_at is not None:
            current = summarize(flag, self.gates.evidence(flag), None)
        stages = [*stored, *([current] if current is not None else [])]
        body: dict[str, Any] = {
            "flag": flag.key,
            "generated_at": render_instant(to_ms(self.gates.clock())),
            "created_at": render_instant(flag.created_at),
            "plan": _plan(flag),
            "timeline": _timeline(self.flags.audit(flag.key, TIMELINE_MAX)),
            "summaries": stored,
            "current": current,
            "totals": report.totals(stages),
            "trends": report.trends(stages),
            "decisions": report.decisions(stored),
        }
        if with_history:
            since = render_instant(flag.created_at) if flag.created_at is not None else None
            body["history"] = self.history.metrics_of(flag, since=since)
        return body
