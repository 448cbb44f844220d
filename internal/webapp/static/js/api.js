// The Marquee HTTP API, as the app uses it. The access token lives only in
// memory; the refresh token is kept in localStorage so that a reload or a
// new tab stays signed in, and it is rotated on every use (the server
// refuses a spent one and revokes its family).

const REFRESH_KEY = "marquee.refresh";
const PROFILE_KEY = "marquee.profile";

let accessToken = "";
let accessExpires = 0; // ms since the epoch
let refreshing = null; // the refresh in flight, shared by every caller
const listeners = new Set();

/** ApiError is an answer in the error shape {"error":{code,message,request_id}}. */
export class ApiError extends Error {
  constructor(status, code, message, requestId) {
    super(message || `request failed (${status})`);
    this.status = status;
    this.code = code || "HTTP_" + status;
    this.requestId = requestId || "";
  }
}

/** onAuthChange calls fn(signedIn) whenever the session starts or ends. */
export function onAuthChange(fn) {
  listeners.add(fn);
}

function notify() {
  for (const fn of listeners) fn(signedIn());
}

function store(key, value) {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // Storage may be disabled (private mode): the session then lasts as
    // long as the page.
  }
}

function load(key) {
  try {
    return localStorage.getItem(key) || "";
  } catch {
    return "";
  }
}

/** signedIn reports whether the app holds a session (it may need a refresh). */
export function signedIn() {
  return accessToken !== "" || load(REFRESH_KEY) !== "";
}

function setSession(tokens) {
  accessToken = tokens.access_token || "";
  const ttl = Number(tokens.expires_in) || 900;
  // Renew a little early so that a request never leaves with a token that
  // expires on the way.
  accessExpires = Date.now() + Math.max(ttl - 30, 5) * 1000;
  store(REFRESH_KEY, tokens.refresh_token || "");
  notify();
}

function clearSession() {
  const had = signedIn();
  accessToken = "";
  accessExpires = 0;
  store(REFRESH_KEY, "");
  store(PROFILE_KEY, "");
  if (had) notify();
}

/**
 * currentProfile is the chosen profile ({id, name, maturity_level}), kept
 * across reloads (it is not a secret), or null.
 */
export function currentProfile() {
  try {
    const p = JSON.parse(load(PROFILE_KEY) || "null");
    return p && p.id ? p : null;
  } catch {
    return null;
  }
}

export function setCurrentProfile(p) {
  store(PROFILE_KEY, p ? JSON.stringify({ id: p.id, name: p.name, maturity_level: p.maturity_level }) : "");
}

async function send(method, path, { body, headers = {}, token, keepalive } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (token) h.Authorization = "Bearer " + token;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      keepalive,
    });
  } catch (e) {
    throw new ApiError(0, "NETWORK", "cannot reach Marquee: check your connection");
  }
  let data = null;
  const type = res.headers.get("Content-Type") || "";
  if (type.startsWith("application/json")) {
    try {
      data = await res.json();
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code, e.message, e.request_id || res.headers.get("X-Request-Id"));
    const retry = Number(res.headers.get("Retry-After"));
    if (retry > 0) err.retryAfter = retry;
    throw err;
  }
  return data || {};
}

/** refresh trades the stored refresh token for a new pair, once at a time. */
export function refresh() {
  if (refreshing) return refreshing;
  const rt = load(REFRESH_KEY);
  if (!rt) return Promise.reject(new ApiError(401, "UNAUTHENTICATED", "sign in first"));
  refreshing = send("POST", "/api/v1/auth/refresh", { body: { refresh_token: rt } })
    .then((tokens) => {
      setSession(tokens);
    })
    .catch((err) => {
      // A refused refresh token is spent or revoked: the session is over.
      // Anything else (network, 503) keeps it for a later try.
      if (err.status === 400 || err.status === 401 || err.status === 403) clearSession();
      throw err;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

async function token() {
  if (accessToken && Date.now() < accessExpires) return accessToken;
  await refresh();
  return accessToken;
}

/**
 * call sends an API request. With auth (the default) it sends the access
 * token, renewing it first when needed and once more if the server says
 * it is no longer valid.
 */
export async function call(method, path, opts = {}) {
  if (opts.auth === false) return send(method, path, opts);
  if (!opts.optional || signedIn()) {
    const t = await token();
    try {
      return await send(method, path, { ...opts, token: t });
    } catch (err) {
      if (err.status !== 401 || !load(REFRESH_KEY)) {
        if (err.status === 401) clearSession();
        throw err;
      }
      await refresh();
      return send(method, path, { ...opts, token: accessToken });
    }
  }
  return send(method, path, opts);
}

export const get = (path, opts) => call("GET", path, opts);

export async function signUp(name, email, password) {
  setSession(await send("POST", "/api/v1/auth/signup", { body: { name, email, password } }));
}

export async function signIn(email, password) {
  setSession(await send("POST", "/api/v1/auth/login", { body: { email, password } }));
}

/** signOut revokes the session on the server and forgets it here either way. */
export async function signOut() {
  const rt = load(REFRESH_KEY);
  try {
    if (signedIn()) await call("POST", "/api/v1/auth/logout", { body: { refresh_token: rt } });
  } catch {
    // The server may be unreachable: the tokens are dropped anyway.
  } finally {
    clearSession();
  }
}

/** idempotencyKey returns a new random key for a request that must happen once. */
export function idempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

/** q encodes a query string from an object, leaving out empty values. */
export function q(params) {
  const s = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") s.set(k, String(v));
  }
  const out = s.toString();
  return out ? "?" + out : "";
}
