// Traces: the most recent traces the console received, each drawn as a
// waterfall of its spans.
import { get } from './api.js';
import { h, poll, table, errorLine, fmt } from './dom.js';

function waterfall(t) {
  const depth = {};
  const byID = Object.fromEntries(t.spans.map((s) => [s.span_id, s]));
  const level = (s) => {
    if (depth[s.span_id] !== undefined) return depth[s.span_id];
    depth[s.span_id] = 0; // guards against parent cycles
    const p = byID[s.parent_span_id];
    depth[s.span_id] = p ? level(p) + 1 : 0;
    return depth[s.span_id];
  };
  const total = Math.max(t.duration_ms, 0.001);
  const rows = t.spans.map((s) => {
    const bar = h('span', { class: 'bar' + (s.error ? ' bad' : '') });
    // CSSOM, not style attributes: allowed by the content security policy.
    bar.style.marginLeft = (100 * s.offset_ms / total).toFixed(2) + '%';
    bar.style.width = Math.max(0.3, 100 * s.duration_ms / total).toFixed(2) + '%';
    const label = h('span', { class: 'span-name' }, `${s.service}: ${s.name}`);
    label.style.paddingLeft = level(s) + 'em';
    const title = `${s.service} ${s.name} (${s.kind}) at +${fmt.ms(s.offset_ms)} for ${fmt.ms(s.duration_ms)}` +
      (s.error ? ' — error' + (s.status ? ': ' + s.status : '') : '');
    return h('li', { class: 'span-row', title }, label, h('span', { class: 'track' }, bar),
      h('span', { class: 'span-time' }, fmt.ms(s.duration_ms)), h('span', { class: 'visually-hidden' }, title));
  });
  return h('div', {},
    h('h3', {}, `Trace ${t.trace_id}`),
    h('p', {}, `${t.root} on ${t.service} · ${fmt.ms(t.duration_ms)} · ${t.spans.length} spans` +
      (t.dropped_spans ? ` (${t.dropped_spans} dropped)` : '') + (t.error ? ' · has errors' : '')),
    h('ol', { class: 'waterfall' }, rows));
}

export function mount(el) {
  const err = errorLine();
  const note = h('p', { class: 'note' });
  const errorsOnly = h('input', { type: 'checkbox', id: 'trace-errors' });
  const list = h('div', {});
  const detail = h('section', { 'aria-label': 'Trace waterfall', tabindex: -1 });
  el.append(h('h2', {}, 'Traces'), err, note,
    h('p', {}, errorsOnly, h('label', { for: 'trace-errors' }, ' Only traces with errors')), detail, list);
  const open = (id) => get('/api/v1/console/traces/' + id)
    .then((t) => { detail.replaceChildren(waterfall(t)); detail.focus(); })
    .catch(err.show);
  return poll(5000, async () => {
    const out = await get('/api/v1/console/traces?limit=50' + (errorsOnly.checked ? '&errors=true' : ''));
    err.show(null);
    note.textContent = out.note || '';
    // Keep a keyboard user's place: no redraw under the focus.
    if (list.contains(document.activeElement)) return;
    list.replaceChildren(table('Recent traces, latest first', ['Started', 'Root span', 'Service', 'Duration', 'Spans', 'Status'],
      out.traces.map((t) => [
        fmt.time(t.start),
        h('button', { type: 'button', class: 'link', onclick: () => open(t.trace_id) }, t.root || t.trace_id),
        t.service, fmt.ms(t.duration_ms), String(t.spans),
        h('span', { class: t.error ? 'bad' : 'ok' }, t.error ? 'error' : 'ok')])));
  }, err.show);
}
