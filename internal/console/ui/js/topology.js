// Topology: the services as a graph, the gateway on the left and each
// service one column right of its furthest caller, with the traffic of
// every edge over the last ten seconds.
import { get } from './api.js';
import { h, s, poll, table, errorLine, fmt } from './dom.js';

const NODE_W = 150;
const NODE_H = 46;
const MARGIN = 20;
const CURVE = 90; // room for the curves between a column and the labels
const ROW_GAP = 30; // vertical gap between the nodes of a column
const LANE_ABOVE = 16; // room above an edge's last segment for its label
const LANE_BELOW = 6; // room below it when there is no version split
const LANE_SPLIT = 18; // room below it for the version split line
const CHAR_W = 6.6; // generous width of one character of an 11px label

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

// versionSplit is the per-version rps of an edge, or '' with one version.
function versionSplit(e) {
  if (!e.versions || e.versions.length < 2) return '';
  return e.versions.map((v) => `${v.version || '–'} ${fmt.rps(v.rps)}`).join(' · ');
}

// layout places the nodes column by column. Every edge ends in its own
// lane on the left side of its destination: a horizontal last segment
// carrying the label right-aligned at the arrow, lanes stacked
// vertically, so no two labels can overlap and the curves stay left of
// the labels.
function layout(t) {
  const d = depths(t.nodes, t.edges);
  const known = new Set(t.nodes.map((n) => n.service));
  const edges = t.edges
    .filter((e) => known.has(e.source) && known.has(e.destination))
    .map((e) => ({ e, label: edgeLabel(e), split: versionSplit(e) }));
  const labelW = Math.ceil(Math.max(160, ...edges.map((x) => Math.max(x.label.length, x.split.length) * CHAR_W + 24)));
  const colW = NODE_W + CURVE + labelW;
  const x0 = MARGIN + (edges.some((x) => d[x.e.destination] === 0) ? CURVE + labelW : 0);
  const incoming = {};
  for (const x of edges) (incoming[x.e.destination] ||= []).push(x);

  const columns = [];
  for (const n of t.nodes) (columns[d[n.service]] ||= []).push(n);
  const pos = {};
  const centre = (svc) => (pos[svc] ? pos[svc].y + pos[svc].h / 2 : Infinity);
  const gaps = [];
  let bottom = 0;
  columns.forEach((col, i) => {
    // Nodes sit in the order of their callers (fewer crossings).
    const bary = (n) => {
      const ys = (incoming[n.service] || []).map((x) => centre(x.e.source)).filter(Number.isFinite);
      return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
    };
    if (i > 0) col = col.map((n, k) => ({ n, k, b: bary(n) })).sort((a, b) => a.b - b.b || a.k - b.k).map((o) => o.n);
    let y = MARGIN;
    for (const n of col) {
      const lanes = (incoming[n.service] || []).slice()
        .sort((a, b) => centre(a.e.source) - centre(b.e.source) || a.e.source.localeCompare(b.e.source));
      const sizes = lanes.map((x) => LANE_ABOVE + (x.split ? LANE_SPLIT : LANE_BELOW));
      const stack = sizes.reduce((a, b) => a + b, 0);
      const h = Math.max(NODE_H, stack + 8);
      const p = { x: x0 + i * colW, y, h };
      pos[n.service] = p;
      if (lanes.length === 1) {
        lanes[0].port = y + h / 2;
      } else {
        let top = y + (h - stack) / 2;
        lanes.forEach((x, k) => { x.port = top + LANE_ABOVE; top += sizes[k]; });
      }
      y += h + ROW_GAP;
    }
    bottom = Math.max(bottom, y - ROW_GAP);
    // The horizontal corridors between (and around) this column's nodes,
    // through which edges skipping the column pass.
    gaps[i] = [MARGIN / 2, ...col.map((n) => pos[n.service].y + pos[n.service].h + ROW_GAP / 2)];
  });
  const width = x0 + Math.max(0, columns.length - 1) * colW + NODE_W + MARGIN;
  return { pos, edges, labelW, colW, x0, gaps, width, height: bottom + MARGIN, depth: d };
}

function draw(t) {
  const { pos, edges, labelW, colW, x0, gaps, width, height, depth } = layout(t);
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, class: 'topology', role: 'img',
    'aria-label': edges.length ? 'Service topology graph; the table below lists the traffic of every edge.' : 'Service topology graph: no traffic.',
  }, s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerUnits: 'userSpaceOnUse', markerWidth: 10, markerHeight: 10, orient: 'auto-start-reverse' },
    s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }))));
  // Long edges first, so that the halo of the labels drawn later covers
  // the lines crossing them.
  const span = (x) => depth[x.e.destination] - depth[x.e.source];
  const order = edges.slice().sort((a, b) => span(b) - span(a));
  for (const x of order) {
    const { e } = x;
    const a = pos[e.source];
    const b = pos[e.destination];
    const x1 = a.x + NODE_W;
    const y1 = a.y + a.h / 2;
    const x2 = b.x;
    const y2 = x.port;
    const xs = x2 - labelW; // the curve ends here, the label's segment starts
    // An edge skipping columns runs through a corridor between the
    // nodes of each column it crosses rather than behind their boxes.
    let d = `M ${x1} ${y1}`;
    let [px, py] = [x1, y1];
    const curveTo = (qx, qy) => {
      const bend = Math.max(CURVE * 0.6, Math.abs(qx - px) / 2);
      d += ` C ${px + bend} ${py}, ${qx - bend} ${qy}, ${qx} ${qy}`;
      [px, py] = [qx, qy];
    };
    for (let k = depth[e.source] + 1; k < depth[e.destination]; k++) {
      const gy = (gaps[k] || [py]).reduce((best, g) => (Math.abs(g - (py + y2) / 2) < Math.abs(best - (py + y2) / 2) ? g : best));
      const cx = x0 + k * colW;
      curveTo(cx - labelW, gy);
      d += ` L ${cx + NODE_W} ${gy}`;
      px = cx + NODE_W;
    }
    curveTo(xs, y2);
    d += ` L ${x2} ${y2}`;
    const stroke = Math.min(8, 1.5 + Math.log10(1 + e.rps) * 2);
    svg.append(s('g', { class: 'edge ' + health(e), 'data-source': e.source, 'data-destination': e.destination },
      s('title', {}, `${e.source} → ${e.destination}`),
      s('path', { d, 'stroke-width': stroke.toFixed(1), 'marker-end': 'url(#arrow)' }),
      s('text', { x: x2 - 14, y: y2 - 6, 'text-anchor': 'end' }, x.label),
      x.split && s('text', { x: x2 - 14, y: y2 + 14, 'text-anchor': 'end', class: 'split' }, x.split)));
  }
  for (const n of t.nodes) {
    const p = pos[n.service];
    const state = n.instances === 0 ? 'external' : n.healthy === n.instances ? 'up' : n.healthy ? 'partial' : 'down';
    svg.append(s('g', { class: 'node ' + state, 'data-service': n.service },
      s('rect', { x: p.x, y: p.y, width: NODE_W, height: p.h, rx: 8 }),
      s('text', { x: p.x + NODE_W / 2, y: p.y + p.h / 2 - 4, 'text-anchor': 'middle', class: 'name' }, n.service),
      s('text', { x: p.x + NODE_W / 2, y: p.y + p.h / 2 + 13, 'text-anchor': 'middle', class: 'sub' },
        n.instances ? `${n.healthy}/${n.instances} healthy · ${n.versions.join(' ')}` : 'no instances')));
  }
  return svg;
}

// edgeTable lists every edge, busiest first: the graph as text.
function edgeTable(t) {
  const rows = t.edges.slice()
    .sort((a, b) => b.rps - a.rps || a.source.localeCompare(b.source) || a.destination.localeCompare(b.destination))
    .map((e) => [e.source, e.destination, fmt.rps(e.rps), fmt.pct(e.error_rate), fmt.ms(e.p99_ms), versionSplit(e) || '–']);
  const el = table('Traffic per edge, busiest first', ['Source', 'Destination', 'Requests/s', 'Errors', 'p99', 'Per version (rps)'], rows);
  el.classList.add('edges');
  return el;
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
