// Building the page. Every value is set as text (textContent), never parsed as HTML.

/** An element with attributes and children; strings and numbers become text nodes. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
}

/** How long ago `time` was, in words. */
export function ago(time) {
  if (!time) return "";
  const seconds = Math.max(0, (Date.now() - new Date(time).getTime()) / 1000);
  if (seconds < 60) return "just now";
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ago`;
  return `${Math.floor(hours / 24)} days ago`;
}

/** A chip showing a state, styled by it. */
export function chip(label, state) {
  return el("li", { class: `chip state-${state}` }, label);
}

/** A status badge. */
export function badge(text, state, title) {
  return el("span", { class: `badge state-${state}`, title }, text);
}

/** The lines of a refusal: its message, then what its details list. */
export function refusalLines(error) {
  const lines = [error.message];
  for (const detail of (error.body && error.body.details) || []) {
    for (const violation of detail.violations || []) {
      lines.push(`${violation.subject || violation.type || ""}: ${violation.description || ""}`);
    }
    for (const target of detail.targets || []) {
      const app = (target.app && target.app.name) || "";
      const lacks = (target.missing_on_target || []).join(", ");
      const extra = (target.missing_on_source || []).join(", ");
      lines.push(`${app}: missing on target [${lacks}], missing on source [${extra}]`);
    }
    if (detail.reason && detail.until) lines.push(`frozen until ${detail.until}: ${detail.reason}`);
  }
  return lines;
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
