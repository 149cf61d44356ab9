// Talking to the server: JSON calls with the tab's token, and Server-Sent Events read
// with fetch so that the token travels in a header, never in a URL.

const TOKEN_KEY = "pipelines.token";

export function savedToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A refusal from the server: its HTTP status and error body. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

function headers(extra) {
  const all = { accept: "application/json", ...extra };
  const token = savedToken();
  if (token) all.authorization = `Bearer ${token}`;
  return all;
}

const RATE_LIMITED = 429;
const RETRIES_WHEN_LIMITED = 3;
const LONGEST_WAIT_MS = 30000;

/**
 * fetch, made again after the server's Retry-After while the token is rate limited. A
 * refused request never ran, so sending it again is safe.
 */
async function fetchHonouringRetryAfter(path, init) {
  for (let attempt = 0; ; attempt += 1) {
    const response = await fetch(path, init);
    if (response.status !== RATE_LIMITED || attempt >= RETRIES_WHEN_LIMITED) return response;
    const seconds = Number.parseInt(response.headers.get("retry-after") || "1", 10);
    const wait = Math.min(Math.max(Number.isFinite(seconds) ? seconds : 1, 1) * 1000, LONGEST_WAIT_MS);
    await new Promise((resolve) => setTimeout(resolve, wait));
    if (init.signal && init.signal.aborted) return response;
  }
}

/** Calls the REST API and answers its JSON; throws ApiError on a refusal. */
export async function call(method, path, body, extraHeaders = {}) {
  const init = { method, headers: headers(extraHeaders) };
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetchHonouringRetryAfter(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

/** A path segment, escaped. */
export function seg(value) {
  return encodeURIComponent(String(value));
}

/** A random idempotency key (also outside secure contexts). */
export function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Reads a Server-Sent Events stream: calls onOpen once the server accepted it, then
 * onEvent({id, event, data}) for each event, until the stream ends or `signal` aborts.
 */
export async function readEvents(path, lastEventId, signal, onOpen, onEvent) {
  const extra = { accept: "text/event-stream" };
  if (lastEventId !== null && lastEventId !== undefined) extra["last-event-id"] = String(lastEventId);
  const response = await fetchHonouringRetryAfter(path, {
    headers: headers(extra),
    signal,
    cache: "no-store",
  });
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    throw new ApiError(response.status, body);
  }
  onOpen();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const message = { id: null, event: "message", data: "" };
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "id") message.id = text;
        else if (field === "event") message.event = text;
        else if (field === "data") data.push(text);
      }
      if (data.length === 0) continue;
      try {
        message.data = JSON.parse(data.join("\n"));
      } catch {
        continue;
      }
      onEvent(message);
    }
  }
}
