// Instances: every registered instance, its health and its configuration.
import { get } from './api.js';
import { h, poll, table, errorLine, fmt } from './dom.js';

function config(i) {
  if (i.ack_error) return h('span', { class: 'bad' }, `refused v${i.nacked_version}: ${i.ack_error}`);
  if (i.acked_version === i.snapshot_version) return h('span', { class: 'ok' }, `in sync (v${i.acked_version})`);
  return h('span', { class: 'warn' }, `applying v${i.snapshot_version} (has v${i.acked_version})`);
}

export function mount(el) {
  const err = errorLine();
  const body = h('div', {});
  el.append(h('h2', {}, 'Instances'), err, body);
  return poll(2000, async () => {
    const out = await get('/api/v1/mesh/instances');
    err.show(null);
    const rows = out.instances.map((i) => [
      i.service, i.id, i.version,
      h('span', { class: i.healthy ? 'ok' : 'bad' }, i.healthy ? 'healthy' : 'unhealthy'),
      i.address, i.metrics_address || '–', fmt.time(i.connected_at), fmt.time(i.last_heartbeat), config(i),
    ]);
    const services = new Set(out.instances.map((i) => i.service)).size;
    body.replaceChildren(
      h('p', {}, `${out.instances.length} instances of ${services} services.`),
      table('Registered instances', ['Service', 'Instance', 'Version', 'Health', 'Sidecar address', 'Metrics', 'Connected', 'Last heartbeat', 'Configuration'], rows));
  }, err.show);
}
