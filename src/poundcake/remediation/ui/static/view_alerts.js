// #/alerts (filterable list of episodes) and #/alerts/<id> (one episode with its deliveries).

import { api } from "./api.js";
import { decisionsTable } from "./guards.js";
import {
  badge,
  errorBox,
  facts,
  field,
  formatTime,
  h,
  replace,
  routeLink,
  select,
  table,
} from "./dom.js";

const STATES = [
  "",
  "received",
  "matched",
  "unmatched",
  "remediating",
  "remediated",
  "failed",
  "resolved",
];
const SEVERITIES = ["", "critical", "warning", "info"];

export function alertName(alert) {
  return alert.name ?? alert.alert_name ?? alert.labels?.alertname ?? "(no name)";
}

function filterForm(context) {
  const query = context.query;
  const state = select("state", STATES, query.get("state"));
  const severity = h("input", {
    name: "severity",
    value: query.get("severity") || "",
    list: "severity-choices",
    autocomplete: "off",
  });
  const name = h("input", {
    name: "name",
    type: "search",
    value: query.get("name") || "",
    autocomplete: "off",
  });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter alerts" },
    field("State", state),
    field("Severity", severity),
    h(
      "datalist",
      { id: "severity-choices" },
      SEVERITIES.filter(Boolean).map((value) => h("option", { value })),
    ),
    field("Name contains", name),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("a", { href: "#/alerts", class: "button-link secondary" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {};
    for (const [key, value] of new FormData(form)) if (value) chosen[key] = value;
    context.navigate("alerts", chosen);
  });
  return form;
}

export async function renderList(root, context) {
  const results = h("div", { class: "results", "aria-live": "polite", "aria-busy": "true" });
  replace(root, h("h1", null, "Alerts"), filterForm(context), results);
  const load = async () => {
    try {
      const data = await api("/ui/api/alerts", {
        query: {
          state: context.query.get("state"),
          severity: context.query.get("severity"),
          name: context.query.get("name"),
          limit: context.query.get("limit") || 100,
        },
      });
      if (!context.alive()) return;
      const items = data.items || [];
      replace(
        results,
        h("p", { class: "muted" }, `${items.length} alert${items.length === 1 ? "" : "s"}`),
        table(
          "Alerts",
          ["Name", "Severity", "State", "Status", "CAB", "Instance", "Started", "Updated"],
          items.map((alert) => [
            routeLink(["alerts", alert.id], alertName(alert), { class: "alert-link" }),
            alert.severity,
            badge(alert.state),
            badge(alert.status),
            alert.cab_name,
            alert.labels?.instance,
            formatTime(alert.starts_at),
            formatTime(alert.updated_at),
          ]),
          "No alerts match these filters.",
        ),
      );
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(results, errorBox(error.message));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  context.live(context.debounced(load));
  await load();
}

function labelTable(caption, labels) {
  return table(
    caption,
    ["Name", "Value"],
    Object.entries(labels || {}).map(([key, value]) => [key, String(value)]),
    "None.",
  );
}

function deliveries(alert) {
  return table(
    "Deliveries",
    ["Received", "Request trail", "Status", "Started remediation"],
    (alert.deliveries || []).map((delivery) => [
      formatTime(delivery.received_at),
      routeLink(["requests", delivery.request_id], delivery.request_id, { class: "trail-link" }),
      badge(delivery.status),
      (delivery.started_remediation ?? delivery.request_id === alert.request_id) ? "yes" : "no",
    ]),
    "No deliveries recorded.",
  );
}

function detail(alert) {
  const workflow = alert.workflow_execution_id;
  return [
    h("h1", null, alertName(alert)),
    h(
      "section",
      { class: "card", "aria-labelledby": "a-facts" },
      h("h2", { id: "a-facts" }, "Episode"),
      facts([
        ["State", badge(alert.state)],
        ["Why", alert.state_reason],
        ["Status", badge(alert.status)],
        ["Severity", alert.severity],
        ["CAB", alert.cab_name],
        ["Verification", alert.verification ? badge(alert.verification) : "—"],
        ["Verification detail", alert.verification_reason],
        ["Abandoned runs resumed", String(alert.abandoned_retries ?? 0)],
        [
          "Silence",
          alert.silence
            ? `${alert.silence.state} (${alert.silence.silence_id ?? "not created"})`
            : "—",
        ],
        ["Fingerprint", h("code", null, alert.fingerprint ?? "—")],
        ["Started", formatTime(alert.starts_at)],
        ["Ended", formatTime(alert.ends_at)],
        [
          "First request",
          alert.request_id ? routeLink(["requests", alert.request_id], alert.request_id) : null,
        ],
        ["Workflow execution", workflow ? routeLink(["executions", workflow], workflow) : null],
        ["Updated", formatTime(alert.updated_at)],
      ]),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "a-deliveries" },
      h("h2", { id: "a-deliveries" }, "Deliveries"),
      deliveries(alert),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "a-decisions" },
      h("h2", { id: "a-decisions" }, "Guard decisions"),
      decisionsTable("Guard decisions", alert.decisions, false),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "a-labels" },
      h("h2", { id: "a-labels" }, "Labels"),
      labelTable("Labels", alert.labels),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "a-annotations" },
      h("h2", { id: "a-annotations" }, "Annotations"),
      labelTable("Annotations", alert.annotations),
    ),
    alert.remediation
      ? h(
          "section",
          { class: "card", "aria-labelledby": "a-remediation" },
          h("h2", { id: "a-remediation" }, "Remediation"),
          remediationSummary(alert.remediation),
        )
      : null,
  ];
}

function remediationSummary(remediation) {
  const executions = remediation.executions || [];
  if (!executions.length)
    return h("p", { class: "empty" }, "No remediation has run for this episode.");
  return table(
    "Remediation executions",
    ["Execution", "Action", "Status", "Steps"],
    executions.map((execution) => [
      routeLink(["executions", execution.id], execution.id),
      execution.action,
      badge(execution.status),
      String((execution.steps || []).length),
    ]),
  );
}

export async function renderDetail(root, context) {
  const [alertId] = context.params;
  const body = h("div", { class: "detail" });
  replace(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/alerts" }, "← All alerts")),
    body,
  );
  let executionIds = new Set();
  const load = async () => {
    try {
      const alert = await api(`/ui/api/alerts/${encodeURIComponent(alertId)}`);
      if (!context.alive()) return;
      executionIds = new Set(
        (alert.remediation?.executions || []).flatMap((e) => [
          e.id,
          ...(e.steps || []).map((s) => s.id),
        ]),
      );
      replace(body, detail(alert));
    } catch (error) {
      if (context.alive() && error.status !== 401)
        replace(body, h("h1", null, "Alert"), errorBox(error.message));
    }
  };
  const reload = context.debounced(load);
  context.live((type, data) => {
    if (
      type === "reconnected" ||
      data.id === alertId ||
      data.alert_id === alertId ||
      executionIds.has(data.id)
    )
      reload();
  });
  await load();
}
