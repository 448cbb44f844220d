// Small helpers to build the DOM without a framework. Text always goes in
// as text nodes, never as HTML, so data from the API cannot inject markup.

/**
 * h builds an element: h("a", {href: "/x", class: "card"}, "text", child).
 * Attributes starting with "on" are event listeners; true adds a boolean
 * attribute, false/null/undefined leave it out.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === false || v === null || v === undefined) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** link is an in-app link: the router handles its clicks. */
export function link(href, attrs, ...children) {
  return h("a", { ...attrs, href, "data-link": true }, ...children);
}

/** render replaces the main content and moves focus to its heading. */
export function render(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
  return main;
}

let toastTimer = 0;

/** toast shows a short message, read out by screen readers. */
export function toast(message) {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 4000);
}

/** errorBox shows an error from the API in words a viewer can act on. */
export function errorBox(err, ...extra) {
  return h(
    "div",
    { class: "error", role: "alert" },
    h("p", null, message(err)),
    err && err.requestId ? h("p", { class: "muted small" }, "Reference: " + err.requestId) : null,
    ...extra,
  );
}

/** message turns an error into a sentence. */
export function message(err) {
  if (!err) return "Something went wrong.";
  switch (err.code) {
    case "NETWORK":
      return "Cannot reach Marquee. Check your connection and try again.";
    case "RATE_LIMITED":
      return "Too many attempts. Wait a moment and try again.";
    case "UNAVAILABLE":
    case "CIRCUIT_OPEN":
      return "This part of Marquee is unavailable right now. Try again shortly.";
    case "NOT_ENTITLED":
      return "Your account has no plan that covers this title.";
    case "MATURITY_RESTRICTED":
      return "This title is not available on this profile.";
    case "TOO_MANY_STREAMS":
      return "Your plan's screens are all in use. Stop watching on another device, or upgrade your plan.";
    case "ORDER_IN_PROGRESS":
      return "An order of yours is still being processed. Wait for it to finish.";
  }
  return err.message || "Something went wrong.";
}

/** money formats minor units ("1549", "USD") as "$15.49". */
export function money(m) {
  if (!m) return "";
  const minor = Number(m.amount_minor || 0);
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency || "USD" }).format(minor / 100);
  } catch {
    return (minor / 100).toFixed(2) + " " + (m.currency || "");
  }
}

/** duration formats seconds as "1 h 34 min" or "24 min". */
export function duration(s) {
  s = Number(s) || 0;
  const hrs = Math.floor(s / 3600);
  const min = Math.round((s % 3600) / 60);
  if (hrs > 0) return `${hrs} h ${min} min`;
  return `${Math.max(min, 1)} min`;
}

/** clock formats seconds as m:ss. */
export function clock(s) {
  s = Math.max(0, Math.floor(Number(s) || 0));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** date formats an RFC 3339 timestamp for people. */
export function date(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  if (isNaN(d)) return "";
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** initial is the letter shown in a profile's avatar. */
export function initial(name) {
  return (String(name || "?").trim()[0] || "?").toUpperCase();
}
