// The single-page app: session, hash router, live events, navigation. Each view is a module
// exporting ``render(root, context)``; the context lets it subscribe to live events and register
// clean-up, and tells it whether it is still the view on screen.

import { api, currentSession, setSession, whenUnauthorized } from "./api.js";
import { h, replace } from "./dom.js";
import * as actions from "./view_actions.js";
import * as alerts from "./view_alerts.js";
import * as approvals from "./view_approvals.js";
import * as cabs from "./view_cabs.js";
import * as dashboard from "./view_dashboard.js";
import * as executions from "./view_executions.js";
import * as login from "./view_login.js";
import * as trail from "./view_trail.js";

const ROUTES = [
  { pattern: /^$/, view: dashboard.render, title: "Dashboard", nav: "" },
  { pattern: /^alerts$/, view: alerts.renderList, title: "Alerts", nav: "alerts" },
  { pattern: /^alerts\/([^/]+)$/, view: alerts.renderDetail, title: "Alert", nav: "alerts" },
  { pattern: /^requests\/([^/]+)$/, view: trail.render, title: "Request trail", nav: "alerts" },
  { pattern: /^executions$/, view: executions.renderList, title: "Executions", nav: "executions" },
  {
    pattern: /^executions\/([^/]+)$/,
    view: executions.renderDetail,
    title: "Execution",
    nav: "executions",
  },
  { pattern: /^actions$/, view: actions.render, title: "Actions", nav: "actions" },
  { pattern: /^cabs$/, view: cabs.render, title: "Rules and CABs", nav: "cabs" },
  { pattern: /^approvals$/, view: approvals.render, title: "Approvals", nav: "approvals" },
  { pattern: /^login$/, view: login.render, title: "Log in", nav: "login", public: true },
];

const NAV = [
  ["", "Dashboard"],
  ["alerts", "Alerts"],
  ["executions", "Executions"],
  ["actions", "Actions"],
  ["cabs", "Rules & CABs"],
  ["approvals", "Approvals"],
];

const main = document.getElementById("main");
const userArea = document.getElementById("user-area");
const nav = document.getElementById("site-nav");
const liveStatus = document.getElementById("live-status");

let active = null;
let events = null;
let loginNotice = null;
let returnTo = null;
let routed = false;

/** Parse location.hash into a path ("alerts/12") and query parameters. */
export function currentRoute() {
  const raw = window.location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?", 2);
  return { path: path.replace(/\/+$/, ""), query: new URLSearchParams(search || "") };
}

/** Go to a client-side route (no page load). */
export function navigate(path, query) {
  const search = query ? new URLSearchParams(query).toString() : "";
  const target = `#/${path}${search ? `?${search}` : ""}`;
  if (window.location.hash === target) {
    route();
  } else {
    window.location.hash = target;
  }
}

function announce(message) {
  liveStatus.textContent = message;
}

function renderNav(selected) {
  const session = currentSession();
  replace(
    nav,
    session
      ? h(
          "ul",
          null,
          NAV.map(([path, text]) =>
            h(
              "li",
              null,
              h(
                "a",
                { href: `#/${path}`, "aria-current": selected === path ? "page" : null },
                text,
              ),
            ),
          ),
        )
      : null,
  );
  replace(
    userArea,
    session
      ? [
          h("span", { class: "user" }, "Signed in as ", h("strong", null, session.username)),
          h("button", { type: "button", class: "secondary", onclick: logout }, "Log out"),
        ]
      : null,
  );
}

async function logout() {
  try {
    await api("/ui/session", { method: "DELETE" });
  } catch {
    // Already logged out on the server: the result is the same.
  }
  endSession("You are logged out.");
}

function endSession(message) {
  setSession(null);
  stopEvents();
  loginNotice = message || null;
  navigate("login");
}

whenUnauthorized((message) => {
  const { path } = currentRoute();
  if (path !== "login") returnTo = window.location.hash;
  endSession(message);
});

/** The live event stream: the current view re-fetches what an event concerns. */
function startEvents() {
  if (events || !window.EventSource) return;
  const source = new EventSource("/ui/api/events");
  events = source;
  let lostContact = false;
  const deliver = (type) => (message) => {
    let data = {};
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    active?.deliver(type, data);
  };
  source.addEventListener("execution", deliver("execution"));
  source.addEventListener("alert", deliver("alert"));
  source.addEventListener("open", () => {
    liveStatus.dataset.state = "live";
    liveStatus.textContent = "Live updates on";
    if (lostContact) active?.deliver("reconnected", {});
    lostContact = false;
  });
  source.addEventListener("error", async () => {
    lostContact = true;
    liveStatus.dataset.state = "lost";
    liveStatus.textContent = "Live updates reconnecting…";
    if (source.readyState === EventSource.CLOSED && events === source) {
      events = null;
      try {
        await api("/ui/session");
        window.setTimeout(() => currentSession() && startEvents(), 3000);
      } catch (error) {
        if (error.status === 401) {
          returnTo = window.location.hash;
          endSession(error.message);
        } else {
          window.setTimeout(() => currentSession() && startEvents(), 3000);
        }
      }
    }
  });
}

function stopEvents() {
  if (events) events.close();
  events = null;
  liveStatus.dataset.state = "off";
  liveStatus.textContent = "";
}

/** Log in with the server's answer (from POST or GET /ui/session). */
export function begin(session) {
  setSession(session);
  startEvents();
  const target = returnTo && returnTo !== "#/login" ? returnTo : "#/";
  returnTo = null;
  window.location.hash = target;
}

class ActiveView {
  constructor() {
    this.listeners = [];
    this.cleanups = [];
    this.current = true;
  }

  deliver(type, data) {
    for (const listener of this.listeners) listener(type, data);
  }

  dispose() {
    this.current = false;
    for (const cleanup of this.cleanups) cleanup();
  }
}

function context(view, match, query) {
  return {
    params: match.slice(1).map((part) => decodeURIComponent(part)),
    query,
    navigate,
    announce,
    begin,
    notice: () => {
      const message = loginNotice;
      loginNotice = null;
      return message;
    },
    alive: () => view.current,
    /** Subscribe to live events ("execution", "alert", "reconnected"). */
    live: (listener) => view.listeners.push(listener),
    cleanup: (fn) => view.cleanups.push(fn),
    /** A function that runs ``fn`` once, shortly after its last call (bursts of events). */
    debounced: (fn, wait = 400) => {
      let timer = null;
      view.cleanups.push(() => window.clearTimeout(timer));
      return () => {
        window.clearTimeout(timer);
        timer = window.setTimeout(() => view.current && fn(), wait);
      };
    },
    /**
     * A function that runs ``fn`` ``wait`` ms after its first call, once for all the calls
     * meanwhile, and so at most once per ``wait`` however steady the events (a large workflow's
     * tasks), where a debounced one would wait for them to stop.
     */
    throttled: (fn, wait = 1000) => {
      let timer = null;
      view.cleanups.push(() => window.clearTimeout(timer));
      return () => {
        if (timer !== null) return;
        timer = window.setTimeout(() => {
          timer = null;
          if (view.current) fn();
        }, wait);
      };
    },
  };
}

async function route() {
  const { path, query } = currentRoute();
  const found = ROUTES.map((r) => ({ r, match: path.match(r.pattern) })).find((x) => x.match);
  if (!currentSession() && !(found && found.r.public)) {
    if (path !== "login") returnTo = window.location.hash;
    navigate("login");
    return;
  }
  if (currentSession() && path === "login") {
    navigate("");
    return;
  }
  active?.dispose();
  const view = new ActiveView();
  active = view;
  renderNav(found ? found.r.nav : null);
  const root = h("div", { class: "view" });
  replace(main, root);
  if (!found) {
    document.title = "Not found · PoundCake";
    replace(
      root,
      h("h1", { tabindex: "-1" }, "Page not found"),
      h("p", null, h("a", { href: "#/" }, "Back to the dashboard")),
    );
    return;
  }
  document.title = `${found.r.title} · PoundCake`;
  try {
    await found.r.view(root, context(view, found.match, query));
  } catch (error) {
    if (view.current && error.status !== 401) {
      root.append(
        h("p", { class: "error", role: "alert" }, `Could not load this page: ${error.message}`),
      );
    }
  }
  // After a route change, focus moves to the new page's heading (as a page load would reset it);
  // on the first load it stays at the top so that Tab reaches the skip link first.
  const heading = root.querySelector("h1");
  const firstLoad = !routed;
  routed = true;
  if (heading && !firstLoad && view.current && document.activeElement === document.body) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
  main.scrollIntoView();
});

window.addEventListener("hashchange", () => {
  document.activeElement?.blur?.();
  route();
});

async function boot() {
  try {
    setSession(await api("/ui/session"));
    startEvents();
  } catch (error) {
    // Not logged in: a cookie that has expired says so; a missing one needs no message.
    if (error.status === 401 && /expired/i.test(error.message)) loginNotice = error.message;
  }
  route();
}

boot();
