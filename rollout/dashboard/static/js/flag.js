// One flag: where it stands on its plan, the evidence, the charts, the audit, and the moves.
// Its state is polled every second with If-None-Match (a 304 until the version changes); the
// evidence, which changes with every flush, on slower timers.

import { flagPath, poller } from "./api.js";
import { flagCharts } from "./charts.js";
import { actions } from "./actions.js";
import { alertBox, h, replace } from "./dom.js";
import { auditList, gatesTable, progress, srmLine, statusLine, stepper } from "./evidence.js";
import * as fmt from "./format.js";

const FLAG_POLL_MS = 1000;
const GATES_POLL_MS = 2000;
const HISTORY_POLL_MS = 10000; // one 10 s metric window

export function flagView({ me, main }, key) {
  document.title = `${key} · rollout`;
  let flag = null;
  let report = null;
  let serverStep = false;
  let clockSkew = 0; // server time minus this browser's, from the gates report's read_at
  const problem = alertBox();
  const title = h("h1", { class: "key", text: key });
  const description = h("p", { class: "description" });
  const facts = h("div", { class: "facts" });
  const steps = h("div", { class: "stepper-wrap" });
  const status = h("div", { class: "status-line" });
  const progressBox = h("div", { class: "progress" });
  const gates = h("div", { class: "gates" });
  const charts = h("div", { class: "charts" });
  const audit = h("div", { class: "audit" });
  const extra = h("div", { class: "extra" });
  const rangeId = "range";
  const range = h(
    "select",
    { id: rangeId },
    h("option", { value: "stage", text: "This stage" }),
    h("option", { value: "all", text: "All since creation" }),
  );
  const chartSet = flagCharts(charts);
  const moves = me.role === "admin" ? actions(key, problem, () => changed()) : null;

  const flagPoll = poller(flagPath(key), FLAG_POLL_MS, {
    onData(data) {
      const first = flag === null;
      const versionChanged = first || data.version !== flag.version;
      flag = data;
      drawFlag();
      if (versionChanged && !first) {
        gatesPoll.refresh();
        historyPoll.refresh();
      }
      if (versionChanged) {
        auditPoll.refresh();
        if (moves) moves.refresh(flag);
      }
    },
    onError(error) {
      if (error.status === 404 || error.status === 422) notFound(error.message);
      else problem.show(error.message);
    },
  });
  const gatesPoll = poller(flagPath(key, "/gates"), GATES_POLL_MS, {
    conditional: false,
    onData(data) {
      report = data;
      clockSkew = data.read_at ? fmt.epoch(data.read_at) - Date.now() / 1000 : 0;
      drawEvidence();
    },
  });
  const historyPoll = poller(() => flagPath(key, `/metrics?${historyQuery()}`), HISTORY_POLL_MS, {
    conditional: false,
    onData(data) {
      if (flag) chartSet.draw(data, flag);
    },
    onError(error) {
      if (error.status === 422 && !serverStep) {
        serverStep = true; // this server keeps windows for less time: let it pick the step
        historyPoll.refresh();
      }
    },
  });
  const auditPoll = poller(`/api/v1/audit?flag=${encodeURIComponent(key)}&limit=50`, 60000, {
    onData: (data) => replace(audit, auditList(data.entries)),
  });
  range.addEventListener("change", () => historyPoll.refresh());

  function historyQuery() {
    const params = new URLSearchParams();
    const now = Date.now() / 1000 + clockSkew;
    const from =
      range.value === "all" && flag
        ? fmt.epoch(flag.created_at)
        : fmt.epoch(flag && flag.stage_started_at);
    if (range.value === "all" && from) params.set("since", String(Math.floor(from)));
    if (!serverStep) params.set("step", `${pickStep(from ? now - from : 3600)}s`);
    return params.toString();
  }

  function changed() {
    // After a move made here: show it now rather than at the next tick.
    flagPoll.refresh();
    gatesPoll.refresh();
    historyPoll.refresh();
    auditPoll.refresh();
  }

  function notFound(message) {
    stop();
    document.title = "Flag not found · rollout";
    replace(
      main,
      h(
        "section",
        { class: "card not-found" },
        h("h1", { text: "Flag not found" }),
        h("p", { text: message }),
        h("p", null, h("a", { href: "/", "data-nav": true, text: "← All flags" })),
      ),
    );
  }

  function drawFlag() {
    problem.clear();
    description.textContent = flag.description || "";
    replace(
      facts,
      h("span", { class: `badge state-${flag.state}`, text: flag.state }),
      h("span", { class: "fact" }, h("b", { text: fmt.percent(flag.percent) }), " of users"),
      h("span", { class: "fact", text: `stage ${fmt.stage(flag)}` }),
      h("span", {
        class: "fact muted",
        text: flag.auto_advance ? "advances by itself" : "waits for an operator's Go",
      }),
      h("span", { class: "fact muted", text: `version ${flag.version}` }),
    );
    replace(steps, stepper(flag));
    replace(extra, targeting(flag));
    drawEvidence();
  }

  function drawEvidence() {
    if (!flag) return;
    const now = Date.now() / 1000 + clockSkew;
    replace(status, statusLine(flag, report));
    replace(progressBox, progress(flag, report, now));
    if (report) replace(gates, gatesTable(report), srmLine(report));
  }

  replace(
    main,
    h(
      "section",
      { class: "flag" },
      h("p", { class: "crumbs" }, h("a", { href: "/", "data-nav": true, text: "← All flags" })),
      h("div", { class: "headline" }, title, facts),
      description,
      steps,
      status,
      progressBox,
      moves ? moves.el : null,
      problem.el,
      h("h2", { text: "Gates" }),
      gates,
      h(
        "div",
        { class: "toolbar" },
        h("h2", { text: "History" }),
        h("span", { class: "spacer" }),
        h("span", { class: "field" }, h("label", { for: rangeId, text: "Range" }), range),
      ),
      charts,
      extra,
      h("h2", { text: "Audit timeline" }),
      audit,
    ),
  );
  flagPoll.start();
  gatesPoll.start();
  auditPoll.start();
  // The charts wait for the flag: the default range is its stage.
  const waitForFlag = setInterval(() => {
    if (flag) {
      clearInterval(waitForFlag);
      historyPoll.start();
    }
  }, 50);

  function stop() {
    clearInterval(waitForFlag);
    for (const p of [flagPoll, gatesPoll, historyPoll, auditPoll]) p.stop();
    chartSet.destroy();
  }
  return { stop };
}

// The finest step of the server's ladder (core/history.py) that keeps a chart to about a
// thousand points: 5 minutes for a 3-day stage. Steps that are not multiples of 5 minutes come
// from the 10-second windows, kept 6 h by default, so a longer range uses 5-minute multiples
// (and a server keeping them for less answers 422, and the page lets it choose instead).
const STEPS = [10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
function pickStep(seconds) {
  const usable = seconds > 5 * 3600 ? STEPS.filter((step) => step % 300 === 0) : STEPS;
  return usable.find((step) => seconds / step <= 1000) || usable[usable.length - 1];
}

function targeting(flag) {
  // Shown where they exist; other issues add rules and triggers to the flag document.
  const parts = [];
  const list = (title, items) =>
    h("div", { class: "kv" }, h("h3", { text: title }), h("p", { text: items.join(", ") }));
  if (flag.allow && flag.allow.length) parts.push(list("Always on (allow)", flag.allow));
  if (flag.deny && flag.deny.length) parts.push(list("Always off (deny)", flag.deny));
  if (flag.rules && flag.rules.length) {
    parts.push(
      h(
        "div",
        { class: "kv" },
        h("h3", { text: "Rules (first match wins)" }),
        h(
          "ol",
          null,
          flag.rules.map((rule) =>
            h("li", {
              text: `${rule.attribute} ${rule.op} ${JSON.stringify(rule.values)} → ${rule.serve}`,
            }),
          ),
        ),
      ),
    );
  }
  if (flag.srm) parts.push(list("Sample ratio mismatch", [String(flag.srm)]));
  return parts.length ? [h("h2", { text: "Targeting" }), ...parts] : [];
}
