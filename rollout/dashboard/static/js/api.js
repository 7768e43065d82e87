// The one door to the JSON API. The token lives in this tab's sessionStorage only: it is sent
// as a bearer header, never put in a URL, a cookie or the console.

const TOKEN_KEY = "rollout.token";

export const session = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  save: (token) => sessionStorage.setItem(TOKEN_KEY, token),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Set by main.js: what to do when the server says the token is no good (expired, revoked).
let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

// A JSON text sent exactly as written: a percent typed as 12.5000000000000001 must reach the
// server as those digits (which refuses it), not as the double 12.5 that JSON.stringify makes.
export class RawJson {
  constructor(text) {
    this.text = text;
  }
}

export async function call(method, path, { body, etag, token } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token ?? session.token();
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (etag) headers["If-None-Match"] = etag;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body:
        body === undefined ? undefined : body instanceof RawJson ? body.text : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit", // bearer tokens only: no cookie ever rides along (no CSRF surface)
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, "unreachable", "cannot reach the rollout server; retrying");
  }
  if (response.status === 304) return { status: 304, etag, data: null };
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    const failure = new ApiError(
      response.status,
      error.code || "error",
      error.message || `the server answered ${response.status}`,
    );
    if (response.status === 401 && token === undefined) onUnauthorized(failure.message);
    throw failure;
  }
  return { status: response.status, etag: response.headers.get("ETag"), data };
}

export const get = (path, options) => call("GET", path, options);
export const post = (path, body) => call("POST", path, { body });
export const put = (path, body) => call("PUT", path, { body });

export function flagPath(key, rest = "") {
  return `/api/v1/flags/${encodeURIComponent(key)}${rest}`;
}

// Polls a read every `interval` ms with If-None-Match: an unchanged resource costs the server
// a 304 and the page nothing. One request at a time; errors are reported and polling goes on.
export function poller(path, interval, { onData, onError, conditional = true }) {
  let etag = null;
  let timer = null;
  let running = false;
  let again = false;
  let stopped = false;
  async function tick() {
    timer = null;
    running = true;
    let reply = null;
    try {
      const url = typeof path === "function" ? path() : path;
      reply = await get(url, { etag: conditional ? etag : null });
    } catch (error) {
      if (!stopped && onError) onError(error);
    }
    try {
      if (reply && !stopped && reply.status !== 304) {
        etag = reply.etag;
        onData(reply.data);
      }
    } catch (error) {
      console.error(error); // a drawing bug: say so, and keep polling
    } finally {
      running = false;
    }
    if (stopped) return;
    if (again) {
      again = false;
      tick();
    } else {
      timer = setTimeout(tick, interval);
    }
  }
  return {
    start() {
      tick();
      return this;
    },
    refresh() {
      // Now, not at the next tick: after a move this page made, or a change of range.
      etag = null;
      if (running) {
        again = true;
        return;
      }
      if (timer !== null) clearTimeout(timer);
      tick();
    },
    stop() {
      stopped = true;
      if (timer !== null) clearTimeout(timer);
    },
  };
}
