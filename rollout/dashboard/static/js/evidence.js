// The evidence of a flag as elements: the stepper of its plan, bake and samples against the
// stage's needs, each gate's verdict and why, and the audit timeline.

import { h } from "./dom.js";
import * as fmt from "./format.js";

export function stepper(flag) {
  // draft → 10% → 50% → 100%: where the flag stands on its plan, and where a kill found it.
  const here = flag.state === "killed" && flag.kill ? flag.kill.stage_before : flag.stage;
  const steps = flag.stages.map((stage, index) => {
    let place = "ahead";
    if (flag.state === "complete" || (here !== null && index < here)) place = "done";
    else if (index === here) place = flag.state === "killed" ? "killed" : "current";
    return h(
      "li",
      { class: `step ${place}`, "aria-current": place === "current" ? "step" : null },
      h("span", { class: "step-percent", text: `${stage.percent}%` }),
      h("span", {
        class: "step-needs",
        text: `bake ${fmt.duration(stage.bake)} · ${fmt.count(stage.min_samples)} samples`,
      }),
    );
  });
  if (!flag.stages.length) {
    return h("p", {
      class: "muted",
      text: `No stages: moved by hand (now ${fmt.percent(flag.percent)}).`,
    });
  }
  const start = h(
    "li",
    { class: `step ${flag.state === "draft" ? "current" : "done"}` },
    h("span", { class: "step-percent", text: "draft" }),
  );
  const end = h(
    "li",
    { class: `step ${flag.state === "complete" ? "current" : "ahead"}` },
    h("span", { class: "step-percent", text: "complete" }),
  );
  return h("ol", { class: "stepper", "aria-label": "Stages" }, start, steps, end);
}

export function statusLine(flag, report) {
  // The newer of the flag's copy and the gates report's (the status word is not versioned).
  let status = flag.status;
  if (report && report.status && (!status || (report.status.at || "") >= (status.at || "")))
    status = report.status;
  const parts = [];
  if (flag.kill) {
    parts.push(
      h(
        "p",
        { class: "kill-record" },
        h("b", { text: "Killed" }),
        ` by ${flag.kill.by} at ${fmt.instant(flag.kill.at)}: `,
        h("span", { class: "reason", text: flag.kill.reason }),
      ),
    );
  }
  parts.push(
    status
      ? h(
          "p",
          { class: "controller" },
          h("span", { class: `badge decision-${status.decision}`, text: status.decision }),
          h("span", { class: "why", text: status.why }),
          h("span", { class: "muted", text: fmt.instant(status.at) }),
        )
      : h("p", { class: "controller muted", text: "The controller has not judged this flag yet." }),
  );
  return parts;
}

export function progress(flag, report, now) {
  const current = flag.stage === null || flag.stage === undefined ? null : flag.stages[flag.stage];
  const items = [];
  if (current && flag.stage_started_at && flag.state !== "killed") {
    const elapsed = now - fmt.epoch(flag.stage_started_at);
    const left = current.bake - elapsed;
    items.push(
      fact(
        "Bake remaining",
        left > 0 ? fmt.duration(left) : "done",
        `of ${fmt.duration(current.bake)}, since ${fmt.instant(flag.stage_started_at)}`,
      ),
    );
  }
  if (report) {
    const treatment = report.arms.treatment;
    const control = report.arms.control;
    const need = current ? current.min_samples : null;
    items.push(
      fact(
        "Samples",
        need
          ? `${fmt.count(treatment.samples)} / ${fmt.count(need)}`
          : fmt.count(treatment.samples),
        `treatment this stage${need ? " (min_samples)" : ""}; control ${fmt.count(control.samples)}`,
      ),
      fact(
        "Error rate",
        `${fmt.rate(treatment.error_rate)} vs ${fmt.rate(control.error_rate)}`,
        "treatment vs control, this stage",
      ),
      fact(
        "p95",
        `${fmt.ms(treatment.p95_ms)} vs ${fmt.ms(control.p95_ms)}`,
        "treatment vs control",
      ),
      fact(
        "Exposures",
        fmt.count(treatment.exposures + control.exposures),
        "is_enabled answers in an arm",
      ),
    );
    if (report.memory_mb !== null && report.memory_mb !== undefined) {
      items.push(
        fact(
          "Memory",
          `${report.memory_mb.toFixed(1)} MB`,
          "highest growth of a treatment process",
        ),
      );
    }
  }
  return h("dl", { class: "figures" }, items);
}

function fact(name, value, detail) {
  return h(
    "div",
    { class: "figure" },
    h("dt", { text: name }),
    h("dd", { text: value }),
    h("dd", { class: "muted small", text: detail }),
  );
}

export function gatesTable(report) {
  if (!report.gates.length) return h("p", { class: "muted", text: "This flag has no gates." });
  const reading = (r, scope) =>
    h(
      "td",
      { class: "reading" },
      h("span", { class: `badge verdict-${r.verdict}`, text: r.verdict }),
      h("span", { class: "why", text: r.why }),
      h("span", { class: "muted small", text: scope }),
    );
  return h(
    "table",
    { class: "gates-table" },
    h(
      "thead",
      h(
        "tr",
        ["Gate", "Warn / critical", "Verdict", "Window", "Stage"].map((t) =>
          h("th", { scope: "col", text: t }),
        ),
      ),
    ),
    h(
      "tbody",
      report.gates.map((g) =>
        h(
          "tr",
          { "data-gate": g.metric },
          h("td", { class: "key", text: g.metric }),
          h("td", { class: "num", text: `${g.warn} / ${g.critical}` }),
          h("td", null, h("span", { class: `badge verdict-${g.verdict}`, text: g.verdict })),
          reading(g.readings.window, `last ${fmt.duration(g.window)}`),
          reading(
            g.readings.stage,
            report.evidence_since ? `since ${fmt.instant(report.evidence_since)}` : "this stage",
          ),
        ),
      ),
    ),
  );
}

// The sample ratio check (GET /gates' srm): the arms' treatment share against the split the
// percent implies. The share shown is the count with the most evidence of a mismatch.
export function srmLine(report) {
  const srm = report.srm;
  if (!srm) return null;
  const shares = Object.entries(srm.observed || {}).filter(([, v]) => v !== null);
  shares.sort(([a], [b]) => (srm.statistic?.[b] ?? 0) - (srm.statistic?.[a] ?? 0));
  const observed = shares.length ? fmt.rate(shares[0][1]) : "–";
  const expected = srm.expected === null ? "–" : fmt.rate(srm.expected);
  return h("p", {
    class: `srm srm-${srm.verdict}`,
    "data-srm": srm.verdict,
    text: `sample ratio: ${srm.verdict} (observed ${observed} / expected ${expected})`,
  });
}

export function auditList(entries) {
  if (!entries.length) return h("p", { class: "muted", text: "No audit entries." });
  return h(
    "ol",
    { class: "timeline" },
    entries.map((e) =>
      h(
        "li",
        { class: `entry action-${e.action}` },
        h("span", { class: "at", text: fmt.instant(e.at) }),
        h("span", { class: "badge", text: e.action }),
        h("span", { class: "actor", text: e.actor }),
        e.reason ? h("span", { class: "reason", text: e.reason }) : null,
        h("span", { class: "muted small", text: `v${e.version}` }),
      ),
    ),
  );
}
