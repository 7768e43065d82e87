// How figures read on the page. Instants are shown in UTC, as the API and the CLI write them.

export const STATES = ["draft", "rolling", "paused", "complete", "killed"];

export function percent(value) {
  return value === null || value === undefined ? "–" : `${value}%`;
}

export function rate(value) {
  if (value === null || value === undefined) return "–";
  const pct = value * 100;
  return `${pct >= 10 || pct === 0 ? pct.toFixed(1) : pct.toFixed(2)}%`;
}

export function ms(value) {
  return value === null || value === undefined ? "–" : `${value.toFixed(1)} ms`;
}

export function count(value) {
  return value === null || value === undefined ? "–" : value.toLocaleString("en-US");
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  let rest = Math.max(0, Math.round(seconds));
  const parts = [];
  for (const [unit, size] of [
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ]) {
    if (rest >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(" ");
}

export function instant(iso) {
  if (!iso) return "–";
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

export function epoch(iso) {
  return iso ? Date.parse(iso) / 1000 : null;
}

// "stage 2/3"; a flag set by hand between stages, killed, or in draft has no stage.
export function stage(flag) {
  if (flag.stage === null || flag.stage === undefined) return "–";
  return `${flag.stage + 1}/${flag.stages.length}`;
}

export function statusWord(flag) {
  return flag.status ? flag.status.decision : "–";
}
