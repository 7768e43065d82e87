"""Human-readable text: tables and one-line descriptions. JSON output never comes from here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rollout.core.model import Flag, State
from rollout.core.units import format_duration, render_instant, render_percent

CHANGE_WIDTH = 60


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def percent(bp: int) -> str:
    return f"{render_percent(bp)}%"


def instant(ms: int | None) -> str:
    text = render_instant(ms)
    # Seconds are enough for people; JSON keeps the milliseconds.
    return "-" if text is None else text[:19] + "Z"


def stage_text(flag: Flag) -> str:
    if flag.stage is None:
        return "-"
    return f"{flag.stage + 1}/{len(flag.stages)}"


def describe(flag: Flag) -> str:
    """One line: where the flag stands after a command."""
    if flag.state is State.KILLED and flag.kill is not None:
        k = flag.kill
        return (
            f"{flag.key}: killed (was {k.state_before} at {percent(k.percent_before_bp)}) "
            f"by {k.by}: {k.reason}"
        )
    where = f" at {percent(flag.percent_bp)}" if flag.state is not State.DRAFT else " (0%)"
    stage = f", stage {stage_text(flag)}" if flag.stage is not None else ""
    return f"{flag.key}: {flag.state}{where}{stage}"


def status_text(flag: Flag) -> str:
    if flag.status is None:
        return "-"
    return f"{flag.status.decision}: {flag.status.why}" if flag.status.why else flag.status.decision


def flags_table(flags: Sequence[Flag]) -> str:
    rows = [
        (
            f.key,
            f.state,
            percent(f.percent_bp),
            stage_text(f),
            "yes" if f.auto_advance else "no",
            shorten(status_text(f)),
        )
        for f in flags
    ]
    return table(("KEY", "STATE", "PERCENT", "STAGE", "AUTO", "STATUS"), rows)


def flag_detail(flag: Flag) -> str:
    fields: list[tuple[str, str]] = [
        ("state", f"{flag.state} at {percent(flag.percent_bp)}"),
        ("stage", stage_text(flag)),
        ("description", flag.description or "-"),
        ("auto_advance", "yes" if flag.auto_advance else "no (waits for an operator's advance)"),
        ("stage_started_at", instant(flag.stage_started_at)),
        ("allow", ", ".join(flag.allow) or "-"),
        ("deny", ", ".join(flag.deny) or "-"),
        ("status", status_text(flag)),
        ("srm", f"{flag.srm} on a sample ratio mismatch"),
        ("salt", flag.salt),
        ("version", str(flag.version)),
        ("updated_at", instant(flag.updated_at)),
    ]
    if flag.kill is not None:
        k = flag.kill
        fields.append(
            (
                "kill",
                f"{k.reason} (by {k.by} at {instant(k.at)}; "
                f"was {k.state_before} at {percent(k.percent_before_bp)})",
            )
        )
    width = max(len(name) for name, _ in fields)
    lines = [flag.key] + [f"  {name.ljust(width)}  {value}" for name, value in fields]
    lines.append("stages:")
    if flag.stages:
        rows = [
            (
                ">" if i == flag.stage else "",
                i + 1,
                percent(s.percent_bp),
                format_duration(s.bake_ms),
                s.min_samples,
            )
            for i, s in enumerate(flag.stages)
        ]
        lines.append(indent(table(("", "#", "PERCENT", "BAKE", "MIN_SAMPLES"), rows)))
    else:
        lines.append("  none (moves only with set)")
    lines.append("gates:")
    if flag.gates:
        gate_rows = [
            (g.metric, g.warn, g.critical, g.min_samples, format_duration(g.window_ms))
            for g in flag.gates
        ]
        headers = ("METRIC", "WARN", "CRITICAL", "MIN_SAMPLES", "WINDOW")
        lines.append(indent(table(headers, gate_rows)))
    else:
        lines.append("  none")
    lines.append("rules:")
    if flag.rules:
        rule_rows = [
            (i + 1, r.attribute, r.op, shorten(value(list(r.values))), "on" if r.serve else "off")
            for i, r in enumerate(flag.rules)
        ]
        lines.append(indent(table(("#", "ATTRIBUTE", "OP", "VALUES", "SERVE"), rule_rows)))
    else:
        lines.append("  none")
    return "\n".join(lines)


def indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def shorten(text: str, width: int = CHANGE_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def value(data: Any) -> str:
    """A field value in the external form, compact and unambiguous (diffs, audit)."""
    if data is None:
        return "-"
    return json.dumps(data, ensure_ascii=False, separators=(", ", ": "))


def plain(data: Any) -> str:
    """Like ``value`` but strings bare: fine where no list or object can appear."""
    return data if isinstance(data, str) else value(data)


_MOVE_FIELDS = ("state", "percent", "stage")


def audit_change(entry: Mapping[str, Any]) -> str:
    """What an audit entry changed, in a few words: ``state draft→rolling, percent 0→10``."""
    before, after = entry.get("before"), entry.get("after")
    if before is None and after is not None:
        return "created"
    if after is None:
        return "deleted"
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return ""
    parts = []
    for name in sorted(set(before) | set(after), key=lambda n: (n not in _MOVE_FIELDS, n)):
        if name in ("version", "updated_at", "stage_started_at", "status"):
            continue  # bookkeeping, changes with every write
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if isinstance(old, list | dict) or isinstance(new, list | dict):
            parts.append(f"{name} changed")
        else:
            parts.append(f"{name} {plain(old)}→{plain(new)}")
    return shorten(", ".join(parts))


def audit_table(entries: Sequence[Mapping[str, Any]]) -> str:
    rows = [
        (
            str(e["at"])[:19] + "Z" if e.get("at") else "-",
            e.get("flag"),
            e.get("actor"),
            e.get("action"),
            audit_change(e) or "-",
            shorten(str(e.get("reason") or "-"), 40),
        )
        for e in entries
    ]
    return table(("AT", "FLAG", "ACTOR", "ACTION", "CHANGE", "REASON"), rows)


def readings(gates: Sequence[Mapping[str, Any]]) -> str:
    """The gate report's verdicts (``GateService.report``), one row per gate."""
    rows = [(g.get("metric"), g.get("verdict"), shorten(str(g.get("why") or "-"))) for g in gates]
    return "readings:\n" + indent(table(("METRIC", "VERDICT", "WHY"), rows))


def srm(reading: dict[str, Any]) -> str:
    """The split check in one line: verdict, expected and observed treatment shares."""

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value * 100:.2f}%"

    observed = reading["observed"]
    statistic = reading["statistic"]
    return (
        f"sample ratio: {reading['verdict']}; expected treatment share "
        f"{share(reading['expected'])}; exposures {share(observed['exposures'])} "
        f"({statistic['exposures']:.1f} nats), samples {share(observed['samples'])} "
        f"({statistic['samples']:.1f} nats)"
    )
