// The flag list: one row per flag, kept current by a conditional poll (a 304 while nothing
// changed), with every flag's error-rate trend from one bulk call.

import { poller, post } from "./api.js";
import { sparkline } from "./charts.js";
import { alertBox, field, h, replace } from "./dom.js";
import * as fmt from "./format.js";

const LIST_POLL_MS = 1000;
const TREND_POLL_MS = 10000; // the metric windows are 10 s: polling faster shows nothing new

export function listView({ me, main }) {
  document.title = "Flags · rollout";
  const rows = new Map(); // key -> the row's parts, reused across polls
  let trends = null;
  const problem = alertBox();
  const note = h("p", { class: "note", hidden: true });
  const filter = field("Filter", { type: "search", placeholder: "key or description" });
  const stateId = "state-filter";
  const stateSelect = h(
    "select",
    { id: stateId },
    h("option", { value: "", text: "All states" }),
    fmt.STATES.map((state) => h("option", { value: state, text: state })),
  );
  const shown = h("span", { class: "muted" });
  const tbody = h("tbody");
  const empty = h("p", {
    class: "muted",
    hidden: true,
    text: "No flags yet. Create one with `rollout apply` or POST /api/v1/flags.",
  });
  const table = h(
    "table",
    { class: "flags" },
    h(
      "thead",
      h(
        "tr",
        ["Flag", "State", "Percent", "Stage", "Controller", "Error rate (treatment)"].map((name) =>
          h("th", { scope: "col", text: name }),
        ),
      ),
    ),
    tbody,
  );

  function applyFilter() {
    const text = filter.input.value.trim().toLowerCase();
    const state = stateSelect.value;
    let visible = 0;
    for (const row of rows.values()) {
      const flag = row.flag;
      const matches =
        (!state || flag.state === state) &&
        (!text ||
          flag.key.toLowerCase().includes(text) ||
          (flag.description || "").toLowerCase().includes(text));
      row.tr.hidden = !matches;
      if (matches) visible += 1;
    }
    shown.textContent = `${visible} of ${rows.size} flags`;
  }
  filter.input.addEventListener("input", applyFilter);
  stateSelect.addEventListener("change", applyFilter);

  function makeRow(key) {
    const link = h("a", { href: `/flags/${encodeURIComponent(key)}`, "data-nav": true, text: key });
    const description = h("div", { class: "description" });
    const state = h("span", { class: "badge" });
    const cells = {
      flag: h("td", { class: "key" }, link, description),
      state: h("td", null, state),
      percent: h("td", { class: "num" }),
      stage: h("td", { class: "num" }),
      status: h("td", { class: "status" }),
      trend: h("td", { class: "trend", "data-flag": key }),
    };
    const tr = h("tr", { "data-flag": key }, Object.values(cells));
    return {
      tr,
      cells,
      description,
      state,
      spark: null,
      flag: null,
      version: null,
      statusAt: null,
    };
  }

  function updateRow(row, flag) {
    const statusAt = flag.status ? flag.status.at : null;
    row.flag = flag;
    if (row.version === flag.version && row.statusAt === statusAt) return;
    row.version = flag.version;
    row.statusAt = statusAt;
    row.description.textContent = flag.description || "";
    row.state.textContent = flag.state;
    row.state.className = `badge state-${flag.state}`;
    row.cells.percent.textContent = fmt.percent(flag.percent);
    row.cells.stage.textContent = fmt.stage(flag);
    row.cells.status.textContent = fmt.statusWord(flag);
    row.cells.status.title = flag.status ? flag.status.why : "";
  }

  function drawList(data) {
    problem.clear();
    const seen = new Set();
    let previous = null;
    for (const flag of data.flags) {
      seen.add(flag.key);
      let row = rows.get(flag.key);
      if (!row) {
        row = makeRow(flag.key);
        rows.set(flag.key, row);
      }
      updateRow(row, flag);
      // Keep the DOM in the API's order (by key) without rebuilding rows that stay.
      const expected = previous ? previous.nextSibling : tbody.firstChild;
      if (expected !== row.tr) tbody.insertBefore(row.tr, expected);
      previous = row.tr;
    }
    for (const [key, row] of rows) {
      if (!seen.has(key)) {
        if (row.spark) row.spark.destroy();
        row.tr.remove();
        rows.delete(key);
      }
    }
    if (data.problems && data.problems.length) {
      problem.show(`Unreadable stored flags: ${data.problems.join("; ")}`);
    }
    empty.hidden = rows.size > 0;
    table.hidden = rows.size === 0;
    applyFilter();
    drawTrends();
  }

  function drawTrends() {
    if (!trends) return;
    for (const [key, row] of rows) {
      const series = trends.flags[key];
      row.spark = sparkline(row.cells.trend, trends.at, series, row.spark);
    }
  }

  const list = poller("/api/v1/flags", LIST_POLL_MS, {
    onData: drawList,
    onError: (error) => problem.show(error.message),
  });
  const trendPoll = poller("/api/v1/trends", TREND_POLL_MS, {
    onData: (data) => {
      trends = data;
      drawTrends();
    },
    onError: () => {}, // the list's own poll reports an outage; the trends just wait
    conditional: false,
  });

  const killAll = me.role === "admin" ? killAllControls(problem, note, () => list.refresh()) : null;
  replace(
    main,
    h(
      "section",
      { class: "list" },
      h(
        "div",
        { class: "toolbar" },
        h("h1", { text: "Flags" }),
        shown,
        h("span", { class: "spacer" }),
        killAll,
      ),
      h(
        "div",
        { class: "filters" },
        filter.row,
        h("span", { class: "field" }, h("label", { for: stateId, text: "State" }), stateSelect),
      ),
      problem.el,
      note,
      table,
      empty,
    ),
  );
  list.start();
  trendPoll.start();
  return {
    stop() {
      list.stop();
      trendPoll.stop();
      for (const row of rows.values()) if (row.spark) row.spark.destroy();
    },
  };
}

function killAllControls(problem, note, refresh) {
  const reason = field("Reason", { type: "text", maxlength: "4096" });
  const confirm = h("button", { type: "button", class: "danger", text: "Confirm kill all" });
  const cancel = h("button", { type: "button", class: "quiet", text: "Cancel" });
  const panel = h("span", { class: "confirm", hidden: true }, reason.row, confirm, cancel);
  const open = h("button", { type: "button", class: "danger", text: "Kill all" });
  open.addEventListener("click", () => {
    panel.hidden = false;
    open.hidden = true;
    reason.input.focus();
  });
  cancel.addEventListener("click", () => {
    panel.hidden = true;
    open.hidden = false;
  });
  confirm.addEventListener("click", async () => {
    const text = reason.input.value.trim();
    if (!text) {
      problem.show("A kill needs a reason.");
      return;
    }
    confirm.disabled = true;
    try {
      const reply = await post("/api/v1/kill-all", { reason: text });
      const killed = reply.data.killed.map((flag) => flag.key);
      note.textContent = killed.length
        ? `Killed ${killed.length}: ${killed.join(", ")}`
        : "No flag was serving users.";
      note.hidden = false;
      problem.clear();
      panel.hidden = true;
      open.hidden = false;
      reason.input.value = "";
      refresh();
    } catch (error) {
      problem.show(error.message);
    } finally {
      confirm.disabled = false;
    }
  });
  return h("span", { class: "killall" }, open, panel);
}
