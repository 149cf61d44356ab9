// The pipeline board: one column per stage, one card per app, promotions in flight and
// recent ones, kept current by the pipeline's event stream.

import { ApiError, call, forgetToken, newKey, readEvents, saveToken, savedToken, seg } from "./api.js";
import { drawPromotions, planView } from "./promotions.js";
import { NEXT, STAGES, drawBoard } from "./stages.js";
import { el, fill, keepingFocus, refusalLines } from "./view.js";

const $ = (id) => document.getElementById(id);

const state = {
  account: null,
  pipelines: [],
  pipeline: null,
  couplings: [],
  /** app id → {release: id, states: Map(context → state)} */
  checks: new Map(),
  /** app id → the diff of its stage against the previous stage's first app */
  drift: new Map(),
  promotions: new Map(),
  /** promotion id → its targets */
  targets: new Map(),
  lastEventId: null,
  stream: null,
};

function notice(text) {
  const node = $("notice");
  node.hidden = !text;
  node.textContent = text || "";
}

function needsToken() {
  return document.querySelector('meta[name="pipelines-token"]').content !== "none";
}

function mayVote() {
  return state.account && ["write", "admin"].includes(state.account.role);
}

/** Asks for a token, then starts again. */
function askForToken(reason) {
  $("token-reason").textContent = reason || "This server needs a token to show its pipelines.";
  $("token-input").value = "";
  const dialog = $("token-dialog");
  if (!dialog.open) dialog.showModal();
}

/** Handles a failed call: a 401 asks for a token again, a 403 names the role needed. */
function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    forgetToken();
    stopStream();
    askForToken("The server refused the token. Enter another one.");
    return;
  }
  if (error instanceof ApiError && error.status === 403) {
    notice(`Not allowed: ${error.message}`);
    return;
  }
  notice(error.message || String(error));
}

async function start() {
  notice("");
  if (needsToken() && !savedToken()) {
    askForToken();
    return;
  }
  try {
    state.account = await call("GET", "/account");
    fill($("who"), `${state.account.name} (${state.account.role})`);
    $("sign-out").hidden = !savedToken();
    state.pipelines = await call("GET", "/pipelines");
  } catch (error) {
    failed(error);
    return;
  }
  const select = $("pipeline-select");
  fill(select, state.pipelines.map((p) => el("option", { value: p.name }, p.name)));
  if (state.pipelines.length === 0) {
    fill($("board"), el("p", { class: "muted" }, "No pipelines yet."));
    return;
  }
  const wanted = decodeURIComponent(location.hash.slice(1));
  const chosen = state.pipelines.find((p) => p.name === wanted) || state.pipelines[0];
  select.value = chosen.name;
  await show(chosen);
}

async function show(pipeline) {
  stopStream();
  state.pipeline = pipeline;
  state.lastEventId = null;
  state.checks.clear();
  state.drift.clear();
  state.promotions.clear();
  state.targets.clear();
  if (location.hash.slice(1) !== pipeline.name) history.replaceState(null, "", `#${seg(pipeline.name)}`);
  openStream();
}

// ---- loading -------------------------------------------------------------------------

async function reloadEverything() {
  await Promise.all([reloadCouplings(), reloadPromotions()]);
}

async function reloadCouplings() {
  const pipeline = state.pipeline;
  const couplings = await call("GET", `/pipelines/${seg(pipeline.id)}/pipeline-couplings`);
  if (state.pipeline !== pipeline) return;
  state.couplings = couplings;
  renderBoard();
  performance.mark("board-cards-drawn");
  await Promise.all([reloadChecks(), reloadDrift()]);
  renderBoard();
}

async function reloadChecks() {
  await Promise.all(
    state.couplings.map(async (coupling) => {
      const release = coupling.release;
      if (!release) {
        state.checks.delete(coupling.app.id);
        return;
      }
      const known = state.checks.get(coupling.app.id);
      if (known && known.release === release.id) return;
      const answer = await call("GET", `/apps/${seg(coupling.app.id)}/releases/${seg(release.id)}/statuses`);
      const states = new Map(answer.statuses.map((s) => [s.context, s.state]));
      state.checks.set(coupling.app.id, { release: release.id, states });
    }),
  );
}

async function reloadDrift() {
  const drift = new Map();
  await Promise.all(
    STAGES.slice(0, 3).map(async (from) => {
      const sources = state.couplings
        .filter((c) => c.stage === from && c.release)
        .sort((a, b) => a.app.name.localeCompare(b.app.name));
      const into = state.couplings.some((c) => c.stage === NEXT[from]);
      if (sources.length === 0 || !into) return;
      const source = sources[0].app;
      try {
        const query = `from=${seg(from)}&source=${seg(source.id)}`;
        const diff = await call("GET", `/pipelines/${seg(state.pipeline.id)}/diff?${query}`);
        for (const target of diff.targets) drift.set(target.app.id, { source: source.name, ...target });
      } catch (error) {
        if (!(error instanceof ApiError) || error.status >= 500 || error.status === 401) throw error;
      }
    }),
  );
  state.drift = drift;
}

async function reloadPromotions() {
  const pipeline = state.pipeline;
  const list = await call("GET", `/pipeline-promotions?pipeline=${seg(pipeline.id)}&page_size=15`);
  if (state.pipeline !== pipeline) return;
  state.promotions = new Map(list.map((p) => [p.id, p]));
  await Promise.all(list.map((p) => reloadTargets(p.id)));
  renderPromotions();
  renderBoard();
}

async function reloadTargets(promotionId) {
  const targets = await call("GET", `/pipeline-promotions/${seg(promotionId)}/promotion-targets`);
  state.targets.set(promotionId, targets);
}

// ---- the live stream -----------------------------------------------------------------

function stopStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  $("live").classList.remove("on");
}

async function openStream() {
  const controller = new AbortController();
  state.stream = controller;
  const pipeline = state.pipeline;
  let wait = 500;
  while (!controller.signal.aborted) {
    try {
      await readEvents(
        `/pipelines/${seg(pipeline.id)}/events`,
        state.lastEventId,
        controller.signal,
        () => {
          $("live").textContent = "live";
          $("live").classList.add("on");
          wait = 500;
          // Loaded once the stream is open, so that no change falls between the two.
          if (state.lastEventId === null) reloadEverything().catch(failed);
        },
        (message) => received(message),
      );
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        failed(error);
        return;
      }
    }
    $("live").textContent = "reconnecting…";
    $("live").classList.remove("on");
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(wait * 2, 10000);
  }
}

let reloadTimer = null;
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => reloadCouplings().catch(failed), 50);
}

function received(message) {
  if (message.id !== null) state.lastEventId = message.id;
  const data = message.data;
  const kind = message.event;
  if (kind === "reset") {
    reloadEverything().catch(failed);
    return;
  }
  const resource = kind.split(".")[0];
  if (resource === "status") {
    const known = data.app && state.checks.get(data.app.id);
    if (known && data.release && known.release === data.release.id) {
      known.states.set(data.context, data.state);
      renderBoard();
    }
    reloadSoon();
  } else if (resource === "promotion" || resource === "approval") {
    if (data.pipeline) {
      state.promotions.set(data.id, data);
      if (!state.targets.has(data.id)) {
        reloadTargets(data.id).then(renderPromotions).catch(failed);
      }
      renderPromotions();
    }
  } else if (resource === "target") {
    const id = data.pipeline_promotion && data.pipeline_promotion.id;
    if (id) {
      const targets = (state.targets.get(id) || []).filter((t) => t.id !== data.id);
      targets.push(data);
      state.targets.set(id, targets);
      renderPromotions();
      renderBoard();
    }
    if (["succeeded", "failed"].includes(data.status)) reloadSoon();
  } else {
    reloadSoon();
  }
}

// ---- rendering -----------------------------------------------------------------------

function renderBoard() {
  keepingFocus(() => drawBoard($("board"), state, promote));
}

function renderPromotions() {
  keepingFocus(() => drawPromotions($("in-flight"), $("recent"), state, { mayVote, approve, reject }));
}

// ---- actions -------------------------------------------------------------------------

let pendingPromotion = null;

async function promote(coupling) {
  const dialog = $("promote-dialog");
  const body = $("promote-body");
  const confirm = $("promote-confirm");
  const next = NEXT[coupling.stage];
  fill($("promote-title"), `Promote ${coupling.app.name} v${coupling.release.version} to ${next}`);
  fill(body, el("p", { class: "muted" }, "Checking what the promotion would do…"));
  confirm.disabled = true;
  const request = {
    pipeline: { id: state.pipeline.id },
    source: { app: { id: coupling.app.id }, release: { id: coupling.release.id } },
  };
  pendingPromotion = { request, key: newKey() };
  dialog.showModal();
  try {
    const plan = await call("POST", "/pipeline-promotions", { ...request, dry_run: true });
    fill(body, planView(plan));
    confirm.disabled = false;
    confirm.focus();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      dialog.close();
      failed(error);
      return;
    }
    fill(body, el("div", { class: "error", role: "alert" }, refusalLines(error).map((line) => el("p", {}, line))));
  }
}

async function confirmPromotion() {
  if (!pendingPromotion) return;
  const confirm = $("promote-confirm");
  confirm.disabled = true;
  try {
    const created = await call("POST", "/pipeline-promotions", pendingPromotion.request, { "idempotency-key": pendingPromotion.key });
    state.promotions.set(created.id, created);
    await reloadTargets(created.id);
    renderPromotions();
    pendingPromotion = null;
    $("promote-dialog").close();
  } catch (error) {
    confirm.disabled = false;
    if (error instanceof ApiError && error.status === 401) {
      $("promote-dialog").close();
      failed(error);
      return;
    }
    fill($("promote-body"), el("div", { class: "error", role: "alert" }, refusalLines(error).map((line) => el("p", {}, line))));
  }
}

async function approve(promotion) {
  try {
    const updated = await call("POST", `/pipeline-promotions/${seg(promotion.id)}/approvals`, {});
    state.promotions.set(updated.id, updated);
    renderPromotions();
  } catch (error) {
    failed(error);
  }
}

let rejecting = null;
function reject(promotion) {
  rejecting = promotion;
  $("reject-comment").value = "";
  $("reject-error").hidden = true;
  $("reject-dialog").showModal();
}

async function confirmReject(event) {
  event.preventDefault();
  const comment = $("reject-comment").value.trim();
  if (!rejecting || !comment) return;
  try {
    const updated = await call("POST", `/pipeline-promotions/${seg(rejecting.id)}/rejections`, { comment });
    state.promotions.set(updated.id, updated);
    renderPromotions();
    $("reject-dialog").close();
  } catch (error) {
    $("reject-error").hidden = false;
    $("reject-error").textContent = error.message;
  }
}

// ---- wiring --------------------------------------------------------------------------

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token-input").value.trim();
  if (!token) return;
  saveToken(token);
  $("token-dialog").close();
  start();
});
$("token-dialog").addEventListener("cancel", (event) => event.preventDefault());
$("sign-out").addEventListener("click", () => {
  forgetToken();
  stopStream();
  location.reload();
});
$("pipeline-select").addEventListener("change", (event) => {
  const chosen = state.pipelines.find((p) => p.name === event.target.value);
  if (chosen) show(chosen);
});
$("promote-cancel").addEventListener("click", () => $("promote-dialog").close());
$("promote-confirm").addEventListener("click", confirmPromotion);
$("reject-form").addEventListener("submit", confirmReject);
$("reject-cancel").addEventListener("click", () => $("reject-dialog").close());
// A page left for another keeps no stream open (the browser allows few connections per
// server); brought back from the back-forward cache, it resumes after its last event.
window.addEventListener("pagehide", () => stopStream());
window.addEventListener("pageshow", (event) => {
  if (event.persisted && state.pipeline) openStream();
});
setInterval(() => {
  if (state.couplings.length) {
    renderBoard();
    renderPromotions();
  }
}, 30000);

start();
