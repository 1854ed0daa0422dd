// The guards' decisions and breakers, shown on an alert, on the dashboard and on CAB cards.

import { badge, formatTime, h, jsonBlock, routeLink, table } from "./dom.js";

/** One decision's "why", with what a shadow run would have run. */
function why(decision) {
  const steps = decision.rendered || [];
  return [
    decision.detail || "—",
    steps.length
      ? jsonBlock(
          steps.map((step) => ({
            step: step.order,
            action: step.action,
            parameters: step.parameters,
          })),
          `What ${decision.cab} would run`,
        )
      : null,
  ];
}

/** The decision log of one alert, or the newest decisions across alerts (with their alert). */
export function decisionsTable(caption, decisions, withAlert) {
  return table(
    caption,
    withAlert
      ? ["Decided", "Alert", "CAB", "Decision", "Reason", "Why"]
      : ["Decided", "CAB", "Decision", "Reason", "Why"],
    (decisions || []).map((decision) => [
      formatTime(decision.decided_at),
      ...(withAlert ? [routeLink(["alerts", decision.alert_id], decision.alert_id)] : []),
      decision.cab,
      badge(decision.decision),
      decision.reason,
      why(decision),
    ]),
    "No guard decisions recorded.",
  );
}

/** Storm breakers and blast radius scopes, open first. */
export function breakersTable(breakers) {
  const rank = (breaker) => (breaker.state === "open" ? 0 : 1);
  const sorted = [...(breakers || [])].sort((a, b) => rank(a) - rank(b));
  return table(
    "Breakers",
    ["Scope", "State", "Opened", "Last trip", "Trips", "Reason"],
    sorted.map((breaker) => [
      h("code", null, breaker.scope),
      badge(breaker.state),
      formatTime(breaker.opened_at),
      formatTime(breaker.tripped_at),
      String(breaker.trips),
      breaker.reason || "—",
    ]),
    "No breaker has tripped.",
  );
}
