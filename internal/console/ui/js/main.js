// The console's shell: sign-in, navigation between pages, sign-out.
import { call, get, setToken, token, whenUnauthorized, ApiError } from './api.js';
import * as topology from './topology.js';
import * as instances from './instances.js';
import * as traffic from './traffic.js';
import * as sagas from './sagas.js';
import * as traces from './traces.js';
import * as events from './events.js';

const pages = { topology, instances, traffic, sagas, traces, events };
const $ = (id) => document.getElementById(id);
let stopPage = null;

function showLogin(message) {
  if (stopPage) stopPage();
  stopPage = null;
  setToken(null);
  $('page').hidden = true;
  $('page').replaceChildren();
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('email').focus();
}

function route() {
  if (!token()) return showLogin();
  const name = location.hash.slice(1) || 'topology';
  const page = pages[name] || topology;
  if (stopPage) stopPage();
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  for (const a of $('nav').querySelectorAll('a')) {
    if (a.hash === '#' + name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  const el = $('page');
  el.replaceChildren();
  el.hidden = false;
  stopPage = page.mount(el);
}

async function login(ev) {
  ev.preventDefault();
  const form = ev.target;
  const button = form.querySelector('button');
  button.disabled = true;
  $('login-error').textContent = '';
  try {
    const out = await call('POST', '/api/v1/auth/login', { email: $('email').value, password: $('password').value });
    if (!out || !out.access_token) throw new Error('the sign-in answer has no access token');
    setToken(out.access_token);
    // The console's API says whether this account is an admin.
    await get('/api/v1/mesh/instances');
    $('password').value = '';
    route();
  } catch (e) {
    setToken(null);
    const msg = e instanceof ApiError && e.status === 403 ? 'This account is not an admin.' : 'Sign-in failed: ' + e.message;
    $('login-error').textContent = msg;
  } finally {
    button.disabled = false;
  }
}

whenUnauthorized(() => showLogin('Your session has ended; sign in again.'));
$('login-form').addEventListener('submit', login);
$('logout').addEventListener('click', () => showLogin());
window.addEventListener('hashchange', route);
route();
