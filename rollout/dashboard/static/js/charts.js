// Charts drawn by uPlot (canvas; it sets element.style from script, which the CSP allows, and
// needs neither eval nor a <style> block). The library is a classic script that defines the
// global uPlot, so it is looked up when a chart is drawn, not when this module loads.

import { h, replace } from "./dom.js";
import * as fmt from "./format.js";

const COLORS = { treatment: "#d9480f", control: "#1c7ed6", warn: "#f08c00", critical: "#e03131" };
const ARMS = ["treatment", "control"];

function lib() {
  return globalThis.uPlot;
}

// -- the list's sparklines ---------------------------------------------------------------

export function sparkline(cell, at, series, existing) {
  const rates = series ? series.error_rate : null;
  const last = rates ? [...rates].reverse().find((v) => v !== null) : undefined;
  if (last === undefined) {
    if (existing) existing.destroy();
    replace(cell, h("span", { class: "muted", text: "no samples" }));
    cell.dataset.drawn = "empty";
    return null;
  }
  const data = [at.map(fmt.epoch), rates];
  const samples = series.samples.reduce((a, b) => a + b, 0);
  const span = fmt.duration(at.length * stepOf(at));
  cell.title = `latest ${fmt.rate(last)} · ${fmt.count(samples)} samples in the last ${span}`;
  if (existing) {
    existing.setData(data);
    existing.valueLabel.textContent = fmt.rate(last);
    return existing;
  }
  const value = h("span", { class: "trend-value", text: fmt.rate(last) });
  const target = h("span", { class: "spark" });
  replace(cell, target, value);
  const chart = new (lib())(
    {
      width: 110,
      height: 26,
      pxAlign: false,
      legend: { show: false },
      cursor: { show: false },
      select: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: {
        x: { time: false, range: (u) => [u.data[0][0], u.data[0][u.data[0].length - 1]] },
        y: { range: (_u, _min, max) => [0, Math.max(max || 0, 0.02)] },
      },
      // Dots where a line cannot be drawn: a stage minutes old has one step.
      series: [
        {},
        {
          stroke: COLORS.treatment,
          width: 1.5,
          fill: "rgba(217,72,15,0.12)",
          points: { size: 5, show: (u, i) => u.data[i].filter((v) => v !== null).length < 4 },
        },
      ],
    },
    data,
    target,
  );
  chart.valueLabel = value;
  cell.dataset.drawn = "chart";
  return chart;
}

function stepOf(at) {
  return at.length > 1 ? fmt.epoch(at[1]) - fmt.epoch(at[0]) : 0;
}

// -- the flag page's charts --------------------------------------------------------------

function aligned(history) {
  const times = new Set();
  for (const arm of ARMS) for (const point of history.series[arm] || []) times.add(point.at);
  const at = [...times].sort(); // one ISO format throughout: text order is time order
  const index = new Map(at.map((t, i) => [t, i]));
  return {
    xs: at.map(fmt.epoch),
    column(arm, pick) {
      const out = new Array(at.length).fill(null);
      for (const point of history.series[arm] || []) {
        const value = pick(point);
        out[index.get(point.at)] = value === undefined ? null : value;
      }
      return out;
    },
  };
}

function gate(flag, metric) {
  return (flag.gates || []).find((g) => g.metric === metric) || null;
}

function thresholds(found, xs) {
  if (!found) return [];
  return [
    {
      label: `warn ${found.warn}`,
      color: COLORS.warn,
      values: xs.map(() => found.warn),
      raw: found.warn,
    },
    {
      label: `critical ${found.critical}`,
      color: COLORS.critical,
      values: xs.map(() => found.critical),
      raw: found.critical,
    },
  ];
}

// Every chart the page shows, as {id, title, unit, series: [{label, color, values, kind}]}.
function specs(history, flag) {
  const { xs, column } = aligned(history);
  const arms = (pick, kind) =>
    ARMS.map((arm) => ({ label: arm, color: COLORS[arm], values: column(arm, pick), kind }));
  const out = [
    {
      id: "error_rate",
      title: "Error rate per arm",
      format: fmt.rate,
      series: [...arms((p) => p.error_rate, "line"), ...thresholds(gate(flag, "error_rate"), xs)],
    },
    {
      id: "p95",
      title: "p95 latency per arm",
      format: fmt.ms,
      series: arms((p) => p.p95_ms, "line"),
    },
    {
      id: "samples",
      title: "Samples per step",
      format: fmt.count,
      series: arms((p) => p.samples, "steps"),
    },
  ];
  const memory = history.memory_mb || [];
  if (memory.some((m) => m.max !== null)) {
    const byAt = new Map(memory.map((m) => [m.at, m.max]));
    // Memory is kept per 5-minute rollup: the first one may begin before the range does.
    const memXs = memory.map((m) => Math.max(fmt.epoch(m.at), fmt.epoch(history.since)));
    out.push({
      id: "memory",
      title: "Memory growth, highest treatment process (MB)",
      format: (v) => (v === null || v === undefined ? "–" : `${v.toFixed(1)} MB`),
      xs: memXs,
      series: [
        {
          label: "max",
          color: COLORS.treatment,
          values: memory.map((m) => byAt.get(m.at)),
          kind: "line",
        },
        ...thresholds(gate(flag, "memory_mb"), memXs),
      ],
    });
  }
  const names = new Set();
  for (const arm of ARMS)
    for (const p of history.series[arm] || [])
      for (const n of Object.keys(p.values || {})) names.add(n);
  for (const name of [...names].sort()) {
    out.push({
      id: `value:${name}`,
      title: `${name} (mean per arm)`,
      format: (v) => (v === null || v === undefined ? "–" : v.toPrecision(3)),
      series: arms((p) => (p.values && p.values[name] ? p.values[name].mean : null), "line"),
    });
  }
  for (const spec of out) spec.xs = spec.xs || xs;
  return out;
}

function stageMarks(bounds) {
  // Vertical lines where a stage began: the story of a rollout read left to right.
  return {
    hooks: {
      draw: [
        (u) => {
          const { ctx } = u;
          const top = u.bbox.top;
          const bottom = top + u.bbox.height;
          ctx.save();
          ctx.strokeStyle = "#868e96";
          ctx.fillStyle = "#495057";
          ctx.setLineDash([3, 3]);
          ctx.font = `${11 * devicePixelRatio}px system-ui, sans-serif`;
          for (const mark of bounds.marks) {
            const x = u.valToPos(mark.x, "x", true);
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
            ctx.beginPath();
            ctx.moveTo(x, top);
            ctx.lineTo(x, bottom);
            ctx.stroke();
            ctx.fillText(mark.label, x + 4 * devicePixelRatio, top + 24 * devicePixelRatio);
          }
          ctx.restore();
        },
      ],
    },
  };
}

function options(spec, width, bounds) {
  const uPlot = lib();
  const series = [{}];
  for (const s of spec.series) {
    const threshold = s.raw !== undefined;
    series.push({
      label: s.label,
      stroke: s.color,
      width: threshold ? 1 : 2,
      dash: threshold ? [6, 4] : undefined,
      // Counts per step as steps, not slopes: each step is a bucket, not a reading at an instant.
      paths: s.kind === "steps" ? uPlot.paths.stepped({ align: 1 }) : undefined,
      points: threshold ? { show: false } : { size: 5 },
      value: (_u, v) => spec.format(v),
    });
  }
  return {
    width,
    height: 200,
    series,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"), // UTC, as the rest of the page
    plugins: [stageMarks(bounds)],
    // The range asked for, not the data's: a young stage with one step still reads as a stage.
    scales: {
      x: { time: true, range: () => [bounds.since, bounds.until] },
      y: { range: (_u, min, max) => [Math.min(0, min ?? 0), Math.max(max ?? 1, 1e-9) * 1.1] },
    },
    axes: [{}, { size: 70, values: (_u, splits) => splits.map((v) => spec.format(v)) }],
    cursor: { drag: { x: false, y: false } },
  };
}

function points(spec) {
  return spec.series
    .filter((s) => s.raw === undefined)
    .reduce((n, s) => n + s.values.filter((v) => v !== null && v !== undefined).length, 0);
}

export function flagCharts(container) {
  const charts = new Map(); // id -> {figure, plot, signature}
  let last = null;
  const resize = new ResizeObserver(() => {
    const width = chartWidth(container);
    for (const chart of charts.values()) chart.plot.setSize({ width, height: 200 });
  });
  resize.observe(container);

  const bounds = { since: 0, until: 0, marks: [] }; // read by every chart's range and marks

  function draw(history, flag) {
    last = { history, flag };
    bounds.since = fmt.epoch(history.since);
    bounds.until = fmt.epoch(history.until);
    bounds.marks = (history.stages || []).map((s) => ({
      x: fmt.epoch(s.started_at),
      label: `▸ ${s.percent}%`,
    }));
    const wanted = specs(history, flag);
    const width = chartWidth(container);
    const keep = new Set(wanted.map((s) => s.id));
    for (const [id, chart] of charts) {
      if (!keep.has(id)) {
        chart.plot.destroy();
        chart.figure.remove();
        charts.delete(id);
      }
    }
    for (const spec of wanted) {
      const data = [spec.xs, ...spec.series.map((s) => s.values)];
      const signature = spec.series.map((s) => s.label).join("|");
      let chart = charts.get(spec.id);
      if (chart && chart.signature === signature) {
        chart.plot.setData(data);
      } else {
        if (chart) chart.plot.destroy();
        const target = h("div", { class: "plot" });
        const figure = chart
          ? chart.figure
          : h("figure", { class: "chart", "data-chart": spec.id });
        replace(figure, h("figcaption", { text: spec.title }), target);
        chart = {
          figure,
          signature,
          plot: new (lib())(options(spec, width, bounds), data, target),
        };
        charts.set(spec.id, chart);
      }
      chart.figure.dataset.points = String(points(spec));
      container.append(chart.figure); // in the order of `wanted`
    }
    return wanted;
  }

  return {
    draw,
    redraw() {
      if (last) draw(last.history, last.flag);
    },
    destroy() {
      resize.disconnect();
      for (const chart of charts.values()) chart.plot.destroy();
      charts.clear();
    },
  };
}

function chartWidth(container) {
  return Math.max(
    280,
    Math.floor(container.clientWidth / (container.clientWidth > 1100 ? 2 : 1)) - 24,
  );
}
