"""The rollout report as one self-contained HTML file: inline styles, inline SVG charts drawn
here, no script and no reference to anything outside the file, so it opens offline and can be
attached to a review as is. Every text from the flag or the audit is escaped.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

from rollout.cli.report_md import (
    ARMS,
    gates_table,
    loads_table,
    ms,
    pct,
    plan_table,
    stages_table,
    timeline_table,
    where,
)

COLORS = {"treatment": "#d9480f", "control": "#1c7ed6"}
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 760, 220, 64, 16, 24, 36

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;
max-width:1000px;color:#212529;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;margin:.5rem 0;font-size:13px}
th,td{border:1px solid #dee2e6;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f1f3f5}.go{color:#2b8a3e;font-weight:600}.no-go{color:#c92a2a;font-weight:600}
.manual{color:#5f3dc4;font-weight:600}.muted{color:#868e96}svg{background:#fff}
.legend span{display:inline-block;margin-right:1rem}
"""


def _seconds(instant: str | None) -> float | None:
    if not instant:
        return None
    return datetime.fromisoformat(instant.replace("Z", "+00:00")).timestamp()


def _e(text: object) -> str:
    return escape("" if text is None else str(text))


def line_chart(
    title: str,
    lines: Mapping[str, Sequence[tuple[float, float | None]]],
    *,
    fmt: Any,
    marks: Sequence[float] = (),
    thresholds: Sequence[tuple[float, str]] = (),
) -> str:
    """An SVG line chart: one polyline per arm, dashed vertical lines at the stage boundaries,
    dotted horizontal ones at the thresholds."""
    xs = [x for points in lines.values() for x, _y in points]
    ys = [y for points in lines.values() for _x, y in points if y is not None]
    ys += [value for value, _label in thresholds]
    if not xs or not ys:
        return f"<p class='muted'>{_e(title)}: no data yet.</p>"
    x0, x1 = min(xs), max(xs)
    y1 = max(ys) * 1.1 or 1.0
    span = (x1 - x0) or 1.0
    inner_w, inner_h = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def px(x: float) -> float:
        return PAD_L + (x - x0) / span * inner_w

    def py(y: float) -> float:
        return PAD_T + inner_h - y / y1 * inner_h

    parts = [
        f"<svg width='{WIDTH}' height='{HEIGHT}' "
        f"viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-label='{_e(title)}'>",
        f"<text x='{PAD_L}' y='16' font-size='13' font-weight='600'>{_e(title)}</text>",
        f"<line x1='{PAD_L}' y1='{PAD_T + inner_h}' x2='{WIDTH - PAD_R}' y2='{PAD_T + inner_h}' "
        "stroke='#adb5bd'/>",
        f"<line x1='{PAD_L}' y1='{PAD_T}' x2='{PAD_L}' y2='{PAD_T + inner_h}' stroke='#adb5bd'/>",
    ]
    for value in (0.0, y1 / 2, y1):
        parts.append(
            f"<text x='{PAD_L - 6}' y='{py(value) + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{_e(fmt(value))}</text>"
        )
    for x, anchor in ((x0, "start"), (x1, "end")):
        label = datetime.fromtimestamp(x, UTC).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f"<text x='{px(x):.1f}' y='{HEIGHT - 12}' font-size='11' "
            f"text-anchor='{anchor}'>{label} UTC</text>"
        )
    for mark in marks:
        if x0 <= mark <= x1:
            parts.append(
                f"<line x1='{px(mark):.1f}' y1='{PAD_T}' x2='{px(mark):.1f}' "
                f"y2='{PAD_T + inner_h}' stroke='#868e96' stroke-dasharray='4 3'/>"
            )
    for value, label in thresholds:
        parts.append(
            f"<line x1='{PAD_L}' y1='{py(value):.1f}' x2='{WIDTH - PAD_R}' y2='{py(value):.1f}' "
            "stroke='#e03131' stroke-dasharray='1 3'/>"
            f"<text x='{WIDTH - PAD_R}' y='{py(value) - 3:.1f}' font-size='10' fill='#e03131' "
            f"text-anchor='end'>{_e(label)}</text>"
        )
    for arm, points in lines.items():
        # Steps without samples have no rate: the line joins the steps on either side.
        run = [f"{px(x):.1f},{py(y):.1f}" for x, y in points if y is not None]
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f"<circle cx='{cx}' cy='{cy}' r='2' fill='{COLORS[arm]}'/>")
        elif run:
            parts.append(
                f"<polyline fill='none' stroke='{COLORS[arm]}' stroke-width='1.5' "
                f"points='{' '.join(run)}'/>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _series(history: Mapping[str, Any], field: str) -> dict[str, list[tuple[float, float | None]]]:
    out: dict[str, list[tuple[float, float | None]]] = {}
    for arm in ARMS:
        points = []
        for p in history["series"][arm]:
            at = _seconds(p["at"])
            if at is not None:
                points.append((at, p[field] if p["samples"] else None))
        out[arm] = points
    return out


def charts(report: Mapping[str, Any]) -> str:
    history = report.get("history")
    if not history:
        return ""
    marks = [m for s in history["stages"] if (m := _seconds(s["started_at"])) is not None]
    gates = {g["metric"]: g for g in report["plan"]["gates"]}
    rate = gates.get("error_rate")
    limits = (
        []
        if rate is None
        else [
            (rate["warn"], f"warn {pct(rate['warn'])}"),
            (rate["critical"], f"critical {pct(rate['critical'])}"),
        ]
    )
    legend = "".join(
        f"<span><svg width='12' height='12'><rect width='12' height='12' fill='{COLORS[a]}'/>"
        f"</svg> {a}</span>"
        for a in ARMS
    )
    step = history["step"]
    return (
        f"<h2>Trends (step {step} s, since creation)</h2><p class='legend'>{legend}</p>"
        + line_chart(
            "Error rate per arm",
            _series(history, "error_rate"),
            fmt=pct,
            marks=marks,
            thresholds=limits,
        )
        + line_chart("p95 latency per arm", _series(history, "p95_ms"), fmt=ms, marks=marks)
        + line_chart(
            "Samples per step", _series(history, "samples"), fmt=lambda v: f"{v:.0f}", marks=marks
        )
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def render(report: Mapping[str, Any]) -> str:
    plan, totals = report["plan"], report["totals"]
    decisions = []
    for d in report["decisions"]:
        gates = "".join(
            f"<li><code>{_e(g['metric'])}</code> {_e(g['verdict'])}: {_e(g['why'])}</li>"
            for g in d["gates"]
        )
        if d["status"]:
            gates += f"<li>controller: {_e(d['status']['decision'])}: {_e(d['status']['why'])}</li>"
        reason = f" ({_e(d['reason'])})" if d["reason"] else ""
        decisions.append(
            f"<li><span class='{_e(d['verdict'])}'>{_e(d['verdict'].upper())}</span> at "
            f"{_e(d['percent'])}%: <code>{_e(d['move'])}</code> by {_e(d['by'])}{reason}, "
            f"{_e(d['at'])}; samples T {d['samples']['treatment']:,} / C "
            f"{d['samples']['control']:,}<ul>{gates}</ul></li>"
        )
    return "".join(
        [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>Rollout report: {_e(report['flag'])}</title><style>{STYLE}</style></head>",
            f"<body><h1>Rollout report: {_e(report['flag'])}</h1>",
            f"<p>Generated {_e(report['generated_at'])}. Now <b>{_e(where(plan))}</b>.</p>",
            f"<blockquote>{_e(plan['description'])}</blockquote>" if plan["description"] else "",
            "<h2>Plan</h2>",
            _table(*plan_table(plan)),
            _table(*gates_table(plan)) if plan["gates"] else "",
            f"<h2>Total loads: {totals['loads']:,}</h2>",
            "<p>Exposures plus <code>track</code> samples (not counted as exposures).</p>",
            _table(*loads_table(totals)),
            charts(report),
            "<h2>Stages: error rate and latency per arm</h2>",
            _table(*stages_table(report)),
            "<h2>Go / No-Go</h2>",
            f"<ul>{''.join(decisions)}</ul>" if decisions else "<p>No stage has ended yet.</p>",
            "<h2>Timeline</h2>",
            _table(*timeline_table(report)),
            "</body></html>\n",
        ]
    )
