// The operator's moves on one flag. Which ones the state allows comes from the API
// (/flags/KEY/moves, the same rules the moves themselves apply); the server still decides, and
// a refusal (a race with another operator: 409, 412) is shown as the API's own message.

import { RawJson, flagPath, get, post, put } from "./api.js";
import { field, h, replace } from "./dom.js";

const LABELS = {
  advance: "Advance",
  rollback: "Rollback",
  pause: "Pause",
  resume: "Resume",
  kill: "Kill",
  revive: "Revive",
  set: "Set percent",
};

export function actions(key, problem, changed) {
  const buttons = {};
  const panel = h("div", { class: "confirm", hidden: true });
  const done = h("p", { class: "note", hidden: true });
  let busy = false;
  let lastWhy = {};

  for (const [move, label] of Object.entries(LABELS)) {
    buttons[move] = h("button", {
      type: "button",
      class: move === "kill" ? "danger" : "",
      text: label,
      disabled: true,
      onclick: () => start(move),
    });
  }

  function close() {
    panel.hidden = true;
    replace(panel);
  }

  async function run(label, send) {
    if (busy) return;
    busy = true;
    problem.clear();
    done.hidden = true;
    try {
      const reply = await send();
      const flag = reply.data;
      done.textContent = `${label}: ${key} is ${flag.state} at ${flag.percent}%.`;
      done.hidden = false;
      close();
      changed();
    } catch (error) {
      problem.show(error.message);
      if (error.code === "gate_failing") offerForce();
    } finally {
      busy = false;
    }
  }

  function offerForce() {
    // Past a gate that reads fail: the operator says why, and the reason goes to the audit.
    const reason = field("Reason", { type: "text", maxlength: "4096" });
    ask(
      reason,
      "Force advance",
      (text) => {
        if (!text.trim()) problem.show("A forced advance needs a reason.");
        else
          run("Force advance", () =>
            post(flagPath(key, "/advance"), { force: true, reason: text.trim() }),
          );
      },
      "A gate reads fail. Advance anyway?",
    );
  }

  function cancelButton() {
    return h("button", { type: "button", class: "quiet", text: "Cancel", onclick: close });
  }

  function ask(input, confirmLabel, send, question = null) {
    const danger = confirmLabel === "Confirm kill" || confirmLabel === "Force advance";
    const confirm = h("button", {
      type: "button",
      class: danger ? "danger" : "primary",
      text: confirmLabel,
      onclick: () => send(input ? input.input.value : null),
    });
    replace(
      panel,
      question ? h("span", { class: "muted", text: question }) : null,
      input ? input.row : null,
      confirm,
      cancelButton(),
    );
    panel.hidden = false;
    if (input) {
      input.input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") confirm.click();
      });
      input.input.focus();
    } else {
      confirm.focus();
    }
  }

  function start(move) {
    problem.clear();
    const path = flagPath(key, `/${move}`);
    if (move === "kill") {
      const reason = field("Reason", { type: "text", maxlength: "4096" });
      ask(reason, "Confirm kill", (text) => {
        if (!text.trim()) problem.show("A kill needs a reason.");
        else run("Kill", () => post(path, { reason: text.trim() }));
      });
    } else if (move === "set") {
      const percent = field("Percent", { type: "text", inputmode: "decimal", size: "6" });
      ask(percent, "Confirm set", (text) => {
        // The digits as typed when they read as a number (the API judges the decimals, never a
        // rounded copy); anything else as text, so the API's own message is what is shown.
        const typed = text.trim();
        const body = /^(0|[1-9]\d{0,2})(\.\d+)?$/.test(typed)
          ? new RawJson(`{"percent": ${typed}}`)
          : { percent: typed };
        run("Set percent", () => put(flagPath(key, "/percentage"), body));
      });
    } else if (move === "rollback") {
      ask(null, "Confirm rollback", () => run("Rollback", () => post(path, {})));
    } else {
      close();
      run(LABELS[move], () => post(path, {}));
    }
  }

  async function refresh() {
    try {
      lastWhy = (await get(flagPath(key, "/moves"))).data.moves;
    } catch (error) {
      lastWhy = {};
      if (error.status !== 404) problem.show(error.message);
    }
    for (const [move, button] of Object.entries(buttons)) {
      const why = move in lastWhy ? lastWhy[move] : "unknown";
      button.disabled = why !== null;
      button.title = why === null ? "" : why;
    }
  }

  const el = h(
    "div",
    { class: "actions" },
    h("div", { class: "buttons" }, Object.values(buttons)),
    panel,
    done,
  );
  return { el, refresh };
}
