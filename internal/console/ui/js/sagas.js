// Sagas: the order sagas by state, each with its step timeline, and the
// operator's two remedies for a saga that needs attention.
import { get, post } from './api.js';
import { h, table, errorLine, fmt } from './dom.js';

const STATES = ['', 'needs_attention', 'running', 'compensating', 'completed', 'compensated', 'rejected'];

function stepItem(st) {
  const errors = st.errors || [];
  return h('li', { class: `step ${st.kind} ${st.state}` },
    h('div', { class: 'step-head' },
      h('strong', {}, st.name), ' ',
      h('span', { class: 'badge' }, st.kind === 'compensation' ? `compensates ${st.compensates || ''}` : 'action'), ' ',
      h('span', { class: 'badge ' + st.state }, st.state), ' ',
      `${st.participant} · ${st.attempts} attempt${st.attempts === 1 ? '' : 's'}`),
    h('div', { class: 'hint' }, `${st.method || ''} · started ${fmt.time(st.started_at)} · finished ${fmt.time(st.finished_at)}`),
    errors.length > 0 && h('ul', { class: 'errors' },
      errors.map((e) => h('li', {}, `attempt ${e.attempt}: ${e.code} ${e.message}${e.retryable ? ' (retryable)' : ''}`))));
}

export function mount(el) {
  const err = errorLine();
  const status = h('p', { role: 'status', class: 'note' });
  const state = h('select', { id: 'saga-state' }, STATES.map((s) => h('option', { value: s }, s || 'all states')));
  const list = h('div', {});
  const detail = h('section', { 'aria-label': 'Saga detail', tabindex: -1 });
  let alive = true;

  async function show(id) {
    const s = await get('/api/v1/admin/sagas/' + encodeURIComponent(id));
    const act = (what) => async () => {
      const verb = what === 'retry' ? 'Resume' : 'Force-compensate';
      if (!confirm(`${verb} saga ${s.id}?`)) return;
      try {
        await post(`/api/v1/admin/sagas/${encodeURIComponent(s.id)}/${what}`);
        status.textContent = `${verb}: saga ${s.id} accepted.`;
        err.show(null);
      } catch (e) {
        err.show(e);
      }
      await Promise.all([show(s.id), load()]).catch(err.show);
    };
    detail.replaceChildren(
      h('h3', {}, `Saga ${s.id}`),
      h('p', {}, `Order ${s.order_id} · `, h('span', { class: 'badge ' + s.state }, s.state),
        ` · created ${fmt.time(s.created_at)} · owner ${s.owner || 'none'} · fencing ${s.fencing_token ?? '–'}`),
      s.last_error && h('p', { class: 'bad' }, 'Last error: ' + s.last_error),
      s.state === 'needs_attention' && h('p', {},
        h('button', { type: 'button', onclick: act('retry') }, 'Retry'), ' ',
        h('button', { type: 'button', onclick: act('compensate') }, 'Force compensation')),
      h('ol', { class: 'timeline' }, (s.steps || []).map(stepItem)));
    detail.focus();
  }

  async function load() {
    const q = new URLSearchParams({ page_size: '100' });
    if (state.value) q.set('state', state.value);
    const out = await get('/api/v1/admin/sagas?' + q);
    if (!alive) return;
    err.show(null);
    list.replaceChildren(table('Sagas, newest first', ['Saga', 'Order', 'State', 'Created', 'Last error'],
      (out.sagas || []).map((s) => [
        h('button', { type: 'button', class: 'link', onclick: () => show(s.id).catch(err.show) }, s.id),
        s.order_id, h('span', { class: 'badge ' + s.state }, s.state), fmt.time(s.created_at), s.last_error || '']),
    ));
  }

  state.addEventListener('change', () => load().catch(err.show));
  el.append(h('h2', {}, 'Sagas'), err, status,
    h('p', {}, h('label', { for: 'saga-state' }, 'State '), state, ' ',
      h('button', { type: 'button', onclick: () => load().catch(err.show) }, 'Refresh')),
    list, detail);
  load().catch(err.show);
  return () => { alive = false; };
}
