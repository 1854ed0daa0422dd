// #/: alerts by state, remediation success rate, executions over 7 days, recent activity.

import { api } from "./api.js";
import { breakersTable, decisionsTable } from "./guards.js";
import { errorBox, formatTime, h, replace, routeLink, svg, table } from "./dom.js";

const SERIES = [
  ["succeeded", "Succeeded"],
  ["failed", "Failed"],
  ["other", "Other"],
];

/** A stacked bar chart of executions per day, drawn as inline SVG, with the numbers as a table. */
export function executionsChart(days) {
  const width = 560;
  const height = 220;
  const pad = { top: 16, right: 12, bottom: 36, left: 36 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const totals = days.map((day) => SERIES.reduce((sum, [key]) => sum + (Number(day[key]) || 0), 0));
  const top = Math.max(1, ...totals);
  const step = plotWidth / Math.max(1, days.length);
  const barWidth = Math.min(48, step * 0.6);
  const y = (value) => pad.top + plotHeight - (value / top) * plotHeight;
  const summary = days
    .map(
      (day, index) =>
        `${day.date}: ${totals[index]} (${day.succeeded || 0} succeeded, ${day.failed || 0} failed)`,
    )
    .join("; ");
  const chart = svg(
    "svg",
    {
      viewBox: `0 0 ${width} ${height}`,
      class: "chart",
      role: "img",
      "aria-labelledby": "chart-title chart-desc",
      preserveAspectRatio: "xMidYMid meet",
    },
    svg("title", { id: "chart-title" }, "Executions per day, last 7 days"),
    svg("desc", { id: "chart-desc" }, summary || "No executions."),
    svg("line", { x1: pad.left, x2: width - pad.right, y1: y(0), y2: y(0), class: "axis" }),
    svg(
      "text",
      { x: pad.left - 6, y: y(top) + 4, class: "tick", "text-anchor": "end" },
      String(top),
    ),
    svg("text", { x: pad.left - 6, y: y(0) + 4, class: "tick", "text-anchor": "end" }, "0"),
    days.map((day, index) => {
      const x = pad.left + index * step + (step - barWidth) / 2;
      let base = 0;
      const bars = SERIES.map(([key]) => {
        const value = Number(day[key]) || 0;
        const rect = svg("rect", {
          x,
          y: y(base + value),
          width: barWidth,
          height: Math.max(0, y(base) - y(base + value)),
          class: `bar bar-${key}`,
        });
        base += value;
        return rect;
      });
      return [
        bars,
        svg(
          "text",
          {
            x: x + barWidth / 2,
            y: height - pad.bottom + 16,
            class: "tick",
            "text-anchor": "middle",
          },
          String(day.date).slice(5),
        ),
        totals[index]
          ? svg(
              "text",
              {
                x: x + barWidth / 2,
                y: y(totals[index]) - 4,
                class: "tick",
                "text-anchor": "middle",
              },
              String(totals[index]),
            )
          : null,
      ];
    }),
  );
  const legend = h(
    "ul",
    { class: "legend" },
    SERIES.map(([key, text]) =>
      h("li", null, h("span", { class: `swatch bar-${key}`, "aria-hidden": "true" }), text),
    ),
  );
  const numbers = h(
    "details",
    { class: "chart-data" },
    h("summary", null, "Show the numbers"),
    table(
      "Executions per day",
      ["Date", ...SERIES.map(([, text]) => text)],
      days.map((day) => [day.date, ...SERIES.map(([key]) => String(day[key] ?? 0))]),
    ),
  );
  return h("figure", { class: "chart-figure" }, chart, legend, numbers);
}

function alertsByState(counts) {
  const entries = Object.entries(counts || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("p", { class: "empty" }, "No alerts yet.");
  return h(
    "ul",
    { class: "stat-list" },
    entries.map(([state, count]) =>
      h(
        "li",
        null,
        h(
          "a",
          { href: `#/alerts?state=${encodeURIComponent(state)}` },
          h("span", { class: "stat-number" }, String(count)),
          " ",
          state,
        ),
      ),
    ),
  );
}

function successRate(remediation) {
  const rate = remediation?.success_rate;
  const shown = rate === null || rate === undefined ? "—" : `${Math.round(rate * 1000) / 10}%`;
  return [
    h("p", { class: "big-number" }, shown),
    h(
      "p",
      { class: "muted" },
      `${remediation?.remediated ?? 0} remediated, ${remediation?.failed ?? 0} failed`,
    ),
  ];
}

function recentLink(item) {
  if (item.execution_id) return routeLink(["executions", item.execution_id], item.summary);
  if (item.request_id) return routeLink(["requests", item.request_id], item.summary);
  if (item.alert_id) return routeLink(["alerts", item.alert_id], item.summary);
  return item.summary;
}

function recent(items) {
  if (!items?.length) return h("p", { class: "empty" }, "Nothing has happened yet.");
  return h(
    "ol",
    { class: "activity" },
    items.map((item) =>
      h(
        "li",
        null,
        h("time", { datetime: item.at }, formatTime(item.at)),
        " ",
        h("span", { class: "kind" }, item.kind),
        " ",
        recentLink(item),
      ),
    ),
  );
}

export async function render(root, context) {
  const body = h("div", { class: "dashboard" });
  replace(root, h("h1", null, "Dashboard"), body);
  const load = async () => {
    try {
      const data = await api("/ui/api/dashboard");
      if (!context.alive()) return;
      replace(
        body,
        h(
          "section",
          { class: "card", "aria-labelledby": "d-states" },
          h("h2", { id: "d-states" }, "Alerts by state"),
          alertsByState(data.alerts_by_state),
        ),
        h(
          "section",
          { class: "card", "aria-labelledby": "d-rate" },
          h("h2", { id: "d-rate" }, "Remediation success rate"),
          successRate(data.remediation),
        ),
        h(
          "section",
          { class: "card wide", "aria-labelledby": "d-chart" },
          h("h2", { id: "d-chart" }, "Executions, last 7 days"),
          executionsChart(data.executions_per_day || []),
        ),
        h(
          "section",
          { class: "card wide", "aria-labelledby": "d-breakers" },
          h("h2", { id: "d-breakers" }, "Storm breakers"),
          breakersTable(data.breakers),
        ),
        h(
          "section",
          { class: "card wide", "aria-labelledby": "d-decisions" },
          h("h2", { id: "d-decisions" }, "Recent guard decisions (runs, shadow runs, holds)"),
          decisionsTable("Recent guard decisions", data.decisions, true),
        ),
        h(
          "section",
          { class: "card wide", "aria-labelledby": "d-recent" },
          h("h2", { id: "d-recent" }, "Recent activity"),
          recent(data.recent),
        ),
      );
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(body, errorBox(error.message));
    }
  };
  context.live(context.debounced(load, 800));
  await load();
}
