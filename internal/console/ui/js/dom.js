// Small helpers to build the pages without markup strings, so that data
// is always text and never HTML.

function append(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : String(k));
  }
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

// h builds an HTML element: h('a', {href: '#x'}, 'text', child, ...).
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

// s builds an SVG element.
export function s(tag, attrs = {}, ...kids) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  setAttrs(el, attrs);
  append(el, kids);
  return el;
}

// poll runs fn now and again ms after each run ends, until the returned
// stop function is called; failures go to onError.
export function poll(ms, fn, onError) {
  let stopped = false;
  let timer;
  const tick = async () => {
    try {
      await fn();
    } catch (e) {
      if (!stopped) onError(e);
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// table builds a table; rows are arrays of cells (text or elements).
export function table(caption, headers, rows) {
  return h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length
      ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
      : h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'Nothing to show.'))));
}

// errorLine is a paragraph that screen readers announce when it changes.
export function errorLine() {
  const p = h('p', { class: 'error', role: 'alert' });
  p.show = (e) => { p.textContent = e ? (e.message || String(e)) : ''; };
  return p;
}

export const fmt = {
  rps: (v) => (v >= 10 ? v.toFixed(1) : v.toFixed(2)),
  pct: (v) => (v * 100).toFixed(v > 0 && v < 0.1 ? 1 : 0) + '%',
  ms: (v) => (v === null || v === undefined ? '–' : v < 10 ? v.toFixed(2) + ' ms' : v.toFixed(0) + ' ms'),
  time: (t) => (t && !t.startsWith('0001') ? new Date(t).toLocaleString() : '–'),
};
