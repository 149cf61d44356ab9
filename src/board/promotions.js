// The promotions view: in flight, recent, and a promotion's plan. Values are set as text.

import { ago, badge, el, fill } from "./view.js";

export const FINAL = new Set(["successful", "failed", "partially_failed", "canceled", "rejected"]);

function appName(state, id, fallback) {
  const coupling = state.couplings.find((c) => c.app.id === id);
  return coupling ? coupling.app.name : fallback;
}

function promotionItem(state, actions, promotion) {
  const source = appName(state, promotion.source.app.id, promotion.source.app.name);
  const targets = state.targets.get(promotion.id) || [];
  const awaiting = promotion.status === "awaiting_approval";
  const voted = (promotion.approvals || []).map((a) => a.by);
  const mayAct = awaiting && actions.mayVote() && promotion.created_by !== state.account.name && !voted.includes(state.account.name);
  return el(
    "li",
    { class: "promotion", "data-promotion": promotion.id, "data-status": promotion.status },
    el("p", {}, el("strong", {}, `${source} v${promotion.source.release.version}`), " ", badge(promotion.status, promotion.status)),
    el("p", { class: "muted" }, `by ${promotion.created_by} · ${ago(promotion.created_at)}`),
    el(
      "ul",
      { class: "targets" },
      targets.map((t) => el("li", {}, t.app.name, badge(t.status, t.status), t.error_message ? el("span", { class: "muted" }, t.error_message) : null)),
    ),
    awaiting ? el("p", { class: "muted" }, `approvals ${voted.length} of ${promotion.required_approvals}`) : null,
    mayAct
      ? el(
          "p",
          { class: "row" },
          el("button", { type: "button", class: "primary", "data-key": `approve:${promotion.id}`, onclick: () => actions.approve(promotion) }, "Approve"),
          el("button", { type: "button", class: "danger", "data-key": `reject:${promotion.id}`, onclick: () => actions.reject(promotion) }, "Reject"),
        )
      : null,
  );
}

/** Draws the promotions in flight and the recent ones. */
export function drawPromotions(inFlightList, recentList, state, actions) {
  const all = [...state.promotions.values()].sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
  const inFlight = all.filter((p) => !FINAL.has(p.status));
  const recent = all.filter((p) => FINAL.has(p.status)).slice(0, 10);
  fill(inFlightList, inFlight.length ? inFlight.map((p) => promotionItem(state, actions, p)) : el("li", { class: "muted" }, "Nothing in flight."));
  fill(recentList, recent.length ? recent.map((p) => promotionItem(state, actions, p)) : el("li", { class: "muted" }, "No promotions yet."));
}

/** The dry run's plan, as a list. */
export function planView(plan) {
  const list = (items) => el("ul", {}, items.map((item) => el("li", {}, item)));
  return el(
    "div",
    { class: "plan" },
    el("p", {}, "Targets:"),
    list(plan.targets.map((t) => `${t.app.name}${t.busy_with ? " (waits for another promotion)" : ""}${t.verification ? " · verified after deploy" : ""}`)),
    plan.checks.length ? el("p", {}, "Checks:") : null,
    plan.checks.length ? list(plan.checks.map((c) => `${c.check ? c.check.context : c.context}: ${c.satisfied ? "met" : "unmet"}`)) : null,
    (plan.drift || []).length ? el("p", {}, "Config key drift (shown, not blocking):") : null,
    (plan.drift || []).length
      ? list(plan.drift.map((d) => `${d.app.name}: target lacks [${d.missing_on_target.join(", ")}], source lacks [${d.missing_on_source.join(", ")}]`))
      : null,
    plan.required_approvals ? el("p", {}, `Needs ${plan.required_approvals} approval(s) before it runs.`) : null,
  );
}
