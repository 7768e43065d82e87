// The page's entry point: who is signed in, which view the path asks for, and going between
// views without a reload (the token stays in sessionStorage across reloads of this tab).

import { call, get, session, whenUnauthorized } from "./api.js";
import { alertBox, field, h, replace } from "./dom.js";
import { flagView } from "./flag.js";
import { listView } from "./list.js";

const main = document.getElementById("main");
const bar = document.getElementById("session");
let current = null; // the view on screen; stop() ends its polling
let me = null; // {name, role} from /api/v1/whoami

function stopView() {
  if (current) current.stop();
  current = null;
}

function signOut(message) {
  session.forget();
  me = null;
  stopView();
  drawSession();
  signInView(message);
}

whenUnauthorized((message) => signOut(message));

function drawSession() {
  if (!me) {
    replace(bar);
    return;
  }
  replace(
    bar,
    h("span", { class: "who", text: `Signed in as ${me.name}` }),
    me.role === "admin"
      ? h("span", { class: "badge role-admin", text: "Admin" })
      : h("span", { class: "badge role-read", text: "Read-only" }),
    h("button", { type: "button", class: "quiet", text: "Sign out", onclick: () => signOut("") }),
  );
}

function signInView(message) {
  document.title = "Sign in · rollout";
  const token = field("Token", { type: "password", autocomplete: "off", spellcheck: "false" });
  const problem = alertBox();
  const button = h("button", { type: "submit", class: "primary", text: "Sign in" });
  async function submit(event) {
    event.preventDefault();
    const value = token.input.value.trim();
    if (!value) {
      problem.show("Type an admin or read token.");
      return;
    }
    button.disabled = true;
    try {
      // The token is checked before it is kept: a wrong one never reaches sessionStorage.
      const reply = await call("GET", "/api/v1/whoami", { token: value });
      session.save(value);
      me = reply.data;
      drawSession();
      route();
    } catch (error) {
      problem.show(error.message);
      button.disabled = false;
    }
  }
  replace(
    main,
    h(
      "form",
      { class: "signin card", method: "post", action: "/", onsubmit: submit },
      h("h1", { text: "Sign in" }),
      h("p", {
        class: "muted",
        text:
          "Paste an admin or read token (ROLLOUT_ADMIN_TOKENS / ROLLOUT_READ_TOKENS). " +
          "It is kept in this tab only.",
      }),
      token.row,
      button,
      problem.el,
    ),
  );
  problem.show(message || "");
  token.input.focus();
}

function keyFromPath(path) {
  const match = path.match(/^\/flags\/(.+)$/);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1]; // not valid percent-encoding: the API will say there is no such flag
  }
}

function route() {
  stopView();
  if (!me) {
    signInView("");
    return;
  }
  const key = keyFromPath(location.pathname);
  const context = { me, main, navigate };
  current = key === null ? listView(context) : flagView(context, key);
}

function navigate(path) {
  if (path !== location.pathname) history.pushState(null, "", path);
  route();
}

window.addEventListener("popstate", route);
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-nav]");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});

async function boot() {
  if (!session.token()) {
    signInView("");
    return;
  }
  try {
    me = (await get("/api/v1/whoami")).data;
  } catch (error) {
    if (error.status === 0) {
      // The server is away (a restart): keep the token and try again, do not sign out.
      replace(main, h("p", { class: "alert", role: "alert", text: error.message }));
      setTimeout(boot, 2000);
    } else if (error.status !== 401) {
      signOut(error.message); // a 401 has signed out already
    }
    return;
  }
  drawSession();
  route();
}

boot();
