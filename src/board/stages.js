// The stages view: one column per stage, one card per app. Values are set as text.

import { ago, badge, chip, el, fill } from "./view.js";

export const STAGES = ["review", "development", "staging", "production"];
export const NEXT = { review: "development", development: "staging", staging: "production", production: null };

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
