// Drawing the board from its state. Every value is set as text (see view.js).

import { ago, badge, chip, el, fill } from "./view.js";

export const STAGES = ["review", "development", "staging", "production"];
export const NEXT = { review: "development", development: "staging", staging: "production", production: null };
export const FINAL = new Set(["successful", "failed", "partially_failed", "canceled", "rejected"]);

function latestTargetInto(state, appId) {
  let latest = null;
  for (const targets of state.targets.values()) {
    for (const target of targets) {
      if (target.app.id === appId && (!latest || target.created_at > latest.created_at)) latest = target;
    }
  }
  return latest;
}

function verificationLine(state, coupling) {
  if (!coupling.verification) return el("p", { class: "verification muted" }, "verification: none");
  const target = latestTargetInto(state, coupling.app.id);
  const verification = target && target.verification;
  const checks = coupling.verification.contexts.length + coupling.verification.http_checks.length;
  if (!verification) return el("p", { class: "verification" }, `verification: ${checks} check(s), not run yet`);
  return el("p", { class: "verification" }, "verification: ", badge(verification.state, verification.state));
}

function card(state, coupling, onPromote) {
  const release = coupling.release;
  const checks = state.checks.get(coupling.app.id);
  const drift = state.drift.get(coupling.app.id);
  const policy = coupling.promotion_policy || {};
  const badges = [];
  if (drift) {
    const keys = [...drift.config_keys.missing_on_target, ...drift.config_keys.missing_on_source];
    if (drift.image_differs || keys.length) {
      const parts = [];
      if (drift.image_differs) parts.push("image differs");
      if (keys.length) parts.push(`config keys differ: ${keys.join(", ")}`);
      badges.push(el("span", { class: "badge drift", title: `against ${drift.source}: ${parts.join("; ")}` }, `drift vs ${drift.source}`));
    }
  }
  if (policy.auto_promote) badges.push(badge("auto", "info"));
  if (policy.required_approvals) badges.push(badge(`${policy.required_approvals} approval(s)`, "info"));
  const next = NEXT[coupling.stage];
  return el(
    "article",
    { class: "card", "data-app": coupling.app.name },
    el("h3", {}, coupling.app.name),
    release
      ? el("p", { class: "release" }, `v${release.version} · `, el("span", { class: "image" }, release.image), ` · ${ago(release.created_at)}`)
      : el("p", { class: "release muted" }, "no release yet"),
    el(
      "ul",
      { class: "chips", "aria-label": "Required checks" },
      coupling.required_status_checks.contexts.map((context) => {
        const value = (checks && checks.states.get(context)) || "missing";
        return chip(`${context}: ${value}`, value);
      }),
    ),
    verificationLine(state, coupling),
    badges.length ? el("p", { class: "badges" }, badges) : null,
    next && release ? el("button", { type: "button", "data-key": `promote:${coupling.app.id}`, onclick: () => onPromote(coupling) }, `Promote to ${next}`) : null,
  );
}

/** Re-renders a region, keeping the keyboard focus on the same control. */
export function keepingFocus(render) {
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.key : null;
  render();
  if (focused) {
    const again = document.querySelector(`[data-key="${CSS.escape(focused)}"]`);
    if (again) again.focus();
  }
}

/** Draws one column per stage into `root`, one card per app. */
export function drawBoard(root, state, onPromote) {
  const columns = STAGES.map((stage) => {
    const couplings = state.couplings
      .filter((c) => c.stage === stage)
      .sort((a, b) => a.app.name.localeCompare(b.app.name));
    const frozen = couplings.find((c) => c.frozen);
    return el(
      "section",
      { class: "stage", "data-stage": stage, "aria-label": stage },
      el("h2", {}, stage),
      frozen ? el("p", { class: "freeze", role: "note" }, `Frozen until ${new Date(frozen.frozen.until).toLocaleString()}: ${frozen.frozen.reason}`) : null,
      couplings.map((coupling) => card(state, coupling, onPromote)),
    );
  });
  fill(root, columns);
}

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
