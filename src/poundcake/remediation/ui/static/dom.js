// DOM helpers. Server data only ever reaches the page as text nodes or attribute values set
// through DOM APIs (never as markup): alert labels and annotations are attacker-controlled.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function applyAttributes(node, attributes) {
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      node.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      node.textContent = String(value);
    } else if (name === "class") {
      node.className = String(value);
    } else if (name === "dataset") {
      Object.assign(node.dataset, value);
    } else if (
      name === "value" ||
      name === "checked" ||
      name === "selected" ||
      name === "disabled"
    ) {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
}

/** An HTML element: h("a", {href: "#/", class: "x"}, "text", otherNode). */
export function h(tag, attributes, ...children) {
  const node = document.createElement(tag);
  applyAttributes(node, attributes);
  return append(node, children);
}

/** An SVG element. */
export function svg(tag, attributes, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, String(value));
  }
  return append(node, children);
}

/** Replace everything inside ``node`` with ``children``. */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/**
 * ``replace`` for a part of a page drawn again while someone may be using it (live updates): a
 * focused link keeps the focus (found again by its href).
 */
export function redraw(node, ...children) {
  const focused = node.contains(document.activeElement) ? document.activeElement : null;
  const href = focused?.getAttribute("href");
  replace(node, ...children);
  if (href) {
    [...node.querySelectorAll("a")].find((link) => link.getAttribute("href") === href)?.focus();
  }
  return node;
}

/** A link to a client-side route; each path part is URI-encoded. */
export function routeLink(parts, text, attributes) {
  const href = "#/" + parts.map((part) => encodeURIComponent(String(part))).join("/");
  return h("a", { ...attributes, href }, text);
}

export function formatTime(iso) {
  if (!iso) return "—";
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return String(iso);
  return when.toLocaleString(undefined, { hour12: false });
}

export function formatSeconds(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const value = Number(seconds);
  if (value < 60) return `${value.toFixed(value < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(value / 60);
  return `${minutes} min ${Math.round(value % 60)} s`;
}

const STATUS_KIND = {
  succeeded: "good",
  remediated: "good",
  resolved: "good",
  processed: "good",
  enabled: "good",
  failed: "bad",
  timeout: "bad",
  abandoned: "bad",
  canceled: "warn",
  canceling: "warn",
  pausing: "warn",
  paused: "warn",
  disabled: "warn",
  "not applied": "warn",
  held: "warn",
  waiting: "warn",
  shadow: "warn",
  open: "bad",
  closed: "good",
  run: "good",
  firing: "bad",
  running: "busy",
  remediating: "busy",
  scheduled: "busy",
  requested: "busy",
  pending: "busy",
  resuming: "busy",
  delayed: "busy",
  approved: "good",
  denied: "bad",
  expired: "warn",
};

/** A status word with a colour that never carries meaning alone (the word is always shown). */
export function badge(status) {
  const text = status === null || status === undefined ? "—" : String(status);
  return h("span", { class: `badge badge-${STATUS_KIND[text] || "plain"}` }, text);
}

/** Pretty JSON in a <pre>, as text. */
export function jsonBlock(value, label) {
  const text = typeof value === "string" ? value : JSON.stringify(value ?? null, null, 2);
  return h("pre", { class: "code", tabindex: "0", "aria-label": label || null }, text);
}

/** A <dl> of [term, description] pairs (description may be a node). */
export function facts(pairs) {
  return h(
    "dl",
    { class: "facts" },
    pairs.map(([term, value]) => [h("dt", null, term), h("dd", null, value ?? "—")]),
  );
}

/** A table inside a scrolling wrapper; ``rows`` are arrays of cells (text or nodes). */
export function table(caption, headings, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty || "Nothing to show.");
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      null,
      h("caption", { class: "visually-hidden" }, caption),
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          headings.map((name) => h("th", { scope: "col" }, name)),
        ),
      ),
      h(
        "tbody",
        null,
        rows.map((cells) =>
          h(
            "tr",
            null,
            cells.map((cell) => h("td", null, cell ?? "—")),
          ),
        ),
      ),
    ),
  );
}

/** A labelled form field: returns [wrapper, control]. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const wrapper = h("div", { class: "field" }, h("label", { for: id }, label), control);
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    wrapper.append(h("span", { class: "hint", id: hintId }, hint));
  }
  return wrapper;
}

/** A <select> with ``choices`` (value or [value, text]); "" means any. */
export function select(name, choices, current) {
  return h(
    "select",
    { name },
    choices.map((choice) => {
      const [value, text] = Array.isArray(choice) ? choice : [choice, choice || "Any"];
      return h("option", { value, selected: value === (current || "") }, text);
    }),
  );
}

export function errorBox(message) {
  return h("p", { class: "error", role: "alert" }, message);
}
