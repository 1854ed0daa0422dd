// #/requests/<request_id>: the timeline of one request, from receipt to each step's result.

import { api } from "./api.js";
import { badge, errorBox, formatTime, h, jsonBlock, replace, routeLink } from "./dom.js";

const FINISHED = new Set(["succeeded", "failed", "timeout", "abandoned", "canceled"]);

function entry(kind, title, when, ...content) {
  return h(
    "li",
    { class: `event event-${kind}` },
    h(
      "div",
      { class: "event-head" },
      h("span", { class: "event-kind" }, kind),
      " ",
      h("strong", null, title),
      when ? [" ", h("time", { datetime: when }, formatTime(when))] : null,
    ),
    content,
  );
}

function stepOutput(result) {
  if (result === null || result === undefined) return h("p", { class: "muted" }, "No result yet.");
  if (typeof result === "object" && ("stdout" in result || "stderr" in result)) {
    return [
      result.stdout
        ? [h("h4", null, "stdout"), jsonBlock(String(result.stdout), "Standard output")]
        : null,
      result.stderr
        ? [h("h4", null, "stderr"), jsonBlock(String(result.stderr), "Standard error")]
        : null,
      "return_code" in result ? h("p", null, `Exit code ${result.return_code}`) : null,
    ];
  }
  return jsonBlock(result, "Result");
}

function stepEntry(step, index) {
  const extension = step.extension || {};
  const matched = extension.result_matched;
  return entry(
    "step",
    `Step ${extension.step_order ?? step.step_order ?? index + 1}: ${step.action}`,
    step.end_timestamp || step.start_timestamp,
    h("p", null, badge(step.status), " ", routeLink(["executions", step.id], "execution details")),
    extension.expected_result
      ? h(
          "p",
          null,
          "Expected result ",
          h("code", null, JSON.stringify(extension.expected_result)),
          matched === null || matched === undefined
            ? ""
            : matched
              ? " — matched"
              : " — NOT matched",
        )
      : null,
    h(
      "details",
      { class: "step-parameters" },
      h("summary", null, "Parameters"),
      jsonBlock(step.parameters, "Parameters"),
    ),
    h("div", { class: "step-output" }, stepOutput(step.result)),
  );
}

function remediationEntries(remediation) {
  if (!remediation) return [];
  const instance = remediation.trigger_instance;
  const items = [];
  if (instance) {
    items.push(
      entry(
        "trigger",
        `Trigger instance ${instance.trigger}`,
        instance.occurrence_time,
        h("p", null, badge(instance.status), " ", h("code", null, instance.id)),
      ),
    );
  }
  for (const enforcement of remediation.rule_enforcements || []) {
    items.push(
      entry(
        "rule",
        `Rule ${enforcement.rule}`,
        enforcement.enforced_at,
        h(
          "p",
          null,
          badge(enforcement.status),
          enforcement.failure_reason ? [" ", enforcement.failure_reason] : null,
        ),
      ),
    );
  }
  for (const workflow of remediation.executions || []) {
    items.push(
      entry(
        "workflow",
        `Workflow ${workflow.action}`,
        workflow.start_timestamp,
        h(
          "p",
          null,
          badge(workflow.status),
          " ",
          routeLink(["executions", workflow.id], "execution details"),
        ),
      ),
    );
    (workflow.steps || []).forEach((step, index) => items.push(stepEntry(step, index)));
    if (FINISHED.has(workflow.status)) {
      items.push(entry("finished", `Workflow ${workflow.status}`, workflow.end_timestamp));
    }
  }
  return items;
}

function timeline(trail) {
  const items = [];
  const call = trail.call;
  if (call) {
    items.push(
      entry(
        "received",
        `${call.method} ${call.path}`,
        call.received_at,
        h(
          "p",
          null,
          `Answered ${call.status_code ?? "—"} in ${call.duration_ms == null ? "—" : Number(call.duration_ms).toFixed(1)} ms`,
          call.error ? ` — ${call.error}` : "",
        ),
      ),
    );
  }
  for (const alert of trail.alerts || []) {
    const name = alert.name ?? alert.alert_name ?? "alert";
    items.push(
      entry(
        "alert",
        `Alert ${name}`,
        alert.delivery?.received_at,
        h(
          "p",
          null,
          routeLink(["alerts", alert.id], "episode"),
          " ",
          badge(alert.state),
          " ",
          alert.started_remediation
            ? "This request started the remediation."
            : "A repeat delivery of a known episode.",
        ),
        alert.state_reason ? h("p", { class: "muted" }, alert.state_reason) : null,
        runSafetyLine(alert),
      ),
    );
    if (alert.started_remediation) items.push(...remediationEntries(alert.remediation));
  }
  return items;
}

// Run safety (issue 21): the episode's silence and the verification of its fix.
function runSafetyLine(alert) {
  const parts = [];
  if (alert.silence)
    parts.push(`Silence ${alert.silence.silence_id ?? "(not created)"}: ${alert.silence.state}`);
  if (alert.verification)
    parts.push(`Fix ${alert.verification}: ${alert.verification_reason ?? ""}`);
  if (alert.abandoned_retries) parts.push(`Abandoned runs resumed: ${alert.abandoned_retries}`);
  return parts.length ? h("p", { class: "muted run-safety" }, parts.join(" · ")) : null;
}

function isComplete(trail) {
  const alerts = trail.alerts || [];
  if (!alerts.length) return false;
  return alerts.every((alert) => {
    if (!alert.started_remediation) return true;
    if (["unmatched", "remediated", "failed", "resolved"].includes(alert.state)) {
      return (alert.remediation?.executions || []).every((workflow) =>
        FINISHED.has(workflow.status),
      );
    }
    return false;
  });
}

export async function render(root, context) {
  const [requestId] = context.params;
  const summary = h("div", { class: "trail-summary", role: "status" });
  const list = h("ol", { class: "timeline", "aria-label": "Timeline" });
  replace(
    root,
    h("h1", null, "Request trail"),
    h("p", null, h("code", null, requestId)),
    summary,
    list,
  );
  let alertIds = new Set();
  let executionIds = new Set();
  const load = async () => {
    try {
      const body = await api(`/ui/api/requests/${encodeURIComponent(requestId)}`);
      if (!context.alive()) return;
      const trail = body.trail ?? body;
      alertIds = new Set((trail.alerts || []).map((alert) => alert.id));
      executionIds = new Set(
        (trail.alerts || []).flatMap((alert) =>
          (alert.remediation?.executions || []).flatMap((w) => [
            w.id,
            ...(w.steps || []).map((s) => s.id),
          ]),
        ),
      );
      const complete = isComplete(trail);
      root.dataset.complete = String(complete);
      replace(summary, complete ? "Complete." : "In progress: this page updates as the work runs.");
      replace(list, timeline(trail));
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(summary, errorBox(error.message));
    }
  };
  const reload = context.debounced(load, 300);
  context.live((type, data) => {
    if (
      type === "reconnected" ||
      data.request_id === requestId ||
      alertIds.has(data.id) ||
      alertIds.has(data.alert_id) ||
      executionIds.has(data.id)
    ) {
      reload();
    }
  });
  await load();
}
