// #/cabs: rules (enable/disable), CABs and their steps, and the CAB match test.

import { api } from "./api.js";
import { badge, errorBox, facts, field, h, jsonBlock, replace, table } from "./dom.js";

function samplePayload() {
  const now = new Date().toISOString();
  const labels = { alertname: "DiskFull", severity: "critical", instance: "db-1" };
  return JSON.stringify(
    {
      version: "4",
      groupKey: '{}:{alertname="DiskFull"}',
      status: "firing",
      receiver: "poundcake",
      groupLabels: { alertname: "DiskFull" },
      commonLabels: labels,
      commonAnnotations: {},
      externalURL: "http://alertmanager.example:9093",
      alerts: [
        {
          status: "firing",
          labels,
          annotations: { summary: "Disk is full" },
          startsAt: now,
          endsAt: "0001-01-01T00:00:00Z",
          fingerprint: "0123456789abcdef",
        },
      ],
    },
    null,
    2,
  );
}

function ruleToggle(rule, message) {
  const box = h("input", {
    type: "checkbox",
    checked: !!rule.enabled,
    "aria-label": `Enable rule ${rule.ref}`,
  });
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      const updated = await api(`/ui/api/rules/${encodeURIComponent(rule.ref)}/enabled`, {
        method: "PUT",
        body: { enabled: box.checked },
      });
      box.checked = !!updated.enabled;
      replace(
        message,
        h(
          "p",
          { class: "notice", role: "status" },
          `Rule ${rule.ref} is now ${updated.enabled ? "enabled" : "disabled"}.`,
        ),
      );
    } catch (error) {
      box.checked = !box.checked;
      if (error.status !== 401)
        replace(message, errorBox(`Could not change ${rule.ref}: ${error.message}`));
    } finally {
      box.disabled = false;
    }
  });
  return h("label", { class: "toggle" }, box, h("span", { "aria-hidden": "true" }, "Enabled"));
}

function rulesSection(rules) {
  const message = h("div", { class: "form-message" });
  return [
    message,
    table(
      "Rules",
      ["Enabled", "Rule", "Trigger", "Action", "CAB", "Description"],
      rules.map((rule) => [
        ruleToggle(rule, message),
        h("code", null, rule.ref),
        typeof rule.trigger === "object"
          ? (rule.trigger?.type ?? JSON.stringify(rule.trigger))
          : rule.trigger,
        rule.action?.ref,
        rule.cab,
        rule.description,
      ]),
      "No rules.",
    ),
  ];
}

function stepsTable(caption, steps, withExpected) {
  return table(
    caption,
    withExpected
      ? ["#", "Step", "Action", "Parameters", "Expected result"]
      : ["#", "Step", "Action", "Parameters"],
    (steps || []).map((step) => [
      String(step.order ?? ""),
      step.name,
      h("code", null, step.action ?? "—"),
      [
        step.error ? errorBox(`Cannot render: ${step.error}`) : null,
        jsonBlock(step.parameters ?? {}, `Parameters of ${step.name ?? step.action}`),
      ],
      ...(withExpected
        ? [step.expected_result ? jsonBlock(step.expected_result, "Expected result") : "—"]
        : []),
    ]),
    "No steps.",
  );
}

// Run safety (issue 21): every field with its value, defaults included.
function runSafetyFacts(safety) {
  const verify = safety.verify_within ? `within ${safety.verify_within} s` : "no";
  return [
    ["Silence while running", safety.silence ? "yes" : "no"],
    ["Verify the fix", verify],
    ["If unverified", safety.on_unverified ?? "—"],
    ["Idempotent", safety.idempotent ? "yes" : "no"],
    ["Resume abandoned runs", String(safety.retry?.on_abandoned ?? 0)],
  ];
}

function approvalText(guards) {
  const approval = guards?.approval ?? "none";
  const ttl = guards?.approval_ttl;
  if (approval === "none") return "none";
  const condition =
    typeof approval === "string" ? approval : `when ${JSON.stringify(approval)}`;
  return ttl === undefined ? condition : `${condition}; expires after ${ttl}`;
}

function cabCard(cab) {
  return h(
    "article",
    { class: "card cab", "aria-labelledby": `cab-${cab.name}` },
    h(
      "h3",
      { id: `cab-${cab.name}` },
      cab.name,
      " ",
      badge(cab.enabled === false ? "disabled" : "enabled"),
      cab.applied === false ? [" ", badge("not applied")] : null,
    ),
    cab.description ? h("p", null, cab.description) : null,
    facts([
      ["Alert name", cab.alertname ? h("code", null, String(cab.alertname)) : null],
      ["Severities", (cab.severities || []).length ? cab.severities.join(", ") : "any"],
      ["Rule", cab.rule_ref ? h("code", null, cab.rule_ref) : null],
      ...runSafetyFacts(cab.run_safety || {}),
      ["Guards", cab.guards_summary],
      ["Approval", approvalText(cab.guards)],
    ]),
    cab.guards ? jsonBlock(cab.guards, `Guard fields of ${cab.name}`) : null,
    stepsTable(`Steps of ${cab.name}`, cab.steps, true),
  );
}

function matchResults(answer) {
  const alerts = answer.alerts || [];
  if (!alerts.length) return h("p", { class: "empty" }, "The payload has no alerts.");
  return alerts.map((alert, index) =>
    h(
      "section",
      { class: "match card", "aria-label": `Alert ${index + 1}` },
      h(
        "h3",
        null,
        `Alert ${index + 1}: ${alert.labels?.alertname ?? "(no alertname)"} `,
        badge(alert.status),
      ),
      h(
        "p",
        { class: "labels" },
        Object.entries(alert.labels || {}).map(([key, value]) =>
          h("code", { class: "label" }, `${key}=${value}`),
        ),
      ),
      (alert.matches || []).length
        ? alert.matches.map((match) =>
            h(
              "div",
              { class: "match-cab" },
              h(
                "h4",
                null,
                "Matches CAB ",
                h("strong", null, match.cab),
                match.rule_ref ? [" (rule ", h("code", null, match.rule_ref), ")"] : null,
              ),
              match.error ? errorBox(`Could not render: ${match.error}`) : null,
              stepsTable(`Rendered steps of ${match.cab}`, match.steps, false),
            ),
          )
        : h("p", { class: "empty" }, "No CAB matches this alert."),
    ),
  );
}

function matchTest() {
  const payload = h("textarea", {
    name: "payload",
    rows: "14",
    spellcheck: "false",
    class: "code-input",
  });
  payload.value = samplePayload();
  const results = h("div", { class: "match-results", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Test match");
  const form = h(
    "form",
    { class: "match-form", "aria-labelledby": "c-match" },
    field("Alertmanager webhook payload (JSON)", payload, "Nothing is stored, dispatched or run."),
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(payload.value);
    } catch (error) {
      replace(results, errorBox(`The payload is not valid JSON: ${error.message}`));
      payload.focus();
      return;
    }
    submit.disabled = true;
    try {
      replace(
        results,
        matchResults(await api("/ui/api/cabs/match", { method: "POST", body: parsed })),
      );
    } catch (error) {
      if (error.status !== 401) replace(results, errorBox(error.message));
    } finally {
      submit.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "c-match" },
    h("h2", { id: "c-match" }, "CAB match test"),
    form,
    results,
  );
}

export async function render(root, context) {
  const rules = h("div");
  const cabs = h("div");
  replace(
    root,
    h("h1", null, "Rules and CABs"),
    matchTest(),
    h(
      "section",
      { class: "card", "aria-labelledby": "c-rules" },
      h("h2", { id: "c-rules" }, "Rules"),
      rules,
    ),
    h("section", { "aria-labelledby": "c-cabs" }, h("h2", { id: "c-cabs" }, "CABs"), cabs),
  );
  try {
    const [ruleList, cabList] = await Promise.all([api("/ui/api/rules"), api("/ui/api/cabs")]);
    if (!context.alive()) return;
    replace(rules, rulesSection(ruleList.items || []));
    const items = cabList.items || [];
    replace(cabs, items.length ? items.map(cabCard) : h("p", { class: "empty" }, "No CABs."));
  } catch (error) {
    if (context.alive() && error.status !== 401) replace(rules, errorBox(error.message));
  }
}
