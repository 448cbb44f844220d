// The app's entry point: client-side routing with the History API, the
// header navigation, and the profile's look (a kids profile gets its own
// theme and a simpler header).

import * as api from "./api.js";
import { h, link, render, errorBox, initial } from "./dom.js";
import * as views from "./views.js";
import { checkoutView, orderView } from "./checkout.js";
import { playerView } from "./player.js";

// Routes: a path pattern, the view, and what it needs first ("auth": a
// session; "profile": a session and a chosen profile).
const routes = [
  ["/signin", views.signInView, null],
  ["/signup", views.signUpView, null],
  ["/profiles", views.profilesView, "auth"],
  ["/profiles/new", views.newProfileView, "auth"],
  ["/", views.homeView, "profile"],
  ["/search", views.searchView, "profile"],
  ["/title/:id", views.titleView, "profile"],
  ["/watch/:id", playerView, "profile"],
  ["/plans", views.plansView, "auth"],
  ["/checkout", checkoutView, "auth"],
  ["/orders/:id", orderView, "auth"],
  ["/account", views.accountView, "auth"],
];

function match(path) {
  const parts = path.split("/").filter(Boolean);
  for (const [pattern, view, needs] of routes) {
    const want = pattern.split("/").filter(Boolean);
    if (want.length !== parts.length) continue;
    const params = {};
    let ok = true;
    for (let i = 0; i < want.length; i++) {
      if (want[i].startsWith(":")) params[want[i].slice(1)] = decodeURIComponent(parts[i]);
      else if (want[i] !== parts[i]) ok = false;
    }
    if (ok) return { view, needs, params };
  }
  return null;
}

let seq = 0; // the number of the page on screen; stale work checks it
let leaving = []; // what the page on screen does when it is left

/** navigate shows the page at path, adding it to the history. */
export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  return route();
}

async function route() {
  const n = ++seq;
  // The page on screen finishes first (a player stops its session), so
  // that the next page sees its effects. It is not waited for long.
  const cleanups = leaving;
  leaving = [];
  if (cleanups.length) {
    await Promise.race([
      Promise.allSettled(cleanups.map((fn) => fn())),
      new Promise((r) => setTimeout(r, 3000)),
    ]);
  }
  if (n !== seq) return;

  const url = new URL(location.href);
  const m = match(url.pathname);
  const profile = api.currentProfile();
  applyProfileLook(profile);
  renderNav();
  if (!m) {
    document.title = "Not found · Marquee";
    render(h("section", { class: "page narrow" }, h("h1", null, "Page not found"), h("p", null, link("/", null, "Go to the home page"))));
    return;
  }
  if (m.needs && !api.signedIn()) {
    return navigate("/signin?next=" + encodeURIComponent(url.pathname + url.search), { replace: true });
  }
  if (m.needs === "profile" && !profile) {
    return navigate("/profiles", { replace: true });
  }
  const ctx = {
    params: m.params,
    query: url.searchParams,
    profile,
    alive: () => n === seq,
    onLeave: (fn) => leaving.push(fn),
    navigate,
  };
  try {
    await m.view(ctx);
  } catch (err) {
    if (n !== seq) return;
    if (err && err.status === 401) {
      return navigate("/signin?next=" + encodeURIComponent(url.pathname + url.search), { replace: true });
    }
    render(h("section", { class: "page narrow" }, h("h1", null, "Something went wrong"), errorBox(err, h("p", null, link("/", null, "Back to the home page")))));
  }
}

/** applyProfileLook themes the page for the profile: kids get their own. */
function applyProfileLook(profile) {
  const kids = profile && profile.maturity_level === "kids";
  document.body.classList.toggle("kids", !!kids);
  document.body.dataset.maturity = profile ? profile.maturity_level : "";
}

function renderNav() {
  const nav = document.getElementById("nav");
  if (!api.signedIn()) {
    nav.replaceChildren(h("ul", null, h("li", null, link("/signin", null, "Sign in")), h("li", null, link("/signup", { class: "button small" }, "Sign up"))));
    return;
  }
  const profile = api.currentProfile();
  const kids = profile && profile.maturity_level === "kids";
  const items = [];
  if (profile) {
    items.push(h("li", null, link("/", null, "Home")));
    items.push(
      h(
        "li",
        { class: "search-item" },
        h(
          "form",
          { role: "search", class: "search", action: "/search", onsubmit: onSearch },
          h("label", { for: "q", class: "sr-only" }, "Search titles"),
          h("input", { id: "q", name: "q", type: "search", placeholder: "Search", autocomplete: "off", value: new URL(location.href).searchParams.get("q") || "" }),
        ),
      ),
    );
  }
  if (!kids) {
    items.push(h("li", null, link("/plans", null, "Plans")));
    items.push(h("li", null, link("/account", null, "Account")));
  }
  items.push(
    h(
      "li",
      null,
      link(
        "/profiles",
        { class: "who", "aria-label": profile ? `Profile ${profile.name}: switch profile` : "Choose a profile" },
        profile ? h("span", { class: "avatar small", "aria-hidden": "true" }, initial(profile.name)) : "Profiles",
        profile && kids ? h("span", { class: "badge" }, "Kids") : null,
      ),
    ),
  );
  items.push(h("li", null, h("button", { type: "button", class: "linkish", onclick: onSignOut }, "Sign out")));
  nav.replaceChildren(h("ul", null, items));
}

function onSearch(e) {
  e.preventDefault();
  const term = new FormData(e.currentTarget).get("q").toString().trim();
  navigate("/search" + api.q({ q: term }));
}

async function onSignOut() {
  await api.signOut();
  document.getElementById("toast").classList.remove("show");
  navigate("/signin", { replace: true });
}

// In-app links go through the router; modified clicks (new tab) do not.
document.addEventListener("click", (e) => {
  const a = e.target.closest && e.target.closest("a[data-link]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

window.addEventListener("popstate", route);

api.onAuthChange((signed) => {
  if (!signed && match(location.pathname)?.needs) {
    navigate("/signin", { replace: true });
  }
});

route();
