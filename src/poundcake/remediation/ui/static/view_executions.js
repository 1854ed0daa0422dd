// #/executions (filters like ``st2 execution list``, pagination) and #/executions/<id> (details,
// live output and task tree, re-run, cancel, pause and resume).

import { api } from "./api.js";
import {
  badge,
  errorBox,
  facts,
  field,
  formatSeconds,
  formatTime,
  h,
  jsonBlock,
  redraw,
  replace,
  routeLink,
  select,
  table,
} from "./dom.js";
import { taskTree, treeExecutionIds } from "./view_tasks.js";

const STATUSES = [
  "",
  "requested",
  "scheduled",
  "delayed",
  "running",
  "succeeded",
  "failed",
  "timeout",
  "abandoned",
  "canceling",
  "canceled",
  "pending",
  "pausing",
  "paused",
  "resuming",
];
const CANCELABLE = new Set([
  "requested",
  "scheduled",
  "delayed",
  "running",
  "pausing",
  "paused",
  "resuming",
  "pending",
]);
const PAUSED = new Set(["pausing", "paused"]);
const FINISHED = new Set(["succeeded", "failed", "timeout", "abandoned", "canceled"]);
const TEXT_FILTERS = [
  ["action", "Action", "e.g. core.local"],
  ["user", "User", null],
  ["trigger_instance", "Trigger instance", null],
  ["rule", "Rule", "e.g. poundcake_cabs.disk_full"],
  ["parent", "Parent execution", null],
  ["task_execution", "Workflow task execution", null],
];
const PAGE_SIZES = ["25", "50", "100"];

/** "2026-01-02T03:04" (a datetime-local value, local time) -> ISO UTC, and back. */
function localToIso(value) {
  if (!value) return "";
  const when = new Date(value);
  return Number.isNaN(when.getTime()) ? "" : when.toISOString();
}

function isoToLocal(value) {
  if (!value) return "";
  const when = new Date(value);
  if (Number.isNaN(when.getTime())) return "";
  const shifted = new Date(when.getTime() - when.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

function filterForm(context) {
  const query = context.query;
  const controls = TEXT_FILTERS.map(([name, label, hint]) =>
    field(
      label,
      h("input", { name, value: query.get(name) || "", autocomplete: "off", placeholder: hint }),
      null,
    ),
  );
  const after = h("input", {
    name: "timestamp_gt",
    type: "datetime-local",
    value: isoToLocal(query.get("timestamp_gt")),
  });
  const before = h("input", {
    name: "timestamp_lt",
    type: "datetime-local",
    value: isoToLocal(query.get("timestamp_lt")),
  });
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter executions" },
    controls,
    field("Status", select("status", STATUSES, query.get("status"))),
    field("Started after", after),
    field("Started before", before),
    field(
      "Per page",
      select(
        "limit",
        PAGE_SIZES.map((size) => [size, size]),
        query.get("limit") || "50",
      ),
    ),
    h(
      "div",
      { class: "filter-actions" },
      h("button", { type: "submit" }, "Apply filters"),
      h("a", { href: "#/executions", class: "button-link secondary" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = {};
    for (const [key, value] of new FormData(form)) {
      const converted = key.startsWith("timestamp_") ? localToIso(value) : value;
      if (converted) chosen[key] = converted;
    }
    context.navigate("executions", chosen);
  });
  return form;
}

function pager(context, offset, limit, shown, total) {
  const go = (newOffset) => () => {
    const query = Object.fromEntries(context.query);
    query.offset = String(Math.max(0, newOffset));
    context.navigate("executions", query);
  };
  const first = total ? offset + 1 : 0;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h(
      "button",
      { type: "button", class: "secondary", disabled: offset <= 0, onclick: go(offset - limit) },
      "← Newer",
    ),
    h("span", null, `${first}–${offset + shown} of ${total}`),
    h(
      "button",
      {
        type: "button",
        class: "secondary",
        disabled: offset + shown >= total,
        onclick: go(offset + limit),
      },
      "Older →",
    ),
  );
}

export async function renderList(root, context) {
  const results = h("div", { class: "results" });
  replace(root, h("h1", null, "Executions"), filterForm(context), results);
  const limit = Number(context.query.get("limit") || 50);
  const offset = Number(context.query.get("offset") || 0);
  const load = async () => {
    try {
      const query = Object.fromEntries(context.query);
      const data = await api("/ui/api/executions", { query: { ...query, limit, offset } });
      if (!context.alive()) return;
      const items = data.items || [];
      replace(
        results,
        table(
          "Executions",
          ["Execution", "Action", "Status", "User", "Started", "Took", "Request"],
          items.map((execution) => [
            routeLink(["executions", execution.id], execution.id, { class: "execution-link" }),
            execution.action,
            badge(execution.status),
            execution.user,
            formatTime(execution.start_timestamp),
            formatSeconds(execution.elapsed_seconds),
            execution.request_id ? routeLink(["requests", execution.request_id], "trail") : null,
          ]),
          "No executions match these filters.",
        ),
        pager(context, offset, limit, items.length, data.total ?? items.length),
      );
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(results, errorBox(error.message));
    }
  };
  context.live(context.debounced(load, 600));
  await load();
}

function outputText(items) {
  return (items || []).map((item) => String(item.data ?? "")).join("");
}

/** "Execution is now <status>." in ``message``, focused so that the focus is not lost while
 * the button that asked is disabled; it follows the status from then on. */
function announceStatus(message, status) {
  const notice = h(
    "p",
    { class: "notice", role: "status", tabindex: "-1" },
    `Execution is now ${status}.`,
  );
  replace(message, notice);
  message.dataset.status = status;
  return notice;
}

/** A button that POSTs ``verb`` for the execution and reports the new status in ``message``. */
function statusButton(executionId, { label, verb, danger }, message, reload) {
  const button = h("button", { type: "button", class: danger ? "danger" : "secondary" }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const answer = await api(`/ui/api/executions/${encodeURIComponent(executionId)}/${verb}`, {
        method: "POST",
        body: {},
      });
      announceStatus(message, answer.status).focus();
      reload();
    } catch (error) {
      if (error.status !== 401) replace(message, errorBox(`${label} failed: ${error.message}`));
      delete message.dataset.status;
      button.disabled = false;
      button.focus();
    }
  });
  return button;
}

/**
 * Re-run, pause, resume and cancel, made once for the view: ``update(execution)`` enables what
 * the execution's status allows (pause and resume are shown for workflows that can pause).
 */
function toolbar(executionId, context, message, reload) {
  const rerun = h("button", { type: "button" }, "Re-run");
  rerun.addEventListener("click", async () => {
    rerun.disabled = true;
    try {
      const created = await api(`/ui/api/executions/${encodeURIComponent(executionId)}/rerun`, {
        method: "POST",
        body: {},
      });
      context.navigate(`executions/${encodeURIComponent(created.id)}`);
    } catch (error) {
      if (error.status !== 401) replace(message, errorBox(`Re-run failed: ${error.message}`));
      rerun.disabled = false;
    }
  });
  const button = (options) => statusButton(executionId, options, message, reload);
  const pause = button({ label: "Pause", verb: "pause" });
  const resume = button({ label: "Resume", verb: "resume" });
  const cancel = button({ label: "Cancel", verb: "cancel", danger: true });
  const node = h("div", { class: "toolbar", hidden: true }, rerun, pause, resume, cancel);
  const update = (execution) => {
    const status = execution.status;
    node.hidden = false;
    pause.hidden = resume.hidden = !execution.pausable;
    pause.disabled = status !== "running";
    resume.disabled = !PAUSED.has(status);
    cancel.disabled = !CANCELABLE.has(status);
  };
  return { node, update };
}

function summary(execution) {
  return facts([
    ["Status", badge(execution.status)],
    ["Action", execution.action],
    ["Runner", execution.runner?.name ?? execution.runner_type ?? execution.runner],
    ["Started", formatTime(execution.start_timestamp)],
    ["Ended", formatTime(execution.end_timestamp)],
    [
      "Request",
      execution.request_id
        ? routeLink(["requests", execution.request_id], execution.request_id)
        : null,
    ],
    [
      "Alert",
      execution.alert_id ? routeLink(["alerts", execution.alert_id], execution.alert_id) : null,
    ],
    [
      "Parent",
      parentOf(execution)
        ? routeLink(["executions", parentOf(execution)], parentOf(execution))
        : null,
    ],
  ]);
}

function card(id, title, body) {
  return h(
    "section",
    { class: "card", "aria-labelledby": id },
    h("h2", { id }, title),
    body,
  );
}

export async function renderDetail(root, context) {
  const [executionId] = context.params;
  const message = h("div", { class: "form-message", "aria-live": "polite" });
  const reload = context.debounced(() => load(), 300);
  const actions = toolbar(executionId, context, message, reload);
  const head = h("div");
  const parameters = h("div");
  const output = h("pre", {
    class: "code output",
    tabindex: "0",
    "aria-label": "Execution output",
    "aria-live": "off",
  });
  const result = h("div");
  const tasks = h("div");
  const tasksTitle = h("span", null, "Tasks");
  const tasksCard = card("x-tasks", tasksTitle, tasks);
  tasksCard.hidden = true;
  replace(
    root,
    h("p", { class: "breadcrumb" }, h("a", { href: "#/executions" }, "← All executions")),
    h("h1", null, "Execution ", h("code", null, executionId)),
    actions.node,
    message,
    head,
    tasksCard,
    card("x-output", "Output", output),
    card("x-result", "Result", result),
    card("x-parameters", "Parameters", parameters),
  );
  let childIds = new Set();
  let treeIds = new Set();
  let status = null;
  let hasTasks = false;
  let shownTree = null;
  let treeRequests = 0;
  const loadOutput = async () => {
    const data = await api(`/ui/api/executions/${encodeURIComponent(executionId)}/output`);
    if (context.alive())
      output.textContent =
        outputText(data.items) || (FINISHED.has(status) ? "(no output)" : "(no output yet)");
  };
  const loadTasks = async () => {
    tasksCard.hidden = !hasTasks;
    if (!hasTasks) return;
    const request = ++treeRequests;
    try {
      const tree = await api(`/ui/api/executions/${encodeURIComponent(executionId)}/tasks`);
      const text = JSON.stringify(tree);
      // An older answer that arrives late, or one that changes nothing, is not drawn.
      if (!context.alive() || request !== treeRequests || text === shownTree) return;
      shownTree = text;
      treeIds = treeExecutionIds(tree);
      redraw(tasks, taskTree(tree));
    } catch (error) {
      if (context.alive() && request === treeRequests && error.status !== 401) {
        shownTree = null;
        replace(tasks, errorBox(error.message));
      }
    }
  };
  const load = async () => {
    try {
      const execution = await api(`/ui/api/executions/${encodeURIComponent(executionId)}`);
      if (!context.alive()) return;
      status = execution.status;
      root.dataset.status = status;
      if (message.dataset.status && message.dataset.status !== status) {
        const focused = message.contains(document.activeElement);
        const notice = announceStatus(message, status);
        if (focused) notice.focus();
      }
      childIds = new Set(execution.children || []);
      hasTasks = execution.workflow || childIds.size > 0;
      tasksTitle.textContent = execution.workflow ? "Tasks" : "Child executions";
      actions.update(execution);
      replace(head, summary(execution));
      replace(
        result,
        jsonBlock(execution.result, "Result"),
        execution.log?.length
          ? h(
              "details",
              null,
              h("summary", null, "Status history"),
              jsonBlock(execution.log, "Status history"),
            )
          : null,
      );
      replace(parameters, jsonBlock(execution.parameters, "Parameters"));
      await Promise.all([loadOutput(), loadTasks()]);
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(head, errorBox(error.message));
    }
  };
  // A workflow's tasks may change many times a second: the tree is drawn at most once a second.
  const reloadTasks = context.throttled(loadTasks, 1000);
  context.live((type, data) => {
    if (type === "reconnected" || data.id === executionId) {
      reload();
    } else if (
      hasTasks &&
      (childIds.has(data.id) ||
        data.parent === executionId ||
        treeIds.has(data.id) ||
        treeIds.has(data.parent))
    ) {
      // A task, a new task or a sub-workflow's task: only the tree changes.
      reloadTasks();
    }
  });
  // Output has no event of its own: while the execution runs, its output is fetched every 2 s.
  const poll = window.setInterval(() => {
    if (status && !FINISHED.has(status)) loadOutput().catch(() => {});
  }, 2000);
  context.cleanup(() => window.clearInterval(poll));
  await load();
}

function parentOf(execution) {
  return execution.parent ?? execution.context?.parent?.execution_id ?? null;
}
