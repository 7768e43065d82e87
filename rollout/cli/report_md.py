"""The rollout report as Markdown, made for pasting into an incident review (GitHub tables).

It answers what the weekly report asks: total loads, error-rate and latency trends per arm,
and each Go/No-Go with its evidence. Text from the flag or the audit is kept to one table cell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

ARMS = ("treatment", "control")


def pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.2f}%"


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} ms"


def interval(arm: Mapping[str, Any]) -> str:
    bounds = arm.get("error_rate_interval")
    if not bounds:
        return pct(arm.get("error_rate"))
    return f"{pct(arm['error_rate'])} [{pct(bounds['low'])}–{pct(bounds['high'])}]"


def cell(text: object) -> str:
    """Table cell text: a pipe or a line break would end the cell (or the table) early."""
    return " ".join(str("" if text is None else text).replace("|", "\\|").split())


def stage_rows(report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    current = report.get("current")
    return [*report["summaries"], *([current] if current else [])]


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def where(plan: Mapping[str, Any]) -> str:
    """The flag's standing: state, percent and, on a planned stage, which one."""
    text = f"{plan['state']} at {plan['percent']}%"
    if plan["stage"] is not None:
        text += f", stage {plan['stage'] + 1}/{len(plan['stages'])}"
    return text


Table = tuple[Sequence[str], list[Sequence[object]]]


def plan_table(plan: Mapping[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        (i + 1, s["percent"], s["bake"], s["min_samples"]) for i, s in enumerate(plan["stages"])
    ]
    return ["#", "percent", "bake (s)", "min samples"], rows


def gates_table(plan: Mapping[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        (g["metric"], g["warn"], g["critical"], g["min_samples"], g["window"])
        for g in plan["gates"]
    ]
    return ["gate", "warn", "critical", "min samples", "window (s)"], rows


def loads_table(totals: Mapping[str, Any]) -> Table:
    arms = totals["arms"]
    figures = ("loads", "exposures", "samples", "errors")
    rows: list[Sequence[object]] = [(a, *(f"{arms[a][f]:,}" for f in figures)) for a in ARMS]
    return ["arm", *figures], rows


STAGE_HEAD = (
    "stage", "started", "ended", "ended by", "by", "T samples", "T error rate [interval]",
    "C samples", "C error rate", "T p95", "C p95", "memory",
)  # fmt: skip


def stages_table(report: Mapping[str, Any]) -> Table:
    rows: list[Sequence[object]] = []
    for s in stage_rows(report):
        t, c = s["arms"]["treatment"], s["arms"]["control"]
        memory = "n/a" if s["memory_mb"] is None else f"{s['memory_mb']:.1f} MB"
        rows.append(
            (
                f"{s['percent']}%",
                s["started_at"],
                s["ended_at"] or "running",
                s["ended_by"] or "",
                s["by"] or "",
                f"{t['samples']:,}",
                interval(t),
                f"{c['samples']:,}",
                pct(c["error_rate"]),
                ms(t["p95_ms"]),
                ms(c["p95_ms"]),
                memory,
            )
        )
    return STAGE_HEAD, rows


def timeline_table(report: Mapping[str, Any]) -> Table:
    rows: list[Sequence[object]] = [
        (
            e["at"],
            e["actor"],
            e["action"],
            e["reason"] or "",
            e["state"] or "",
            "" if e["percent"] is None else e["percent"],
        )
        for e in report["timeline"]
    ]
    return ["at", "actor", "action", "reason", "state", "percent"], rows


def markdown(report: Mapping[str, Any]) -> str:
    plan, totals = report["plan"], report["totals"]
    out = [
        f"# Rollout report: {cell(report['flag'])}",
        "",
        f"Generated {report['generated_at']}. Now **{where(plan)}**.",
    ]
    if plan["description"]:
        out += ["", f"> {cell(plan['description'])}"]
    out += ["", "## Plan", "", *_table(*plan_table(plan))]
    if plan["gates"]:
        out += ["", *_table(*gates_table(plan))]
    out += [
        "",
        "## Total loads",
        "",
        f"**{totals['loads']:,}** loads (exposures plus `track` samples, which are not counted "
        "as exposures):",
        "",
        *_table(*loads_table(totals)),
        "",
        "## Stages: error rate and latency per arm",
        "",
        *_table(*stages_table(report)),
        "",
        "## Go / No-Go",
        "",
    ]
    if not report["decisions"]:
        out.append("No stage has ended yet.")
    for d in report["decisions"]:
        who = f"{cell(d['by'])}" + (f" ({cell(d['reason'])})" if d["reason"] else "")
        out.append(
            f"- **{d['verdict'].upper()}** at {d['percent']}%: `{d['move']}` by {who}, "
            f"{d['at']}; samples T {d['samples']['treatment']:,} / C "
            f"{d['samples']['control']:,}"
        )
        for g in d["gates"]:
            out.append(f"  - `{g['metric']}` {g['verdict']}: {cell(g['why'])}")
        if d["status"]:
            out.append(
                f"  - controller: {cell(d['status']['decision'])}: {cell(d['status']['why'])}"
            )
    out += ["", "## Timeline", "", *_table(*timeline_table(report))]
    return "\n".join(out) + "\n"
