// The JSON client for /ui/*: same-origin cookie session, CSRF header on writes, 401 -> login.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const session = { current: null };
let onUnauthorized = () => {};

export function currentSession() {
  return session.current;
}

export function setSession(value) {
  session.current = value;
}

/** Called with the server's message when a request is refused for want of a session. */
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text };
  }
}

function messageOf(body, response) {
  if (body && typeof body === "object") {
    const detail = body.detail ?? body.error ?? body.faultstring;
    if (typeof detail === "string") return detail;
    if (detail !== undefined) return JSON.stringify(detail);
  }
  return `${response.status} ${response.statusText}`.trim();
}

/**
 * Call the server. ``body`` is sent as JSON; non-GET requests carry the session's CSRF token.
 * A 401 from /ui/api/* ends the session and sends the browser to #/login.
 */
export async function api(path, { method = "GET", body, query } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && session.current?.csrf_token) {
    headers["X-CSRF-Token"] = session.current.csrf_token;
  }
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const parsed = await readBody(response);
  if (!response.ok) {
    const message = messageOf(parsed, response);
    // The session endpoints answer 401 as information (not logged in, bad password).
    if (response.status === 401 && path !== "/ui/session") {
      session.current = null;
      onUnauthorized(message);
    }
    throw new ApiError(response.status, message);
  }
  return parsed;
}
