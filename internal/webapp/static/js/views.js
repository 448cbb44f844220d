// The pages of the app other than checkout and the player: signing in and
// up, profiles, home, search, a title's details, plans and the account.
// Each view takes the router's context: params, query, profile, alive()
// (false once the viewer moved on) and navigate.

import * as api from "./api.js";
import { h, link, render, errorBox, toast, money, duration, clock, date, initial, message } from "./dom.js";

const MATURITY = {
  kids: "Kids: G, PG, TV-Y, TV-Y7, TV-G",
  teen: "Teen: adds PG-13, TV-PG, TV-14",
  adult: "Adult: every rating",
};

// ---- signing in and up ----

function field(id, label, attrs, hint) {
  return h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, ...attrs, "aria-describedby": hint ? id + "-hint" : null }),
    hint ? h("p", { class: "hint", id: id + "-hint" }, hint) : null,
  );
}

function nextPath(ctx, fallback) {
  const next = ctx.query.get("next") || "";
  // Only an in-app path: never an open redirect to another origin.
  return next.startsWith("/") && !next.startsWith("//") ? next : fallback;
}

async function submitting(form, status, work) {
  const button = form.querySelector("button[type=submit]");
  button.disabled = true;
  status.replaceChildren();
  try {
    await work();
  } catch (err) {
    status.replaceChildren(errorBox(err));
  } finally {
    button.disabled = false;
  }
}

export async function signInView(ctx) {
  document.title = "Sign in · Marquee";
  if (api.signedIn()) return ctx.navigate("/profiles", { replace: true });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    field("email", "Email", { type: "email", autocomplete: "username", required: true }),
    field("password", "Password", { type: "password", autocomplete: "current-password", required: true }),
    status,
    h("button", { type: "submit", class: "button" }, "Sign in"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const email = form.email.value.trim();
    const password = form.password.value;
    if (!email || !password) {
      status.replaceChildren(errorBox({ message: "Enter your email and password." }));
      return;
    }
    submitting(form, status, async () => {
      await api.signIn(email, password);
      ctx.navigate("/profiles" + api.q({ next: nextPath(ctx, "") }), { replace: true });
    });
  });
  render(
    h(
      "section",
      { class: "page auth" },
      h("h1", null, "Sign in"),
      form,
      h("p", null, "New to Marquee? ", link("/signup", null, "Create an account")),
    ),
  );
}

export async function signUpView(ctx) {
  document.title = "Create an account · Marquee";
  if (api.signedIn()) return ctx.navigate("/profiles", { replace: true });
  const status = h("div", { "aria-live": "polite" });
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    field("name", "Your name", { type: "text", autocomplete: "name", required: true, maxlength: 100 }),
    field("email", "Email", { type: "email", autocomplete: "email", required: true }),
    field("password", "Password", { type: "password", autocomplete: "new-password", required: true, minlength: 10 }, "At least 10 characters."),
    status,
    h("button", { type: "submit", class: "button" }, "Create account"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = form.name.value.trim();
    const email = form.email.value.trim();
    const password = form.password.value;
    const problems = [];
    if (!name) problems.push("Enter your name.");
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) problems.push("Enter a valid email address.");
    if (password.length < 10) problems.push("Choose a password of at least 10 characters.");
    if (problems.length) {
      status.replaceChildren(errorBox({ message: problems.join(" ") }));
      return;
    }
    submitting(form, status, async () => {
      await api.signUp(name, email, password);
      ctx.navigate("/profiles", { replace: true });
    });
  });
  render(
    h(
      "section",
      { class: "page auth" },
      h("h1", null, "Create your account"),
      form,
      h("p", null, "Already have an account? ", link("/signin", null, "Sign in")),
    ),
  );
}

// ---- profiles ----

export async function profilesView(ctx) {
  document.title = "Who's watching? · Marquee";
  const body = await api.get("/api/v1/profiles");
  if (!ctx.alive()) return;
  const profiles = body.profiles || [];
  if (profiles.length === 0) return newProfileView(ctx, true);
  const next = nextPath(ctx, "/");
  const pick = (p) => () => {
    api.setCurrentProfile(p);
    ctx.navigate(next);
  };
  const current = api.currentProfile();
  render(
    h(
      "section",
      { class: "page profiles" },
      h("h1", null, "Who's watching?"),
      h(
        "ul",
        { class: "profile-list" },
        profiles.map((p) =>
          h(
            "li",
            null,
            h(
              "button",
              {
                type: "button",
                class: "profile" + (p.maturity_level === "kids" ? " kids" : ""),
                onclick: pick(p),
                "aria-current": current && current.id === p.id ? "true" : null,
                dataset: { profileId: p.id, maturity: p.maturity_level },
              },
              h("span", { class: "avatar", "aria-hidden": "true" }, initial(p.name)),
              h("span", { class: "name" }, p.name),
              p.maturity_level === "kids" ? h("span", { class: "badge" }, "Kids") : h("span", { class: "muted small" }, p.maturity_level),
            ),
          ),
        ),
        profiles.length < 5
          ? h("li", null, link("/profiles/new", { class: "profile add" }, h("span", { class: "avatar", "aria-hidden": "true" }, "+"), h("span", { class: "name" }, "Add profile")))
          : null,
      ),
    ),
  );
}

export async function newProfileView(ctx, first = false) {
  document.title = "New profile · Marquee";
  const status = h("div", { "aria-live": "polite" });
  const choice = (value, checked) =>
    h(
      "label",
      { class: "choice" },
      h("input", { type: "radio", name: "maturity", value, checked }),
      h("span", null, MATURITY[value]),
    );
  const form = h(
    "form",
    { class: "stack", novalidate: true },
    field("profile-name", "Profile name", { type: "text", required: true, maxlength: 50, autocomplete: "off" }),
    h("fieldset", null, h("legend", null, "Who is it for?"), choice("adult", true), choice("teen", false), choice("kids", false)),
    status,
    h("button", { type: "submit", class: "button" }, "Create profile"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = form["profile-name"].value.trim();
    if (!name) {
      status.replaceChildren(errorBox({ message: "Give the profile a name." }));
      return;
    }
    const maturity = new FormData(form).get("maturity");
    submitting(form, status, async () => {
      const p = await api.call("POST", "/api/v1/profiles", { body: { name, maturity_level: maturity, language: navigator.language?.slice(0, 2) || "en" } });
      const profile = p.profile || p;
      api.setCurrentProfile(profile);
      toast(`Profile ${profile.name} created.`);
      ctx.navigate("/", { replace: true });
    });
  });
  render(
    h(
      "section",
      { class: "page auth" },
      h("h1", null, first ? "Create your first profile" : "Add a profile"),
      first ? h("p", null, "Each person who watches gets a profile, with their own list, progress and recommendations.") : null,
      form,
      first ? null : h("p", null, link("/profiles", null, "Back to profiles")),
    ),
  );
}

// ---- browsing ----

const ROW_NAMES = {
  continue_watching: "Continue watching",
  my_list: "My List",
  recommended: "Recommendations",
  trending: "Trending",
  profile: "Profile settings",
};

function rowName(id) {
  if (ROW_NAMES[id]) return ROW_NAMES[id];
  if (id.startsWith("genre:")) return "Popular in " + id.slice(6);
  return id;
}

/** card is a title's tile; continue-watching ones go to the player and show progress. */
function card(t, { resume = false, eager = false } = {}) {
  const href = resume ? `/watch/${encodeURIComponent(t.id)}` + api.q({ episode: t.episode_id }) : `/title/${encodeURIComponent(t.id)}`;
  const pos = Number(t.position_seconds || 0);
  const dur = Number(t.duration_seconds || 0);
  return h(
    "li",
    null,
    link(
      href,
      { class: "card", dataset: { titleId: t.id } },
      h("img", {
        src: t.artwork_url,
        alt: "",
        width: 200,
        height: 300,
        loading: eager ? "eager" : "lazy",
        decoding: "async",
      }),
      h("span", { class: "card-name" }, t.name),
      h("span", { class: "card-meta" }, [t.year, t.maturity_rating].filter(Boolean).join(" · ")),
      resume && dur > 0
        ? h(
            "span",
            { class: "progress", role: "img", "aria-label": `Watched ${clock(pos)} of ${duration(dur)}` },
            h("span", { class: "progress-bar", dataset: { pct: Math.min(100, Math.round((pos / dur) * 100)) } }),
          )
        : null,
    ),
  );
}

// Progress bars get their width from a data attribute: the CSP forbids
// inline styles, but CSSOM writes are allowed.
function sizeProgressBars(root) {
  for (const bar of root.querySelectorAll(".progress-bar[data-pct]")) bar.style.width = bar.dataset.pct + "%";
}

let homeMarked = false;

export async function homeView(ctx) {
  const profile = ctx.profile;
  const kids = profile.maturity_level === "kids";
  document.title = "Home · Marquee";
  let body;
  try {
    body = await api.get("/api/v1/home" + api.q({ profile_id: profile.id }));
  } catch (err) {
    if (err.status === 404) {
      // The profile is gone (deleted elsewhere): choose again.
      api.setCurrentProfile(null);
      return ctx.navigate("/profiles", { replace: true });
    }
    throw err;
  }
  if (!ctx.alive()) return;
  let rows = (body.rows || []).filter((r) => r.items && r.items.length);
  // A kids home is short and simple: a few rows of big tiles.
  if (kids) rows = rows.slice(0, 4);
  const degraded = (body.degraded || []).filter((d) => d !== "profile" || !kids);
  let tiles = 0;
  const main = render(
    h(
      "section",
      { class: "page home" + (kids ? " kids-home" : "") },
      h("h1", { class: kids ? "" : "sr-only" }, kids ? `Hi ${profile.name}! What shall we watch?` : `Home for ${profile.name}`),
      degraded.length
        ? h(
            "p",
            { class: "notice", role: "status" },
            "Some rows are simplified or missing right now: ",
            degraded.map(rowName).join(", "),
            ". Everything else works as usual.",
          )
        : null,
      rows.length === 0 ? h("p", { class: "empty" }, "Nothing to show yet. Try searching for a title.") : null,
      rows.map((r) =>
        h(
          "section",
          { class: "row", "aria-labelledby": "row-" + r.id.replace(/[^a-z0-9_-]/gi, "-"), dataset: { row: r.id } },
          h("h2", { id: "row-" + r.id.replace(/[^a-z0-9_-]/gi, "-") }, r.title),
          h(
            "ul",
            { class: "cards" },
            r.items.map((t) => card(t, { resume: r.id === "continue_watching", eager: tiles++ < 8 })),
          ),
        ),
      ),
    ),
  );
  sizeProgressBars(main);
  if (!homeMarked) {
    homeMarked = true;
    // The first render of the home page, for performance measurements.
    performance.mark("marquee:home-rendered");
  }
  document.body.dataset.homeRendered = "1";
}

export async function searchView(ctx) {
  const term = (ctx.query.get("q") || "").trim();
  document.title = (term ? `“${term}”` : "Search") + " · Marquee";
  const input = document.getElementById("q");
  if (input && input.value !== term) input.value = term;
  if (!term) {
    render(h("section", { class: "page" }, h("h1", null, "Search"), h("p", null, "Type a title, a word of its story or a genre in the search box.")));
    return;
  }
  const body = await api.get("/api/v1/titles" + api.q({ q: term, profile_id: ctx.profile.id, page_size: 48 }));
  if (!ctx.alive()) return;
  const titles = body.titles || [];
  render(
    h(
      "section",
      { class: "page" },
      h("h1", null, `Results for “${term}”`),
      h("p", { role: "status" }, titles.length ? `${titles.length} title${titles.length === 1 ? "" : "s"} found.` : "No titles found. Try another word."),
      h("ul", { class: "cards grid" }, titles.map((t, i) => card(t, { eager: i < 8 }))),
    ),
  );
}

export async function titleView(ctx) {
  const id = ctx.params.id;
  const profile = ctx.profile;
  const kids = profile.maturity_level === "kids";
  const [t, list] = await Promise.all([
    api.get(`/api/v1/titles/${encodeURIComponent(id)}` + api.q({ profile_id: profile.id })),
    api.get(`/api/v1/profiles/${encodeURIComponent(profile.id)}/my-list` + api.q({ page_size: 100 })).catch(() => null),
  ]);
  if (!ctx.alive()) return;
  document.title = t.name + " · Marquee";
  let inList = list ? (list.items || []).some((it) => it.title_id === id) : false;

  const listButton = h("button", { type: "button", class: "button secondary", "aria-pressed": String(inList), disabled: !list }, "");
  const setListLabel = () => {
    listButton.textContent = inList ? "✓ In My List" : "+ My List";
    listButton.setAttribute("aria-pressed", String(inList));
  };
  setListLabel();
  listButton.addEventListener("click", async () => {
    listButton.disabled = true;
    const path = `/api/v1/profiles/${encodeURIComponent(profile.id)}/my-list/${encodeURIComponent(id)}`;
    try {
      await api.call(inList ? "DELETE" : "PUT", path);
      inList = !inList;
      setListLabel();
      toast(inList ? `${t.name} added to My List.` : `${t.name} removed from My List.`);
    } catch (err) {
      toast(message(err));
    } finally {
      listButton.disabled = false;
    }
  });

  const seasons = t.seasons || [];
  const meta = [
    t.year,
    t.maturity_rating,
    t.kind === "series" ? `${seasons.length} season${seasons.length === 1 ? "" : "s"}` : duration(t.duration_seconds),
  ].filter(Boolean);

  const actions = h(
    "div",
    { class: "actions" },
    t.available ? link(`/watch/${encodeURIComponent(id)}`, { class: "button play" }, "▶ Play") : h("p", { class: "notice" }, "Not available to watch right now."),
    listButton,
    t.rentable && !kids && t.available ? link("/checkout" + api.q({ title: id }), { class: "button secondary" }, "Rent for 48 hours") : null,
  );

  render(
    h(
      "article",
      { class: "page title-page" },
      h("img", { class: "hero-art", src: t.artwork_url, alt: "", width: 320, height: 480 }),
      h(
        "div",
        { class: "title-info" },
        h("h1", null, t.name),
        h("p", { class: "meta" }, meta.join(" · ")),
        (t.genres || []).length ? h("ul", { class: "genres", "aria-label": "Genres" }, t.genres.map((g) => h("li", null, g))) : null,
        h("p", { class: "synopsis" }, t.synopsis),
        actions,
      ),
      seasons.length ? seasonsBlock(id, seasons, t.available) : null,
    ),
  );
}

function seasonsBlock(titleId, seasons, available) {
  const lists = seasons.map((s, i) =>
    h(
      "ol",
      { class: "episodes", id: `season-${s.number}`, hidden: i > 0, "aria-label": s.name || `Season ${s.number}` },
      (s.episodes || []).map((e) =>
        h(
          "li",
          null,
          available
            ? link(`/watch/${encodeURIComponent(titleId)}` + api.q({ episode: e.id }), { class: "episode" }, h("span", { class: "ep-num" }, e.number), h("span", { class: "ep-name" }, e.name), h("span", { class: "muted small" }, duration(e.duration_seconds)))
            : h("span", { class: "episode" }, h("span", { class: "ep-num" }, e.number), h("span", { class: "ep-name" }, e.name)),
          e.synopsis ? h("p", { class: "muted small" }, e.synopsis) : null,
        ),
      ),
    ),
  );
  let picker = null;
  if (seasons.length > 1) {
    picker = h(
      "select",
      { id: "season", "aria-label": "Season" },
      seasons.map((s) => h("option", { value: s.number }, s.name || `Season ${s.number}`)),
    );
    picker.addEventListener("change", () => {
      for (const l of lists) l.hidden = l.id !== `season-${picker.value}`;
    });
  }
  return h("section", { class: "seasons", "aria-labelledby": "episodes-h" }, h("div", { class: "seasons-head" }, h("h2", { id: "episodes-h" }, "Episodes"), picker), lists);
}

// ---- plans and account ----

export async function plansView(ctx) {
  document.title = "Plans · Marquee";
  const [plans, ent] = await Promise.all([api.get("/api/v1/plans", { auth: false }), api.get("/api/v1/entitlement").catch(() => null)]);
  if (!ctx.alive()) return;
  const current = ent && ent.plan && ent.plan.status === "active" ? ent.plan.plan_id : "";
  render(
    h(
      "section",
      { class: "page" },
      h("h1", null, "Choose your plan"),
      h("p", null, "Monthly, cancel any time. Every plan has the whole catalog."),
      h(
        "ul",
        { class: "plans" },
        (plans.plans || []).map((p) =>
          h(
            "li",
            { class: "plan" + (p.id === current ? " current" : ""), dataset: { plan: p.id } },
            h("h2", null, p.name),
            h("p", { class: "price" }, money(p.price), h("span", { class: "muted small" }, " / month")),
            h("p", null, `${p.max_streams} screen${p.max_streams === 1 ? "" : "s"} at a time`),
            h("p", { class: "muted" }, p.description),
            p.id === current
              ? h("p", { class: "badge" }, "Your plan")
              : link("/checkout" + api.q({ plan: p.id }), { class: "button", "aria-label": `Choose ${p.name}` }, "Choose"),
          ),
        ),
      ),
      plans.rental ? h("p", { class: "muted" }, `Or rent a single title for ${money(plans.rental.price)} for ${Math.round((plans.rental.duration_seconds || 0) / 3600)} hours.`) : null,
    ),
  );
}

const STATUS_WORDS = { PENDING: "processing", COMPLETED: "paid and active", REJECTED: "payment declined", FAILED: "not completed; any charge refunded" };

/** statusBadge shows an order's status as the API names it, with its meaning. */
export function statusBadge(status) {
  return h(
    "span",
    null,
    h("span", { class: "status " + String(status || "").toLowerCase() }, status),
    STATUS_WORDS[status] ? h("span", { class: "muted small" }, " (" + STATUS_WORDS[status] + ")") : null,
  );
}

function orderWhat(o) {
  if (o.kind === "rental" || o.title_id) return "Rental of " + o.title_id;
  return (o.plan_id ? o.plan_id[0].toUpperCase() + o.plan_id.slice(1) : "") + " plan";
}

export async function accountView(ctx) {
  document.title = "Account · Marquee";
  const soft = (p) => p.catch((err) => ({ error: err }));
  const [acct, ent, orders, invoices] = await Promise.all([
    soft(api.get("/api/v1/account")),
    soft(api.get("/api/v1/entitlement")),
    soft(api.get("/api/v1/orders" + api.q({ page_size: 50 }))),
    soft(api.get("/api/v1/invoices" + api.q({ page_size: 50 }))),
  ]);
  if (!ctx.alive()) return;
  const part = (r, fn) => (r.error ? errorBox(r.error) : fn(r));
  render(
    h(
      "section",
      { class: "page account" },
      h("h1", null, "Account"),
      part(acct, (a) => h("dl", { class: "facts" }, h("dt", null, "Name"), h("dd", null, a.name || "—"), h("dt", null, "Email"), h("dd", null, a.email))),
      h("h2", null, "Plan"),
      part(ent, (e) =>
        e.plan && e.plan.status === "active"
          ? h("p", null, `${e.plan.plan_id} plan, ${e.max_streams} screen${e.max_streams === 1 ? "" : "s"}. `, link("/plans", null, "Change plan"))
          : h("p", null, "No plan yet. ", link("/plans", { class: "button small" }, "Choose a plan")),
      ),
      part(ent, (e) =>
        (e.rentals || []).length
          ? h("ul", null, e.rentals.map((r) => h("li", null, `Rental of ${r.title_id} until ${date(r.expires_at)}`)))
          : null,
      ),
      h("h2", null, "Orders"),
      part(orders, (o) =>
        (o.orders || []).length
          ? h(
              "table",
              { class: "table" },
              h("thead", null, h("tr", null, h("th", { scope: "col" }, "Date"), h("th", { scope: "col" }, "Order"), h("th", { scope: "col" }, "Status"), h("th", { scope: "col" }, "Details"))),
              h(
                "tbody",
                null,
                o.orders.map((x) =>
                  h(
                    "tr",
                    null,
                    h("td", null, date(x.created_at)),
                    h("td", null, link(`/orders/${encodeURIComponent(x.id)}`, null, orderWhat(x))),
                    h("td", null, statusBadge(x.status)),
                    h("td", null, x.reason || ""),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No orders yet."),
      ),
      h("h2", null, "Invoices"),
      part(invoices, (v) =>
        (v.invoices || []).length
          ? h(
              "table",
              { class: "table" },
              h("thead", null, h("tr", null, h("th", { scope: "col" }, "Date"), h("th", { scope: "col" }, "Description"), h("th", { scope: "col" }, "Amount"), h("th", { scope: "col" }, "Card"), h("th", { scope: "col" }, "Status"))),
              h(
                "tbody",
                null,
                v.invoices.map((x) =>
                  h(
                    "tr",
                    null,
                    h("td", null, date(x.issued_at)),
                    h("td", null, x.description),
                    h("td", null, money(x.amount), Number(x.refunded?.amount_minor || 0) > 0 ? h("span", { class: "muted small" }, ` (refunded ${money(x.refunded)})`) : null),
                    h("td", null, x.payment_method ? `${x.payment_method.brand} •••• ${x.payment_method.last4}` : ""),
                    h("td", null, x.status),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No invoices yet."),
      ),
    ),
  );
}
