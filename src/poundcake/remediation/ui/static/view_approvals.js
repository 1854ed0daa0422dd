// #/approvals: CAB runs waiting for a person, with Approve and Deny; answered ones below.

import { api } from "./api.js";
import { badge, errorBox, formatTime, h, replace, routeLink, table } from "./dom.js";

function alertCell(approval) {
  const alert = approval.alert || {};
  return [
    routeLink(["alerts", approval.alert_id], alert.alertname || approval.alert_id),
    alert.severity ? h("span", { class: "muted" }, ` ${alert.severity}`) : null,
    alert.labels?.instance ? h("div", { class: "muted" }, alert.labels.instance) : null,
  ];
}

function answeredCell(approval) {
  if (!approval.answered_by) return "—";
  return [
    `${approval.answered_by} (${approval.answered_via})`,
    approval.comment ? h("div", { class: "muted" }, approval.comment) : null,
  ];
}

/** Approve and Deny buttons for one pending approval; ``done`` reloads with a message. */
function answerButtons(approval, message, done) {
  const buttons = [];
  const answer = async (verb, button) => {
    for (const each of buttons) each.disabled = true;
    try {
      const answered = await api(`/ui/api/approvals/${approval.id}/${verb}`, { method: "POST" });
      await done(`Approval ${answered.id} is ${answered.state} by ${answered.answered_by}.`);
    } catch (error) {
      for (const each of buttons) each.disabled = false;
      if (error.status !== 401) replace(message, errorBox(error.message));
      button.focus();
    }
  };
  for (const [verb, label, kind] of [
    ["approve", "Approve", ""],
    ["deny", "Deny", "danger"],
  ]) {
    const button = h(
      "button",
      {
        type: "button",
        class: kind || null,
        "aria-label": `${label} approval ${approval.id} (${approval.cab})`,
        dataset: { approval: String(approval.id), verb },
      },
      label,
    );
    button.addEventListener("click", () => answer(verb, button));
    buttons.push(button);
  }
  return h("div", { class: "toolbar" }, buttons);
}

function rows(items, message, done, withButtons) {
  return items.map((approval) => [
    String(approval.id),
    approval.cab,
    alertCell(approval),
    approval.reason,
    formatTime(approval.requested_at),
    formatTime(approval.expires_at),
    badge(approval.state),
    withButtons ? answerButtons(approval, message, done) : answeredCell(approval),
  ]);
}

export async function render(root, context) {
  const message = h("div", { "aria-live": "polite" });
  const body = h("div", { class: "results" });
  replace(root, h("h1", null, "Approvals"), message, body);
  const headings = ["ID", "CAB", "Alert", "Why", "Asked", "Expires", "State"];
  const load = async () => {
    try {
      const items = (await api("/ui/api/approvals")).items || [];
      if (!context.alive()) return;
      const done = async (text) => {
        replace(message, h("p", { class: "notice", role: "status" }, text));
        await load();
      };
      const pending = items.filter((item) => item.state === "pending");
      const answered = items.filter((item) => item.state !== "pending");
      replace(
        body,
        h(
          "section",
          { class: "card wide", "aria-labelledby": "a-pending" },
          h("h2", { id: "a-pending" }, "Waiting for an answer"),
          table(
            "Pending approvals",
            [...headings, "Answer"],
            rows(pending, message, done, true),
            "No approval is waiting.",
          ),
        ),
        h(
          "section",
          { class: "card wide", "aria-labelledby": "a-answered" },
          h("h2", { id: "a-answered" }, "Answered and expired"),
          table(
            "Answered approvals",
            [...headings, "Answered by"],
            rows(answered, message, done, false),
            "None yet.",
          ),
        ),
      );
    } catch (error) {
      if (context.alive() && error.status !== 401) replace(body, errorBox(error.message));
    }
  };
  context.live(context.debounced(load, 800));
  await load();
}
