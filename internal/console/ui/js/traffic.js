// Traffic: move traffic between versions and inject faults, with the
// policy in force and its history. Changes go to the control plane, which
// pushes them to the sidecars as a new policy version.
import { get, post } from './api.js';
import { h, table, errorLine, fmt } from './dom.js';

const GRPC_CODES = ['UNAVAILABLE', 'INTERNAL', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'UNKNOWN', 'ABORTED'];
let uid = 0;
const id = (what) => `t${++uid}-${what}`;

function field(label, input) {
  input.id ||= id('f');
  return h('span', { class: 'field' }, h('label', { for: input.id }, label), input);
}

// splitControl edits the weights of a service's versions: one slider for
// two versions, a number per version for more.
function splitControl(service, versions, current, apply) {
  const weights = Object.fromEntries(versions.map((v, i) => [v, current[v] ?? (Object.keys(current).length ? 0 : i === 0 ? 100 : 0)]));
  const shown = h('output', { 'aria-live': 'polite' });
  const show = () => { shown.textContent = versions.map((v) => `${v} ${weights[v]}%`).join(' · '); };
  show();
  const clear = h('button', { type: 'button', onclick: () => apply(service, null) }, 'Clear split');
  if (versions.length === 2) {
    const [a, b] = versions;
    const slider = h('input', {
      type: 'range', min: 0, max: 100, step: 5, value: weights[b], class: 'split',
      'data-service': service, 'aria-valuetext': `${b} ${weights[b]}%`,
    });
    slider.addEventListener('input', () => {
      weights[b] = Number(slider.value);
      weights[a] = 100 - weights[b];
      slider.setAttribute('aria-valuetext', `${b} ${weights[b]}%`);
      show();
    });
    slider.addEventListener('change', () => apply(service, { ...weights }));
    return h('div', { class: 'control' }, field(`Share of ${b}`, slider), shown, clear);
  }
  const inputs = versions.map((v) => {
    const n = h('input', { type: 'number', min: 0, max: 100, value: weights[v], 'data-version': v });
    n.addEventListener('input', () => { weights[v] = Number(n.value); show(); });
    return field(v, n);
  });
  const go = h('button', { type: 'button', onclick: () => apply(service, { ...weights }) }, 'Apply split');
  return h('div', { class: 'control' }, inputs, shown, go, clear);
}

function faultControl(service, current, apply) {
  const abort = current?.abort;
  const on = h('input', { type: 'checkbox', checked: Boolean(abort), 'data-service': service });
  const percent = h('input', { type: 'number', min: 0, max: 100, step: 1, value: abort?.percent ?? 100 });
  const code = h('select', {}, GRPC_CODES.map((c) => h('option', { value: c, selected: c === (abort?.grpcCode || 'UNAVAILABLE') }, c)));
  const status = h('input', { type: 'number', min: 400, max: 599, value: abort?.httpStatus || 503 });
  const delay = current?.delay;
  const delayOn = h('input', { type: 'checkbox', checked: Boolean(delay) });
  const delayPercent = h('input', { type: 'number', min: 0, max: 100, value: delay?.percent ?? 100 });
  const delayFor = h('input', { type: 'text', value: delay?.duration || '200ms', size: 7, pattern: '[0-9.]+(ms|s)' });
  const submit = () => {
    const fault = {};
    if (on.checked) fault.abort = { percent: Number(percent.value), grpcCode: code.value, httpStatus: Number(status.value) };
    if (delayOn.checked) fault.delay = { percent: Number(delayPercent.value), duration: delayFor.value };
    apply(service, Object.keys(fault).length ? fault : null);
  };
  return h('div', { class: 'control' },
    field('Abort requests', on), field('Percent', percent), field('gRPC code', code), field('HTTP status', status),
    field('Delay requests', delayOn), field('Percent', delayPercent), field('By', delayFor),
    h('button', { type: 'button', onclick: submit }, 'Apply fault'),
    h('button', { type: 'button', onclick: () => apply(service, null) }, 'Clear fault'));
}

export function mount(el) {
  const err = errorLine();
  const status = h('p', { role: 'status', class: 'note' });
  const controls = h('div', {});
  const current = h('div', {});
  el.append(h('h2', {}, 'Traffic'), err, status, controls, current);
  let alive = true;

  const change = (what, path, body) => post(path, body)
    .then((out) => { status.textContent = `${what}: policy version ${out.version}.`; err.show(null); })
    .catch(err.show)
    .then(load)
    .catch(err.show);
  const applySplit = (service, weights) => change(`Split of ${service} ${weights ? 'set' : 'cleared'}`, '/api/v1/mesh/split', { service, weights });
  const applyFault = (service, fault) => change(`Fault of ${service} ${fault ? 'set' : 'cleared'}`, '/api/v1/mesh/fault', { service, fault });

  async function load() {
    const [pol, inst, hist] = await Promise.all([
      get('/api/v1/mesh/policy?format=json'), get('/api/v1/mesh/instances'), get('/api/v1/mesh/policy/history'),
    ]);
    if (!alive) return;
    const services = pol.policy.services || {};
    const versions = {};
    for (const i of inst.instances) (versions[i.service] ||= new Set()).add(i.version);
    for (const [name, svc] of Object.entries(services)) {
      for (const w of svc.split || []) (versions[name] ||= new Set()).add(w.version);
    }
    const names = [...new Set([...Object.keys(services), ...Object.keys(versions)])].sort();
    const sections = names.map((name) => {
      const svc = services[name] || {};
      const vs = [...(versions[name] || [])].filter(Boolean).sort();
      const weights = Object.fromEntries((svc.split || []).map((w) => [w.version, w.weight]));
      return h('fieldset', { class: 'service' }, h('legend', {}, name),
        vs.length > 1 ? splitControl(name, vs, weights, applySplit) : h('p', { class: 'hint' }, `One version (${vs[0] || 'none'}): nothing to split.`),
        faultControl(name, svc.fault, applyFault));
    });
    controls.replaceChildren(...sections);
    current.replaceChildren(
      h('h3', {}, `Policy in force: version ${pol.version}`),
      h('pre', { tabindex: 0, 'aria-label': 'Policy as JSON' }, JSON.stringify(pol.policy, null, 2)),
      table('Policy history, latest first', ['Version', 'Created', 'Author'],
        hist.versions.map((v) => [String(v.version), fmt.time(v.created_at), v.author])));
  }

  controls.append(h('p', {}, 'Loading…'));
  load().catch(err.show);
  return () => { alive = false; };
}
