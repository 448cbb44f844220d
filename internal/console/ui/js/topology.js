// Topology: the services as a graph, the gateway on the left and each
// service one column right of its furthest caller, with the traffic of
// every edge over the last ten seconds.
import { get } from './api.js';
import { h, s, poll, table, errorLine, fmt } from './dom.js';

const COL = 240;
const ROW = 90;
const NODE_W = 150;
const NODE_H = 46;

// depths places each service one column right of its furthest caller
// (cycles stop growing at the number of services).
function depths(nodes, edges) {
  const d = Object.fromEntries(nodes.map((n) => [n.service, 0]));
  for (let i = 0; i < nodes.length; i++) {
    let changed = false;
    for (const e of edges) {
      if (e.destination === 'gateway' || e.source === e.destination) continue;
      const want = d[e.source] + 1;
      if (want > d[e.destination] && want < nodes.length) {
        d[e.destination] = want;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return d;
}

function health(e) {
  if (e.error_rate >= 0.05) return 'bad';
  if (e.error_rate > 0) return 'warn';
  return 'ok';
}

function edgeLabel(e) {
  return `${fmt.rps(e.rps)} rps · ${fmt.pct(e.error_rate)} err · p99 ${fmt.ms(e.p99_ms)}`;
}

function draw(t) {
  const d = depths(t.nodes, t.edges);
  const columns = [];
  for (const n of t.nodes) (columns[d[n.service]] ||= []).push(n);
  const pos = {};
  columns.forEach((col, i) => col.forEach((n, j) => {
    pos[n.service] = { x: 20 + i * COL, y: 20 + j * ROW };
  }));
  const width = Math.max(1, columns.length) * COL;
  const height = Math.max(1, ...columns.map((c) => c.length)) * ROW + 20;
  const desc = t.edges.map((e) => `${e.source} to ${e.destination}: ${edgeLabel(e)}`).join('; ') || 'no traffic';
  const svg = s('svg', { viewBox: `0 0 ${width} ${height}`, class: 'topology', role: 'img', 'aria-label': 'Service topology: ' + desc },
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))));
  for (const e of t.edges) {
    const a = pos[e.source];
    const b = pos[e.destination];
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mx = (x1 + x2) / 2;
    const width = Math.min(8, 1.5 + Math.log10(1 + e.rps) * 2);
    const split = e.versions.length > 1 ? ' (' + e.versions.map((v) => `${v.version} ${fmt.rps(v.rps)}`).join(', ') + ')' : '';
    svg.append(s('g', { class: 'edge ' + health(e), 'data-source': e.source, 'data-destination': e.destination },
      s('path', { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, 'stroke-width': width.toFixed(1), 'marker-end': 'url(#arrow)' }),
      s('text', { x: mx, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle' }, edgeLabel(e)),
      split && s('text', { x: mx, y: (y1 + y2) / 2 + 10, 'text-anchor': 'middle', class: 'split' }, split)));
  }
  for (const n of t.nodes) {
    const p = pos[n.service];
    const state = n.instances === 0 ? 'external' : n.healthy === n.instances ? 'up' : n.healthy ? 'partial' : 'down';
    svg.append(s('g', { class: 'node ' + state, 'data-service': n.service },
      s('rect', { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 8 }),
      s('text', { x: p.x + NODE_W / 2, y: p.y + 19, 'text-anchor': 'middle', class: 'name' }, n.service),
      s('text', { x: p.x + NODE_W / 2, y: p.y + 36, 'text-anchor': 'middle', class: 'sub' },
        n.instances ? `${n.healthy}/${n.instances} healthy · ${n.versions.join(' ')}` : 'no instances')));
  }
  return svg;
}

function edgeTable(t) {
  const rows = [];
  for (const e of t.edges) {
    rows.push([e.source, e.destination, 'all', fmt.rps(e.rps), fmt.pct(e.error_rate), fmt.ms(e.p99_ms)]);
    if (e.versions.length > 1) {
      for (const v of e.versions) rows.push(['', '', v.version || '–', fmt.rps(v.rps), fmt.pct(v.error_rate), fmt.ms(v.p99_ms)]);
    }
  }
  return table('Traffic per edge', ['Source', 'Destination', 'Version', 'Requests/s', 'Errors', 'p99'], rows);
}

export function mount(el) {
  const err = errorLine();
  const note = h('p', { class: 'note' });
  const graph = h('div', { class: 'graph' });
  const detail = h('div', {});
  el.append(h('h2', {}, 'Topology'),
    h('p', { class: 'hint' }, 'Requests per second, error rate and p99 latency per edge over the last 10 seconds, from the sidecars’ metrics. Refreshed every 2 seconds.'),
    err, note, graph, detail);
  return poll(2000, async () => {
    const t = await get('/api/v1/console/topology');
    err.show(null);
    const failures = t.scrape_failures.map((f) => `${f.instance} (${f.address}): ${f.error}`);
    note.textContent = [t.note, failures.length ? 'Unreachable sidecars: ' + failures.join('; ') : ''].filter(Boolean).join(' ');
    graph.replaceChildren(draw(t));
    detail.replaceChildren(edgeTable(t));
  }, err.show);
}
