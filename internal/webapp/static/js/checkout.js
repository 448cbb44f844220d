// Checkout: the card form, the order it creates (once, with an
// Idempotency-Key), and the order's page, which follows its status until
// it is final. The card details live only in the form: they are sent once
// over the API and never stored by the app.

import * as api from "./api.js";
import { h, link, render, errorBox, money, date } from "./dom.js";
import { statusBadge } from "./views.js";

const FINAL = new Set(["COMPLETED", "REJECTED", "FAILED"]);

// The status the create call answered, so the order page can show that
// the order was PENDING even when it completes before the first poll.
let created = null;

/** luhn reports whether a string of digits passes the Luhn check. */
export function luhn(digits) {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return digits.length > 0 && sum % 10 === 0;
}

/** validateCard checks the form's values; it answers {field: problem}. */
export function validateCard({ number, month, year, cvc }, now = new Date()) {
  const problems = {};
  const digits = number.replace(/[\s-]/g, "");
  if (!/^\d{12,19}$/.test(digits)) problems.number = "Enter the 12 to 19 digits of the card number.";
  else if (!luhn(digits)) problems.number = "This card number is not valid: check the digits.";
  const m = Number(month);
  const y = Number(year);
  if (!/^\d{1,2}$/.test(month) || m < 1 || m > 12) problems.month = "Enter the expiry month, 1 to 12.";
  if (!/^\d{4}$/.test(year) || y > now.getFullYear() + 25) problems.year = "Enter the expiry year with four digits.";
  else if (y < now.getFullYear() || (y === now.getFullYear() && !problems.month && m < now.getMonth() + 1)) {
    problems.year = "This card has expired.";
  }
  if (!/^\d{3,4}$/.test(cvc)) problems.cvc = "Enter the 3 or 4 digit security code.";
  return problems;
}

function input(id, label, attrs, hint) {
  const err = h("p", { class: "field-error", id: id + "-error" });
  const el = h("input", { id, name: id, ...attrs, "aria-describedby": [hint ? id + "-hint" : "", id + "-error"].join(" ").trim() });
  // A corrected field loses its complaint as soon as it changes.
  el.addEventListener("input", () => {
    err.textContent = "";
    el.setAttribute("aria-invalid", "false");
  });
  return {
    el,
    err,
    node: h("div", { class: "field" }, h("label", { for: id }, label), el, hint ? h("p", { class: "hint", id: id + "-hint" }, hint) : null, err),
  };
}

export async function checkoutView(ctx) {
  const planId = ctx.query.get("plan") || "";
  const titleId = ctx.query.get("title") || "";
  if (!planId === !titleId) return ctx.navigate("/plans", { replace: true });
  document.title = "Checkout · Marquee";

  const [plans, title] = await Promise.all([
    api.get("/api/v1/plans", { auth: false }),
    titleId ? api.get(`/api/v1/titles/${encodeURIComponent(titleId)}`, { optional: true }) : null,
  ]);
  if (!ctx.alive()) return;
  let what, price;
  if (planId) {
    const plan = (plans.plans || []).find((p) => p.id === planId);
    if (!plan) return ctx.navigate("/plans", { replace: true });
    what = `${plan.name} plan, ${plan.max_streams} screen${plan.max_streams === 1 ? "" : "s"}`;
    price = money(plan.price) + " a month";
  } else {
    what = `Rent “${title.name}” for ${Math.round((plans.rental?.duration_seconds || 172800) / 3600)} hours`;
    price = money(plans.rental?.price);
  }

  const year = new Date().getFullYear();
  const number = input("card-number", "Card number", { type: "text", inputmode: "numeric", autocomplete: "cc-number", required: true, maxlength: 23, placeholder: "1234 1234 1234 1234" }, "Test card: 4242 4242 4242 4242.");
  const month = input("exp-month", "Expiry month", { type: "text", inputmode: "numeric", autocomplete: "cc-exp-month", required: true, maxlength: 2, placeholder: "MM" });
  const yearIn = input("exp-year", "Expiry year", { type: "text", inputmode: "numeric", autocomplete: "cc-exp-year", required: true, maxlength: 4, placeholder: String(year + 2) });
  const cvc = input("cvc", "Security code (CVC)", { type: "text", inputmode: "numeric", autocomplete: "cc-csc", required: true, maxlength: 4, placeholder: "123" });
  const fields = { number, month, year: yearIn, cvc };
  const status = h("div", { "aria-live": "polite" });
  const pay = h("button", { type: "submit", class: "button" }, "Pay " + price);
  const form = h(
    "form",
    { class: "stack card-form", novalidate: true, autocomplete: "on" },
    number.node,
    h("div", { class: "field-row" }, month.node, yearIn.node, cvc.node),
    status,
    pay,
  );

  // One key per attempt: a retry after a network error or a double click
  // reuses it and gets the same order; the server refusing the request
  // (nothing was created) starts a new attempt.
  let key = api.idempotencyKey();

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const values = { number: number.el.value, month: month.el.value.trim(), year: yearIn.el.value.trim(), cvc: cvc.el.value.trim() };
    const problems = validateCard(values);
    let first = null;
    for (const [name, f] of Object.entries(fields)) {
      const p = problems[name] || "";
      f.err.textContent = p;
      f.el.setAttribute("aria-invalid", p ? "true" : "false");
      if (p && !first) first = f.el;
    }
    status.replaceChildren();
    if (first) {
      first.focus();
      return;
    }
    pay.disabled = true;
    const body = {
      payment: {
        card_number: values.number.replace(/[\s-]/g, ""),
        exp_month: Number(values.month),
        exp_year: Number(values.year),
        cvc: values.cvc,
      },
    };
    if (planId) body.plan_id = planId;
    else body.title_id = titleId;
    try {
      const res = await api.call("POST", "/api/v1/orders", { body, headers: { "Idempotency-Key": key } });
      form.reset();
      created = { id: res.order_id, status: res.status || "PENDING", at: new Date().toISOString() };
      ctx.navigate(`/orders/${encodeURIComponent(res.order_id)}`, { replace: true });
    } catch (err) {
      if (err.status >= 400 && err.status < 500 && err.status !== 408 && err.status !== 429) key = api.idempotencyKey();
      status.replaceChildren(errorBox(err));
      pay.disabled = false;
    }
  });

  render(
    h(
      "section",
      { class: "page narrow checkout" },
      h("h1", null, "Checkout"),
      h("div", { class: "summary" }, h("p", null, what), h("p", { class: "price" }, price)),
      form,
      h("p", { class: "muted small" }, "Your card is sent securely to our payment processor and never stored in this browser."),
      h("p", null, link(planId ? "/plans" : `/title/${encodeURIComponent(titleId)}`, null, "Cancel")),
    ),
  );
}

const REASONS = {
  card_declined: "Your card was declined. Try another card.",
  insufficient_funds: "Your card has insufficient funds. Try another card.",
  invalid_card: "The card details are not valid.",
  payment_unavailable: "The payment processor did not answer. You have not been charged.",
  title_unavailable: "This title is no longer available. Your payment was refunded.",
  entitlement_unavailable: "We could not activate your purchase. Your payment was refunded.",
};

function explain(o) {
  const r = String(o.reason || "").toLowerCase();
  return REASONS[r] || (o.reason ? `Reason: ${o.reason}.` : "");
}

export async function orderView(ctx) {
  const id = ctx.params.id;
  document.title = "Order · Marquee";
  const timeline = h("ol", { class: "timeline", "aria-label": "Order status history" });
  const seen = [];
  const note = (s, at) => {
    if (seen[seen.length - 1] === s) return;
    seen.push(s);
    timeline.append(h("li", { dataset: { status: s } }, statusBadge(s), h("span", { class: "muted small" }, " " + date(at || new Date().toISOString()))));
  };
  if (created && created.id === id) note(created.status, created.at);
  const result = h("div", { class: "order-result", role: "status", "aria-live": "polite" });
  const heading = h("h1", null, "Your order");
  render(h("section", { class: "page narrow order", dataset: { orderId: id } }, heading, timeline, result));

  let wait = 400;
  for (;;) {
    let o;
    try {
      o = await api.get(`/api/v1/orders/${encodeURIComponent(id)}`);
    } catch (err) {
      if (!ctx.alive()) return;
      if (err.status === 404 || err.status === 401 || err.status === 403) throw err;
      // A passing error: show it and keep following the order.
      result.replaceChildren(errorBox(err));
      o = null;
    }
    if (!ctx.alive()) return;
    if (o) {
      const order = o.order || o;
      note(order.status, order.updated_at);
      document.querySelector(".order").dataset.status = order.status;
      if (FINAL.has(order.status)) return showResult(result, order);
      result.replaceChildren(h("p", null, "Processing your payment…"));
    }
    await new Promise((r) => setTimeout(r, wait));
    wait = Math.min(wait * 1.5, 3000);
    if (!ctx.alive()) return;
  }
}

function showResult(result, o) {
  const what = o.plan_id ? `the ${o.plan_id} plan` : "your rental";
  if (o.status === "COMPLETED") {
    result.replaceChildren(
      h("p", { class: "ok" }, `Payment accepted: ${what} is active.`),
      h("p", { class: "actions" }, link(o.title_id ? `/watch/${encodeURIComponent(o.title_id)}` : "/", { class: "button" }, "Start watching"), link("/account", null, "See your invoices")),
    );
    return;
  }
  const retry = o.plan_id ? "/checkout" + api.q({ plan: o.plan_id }) : "/checkout" + api.q({ title: o.title_id });
  result.replaceChildren(
    h("p", { class: "bad" }, o.status === "REJECTED" ? "Payment declined." : "The order could not be completed."),
    h("p", { class: "reason" }, explain(o)),
    h("p", { class: "actions" }, link(retry, { class: "button" }, "Try again"), link("/account", null, "Your orders")),
  );
}
