// Events: how far each consumer of the event stream is behind.
import { get } from './api.js';
import { h, poll, table, errorLine, fmt } from './dom.js';

export function mount(el) {
  const err = errorLine();
  const body = h('div', {});
  el.append(h('h2', {}, 'Event-stream lag'), err, body);
  return poll(2000, async () => {
    const out = await get('/api/v1/console/events');
    err.show(null);
    const rows = out.consumers.map((c) => [
      c.name,
      h('span', { class: c.pending > 100 ? 'warn' : '' }, String(c.pending)),
      String(c.ack_pending),
      h('span', { class: c.redelivered > 0 ? 'warn' : '' }, String(c.redelivered)),
      c.subjects.join(', '), fmt.time(c.last_active),
    ]);
    body.replaceChildren(
      out.note ? h('p', { class: 'note' }, out.note) : h('p', {}, `Stream ${out.stream}: ${out.messages} messages, last sequence ${out.last_seq}.`),
      table('Consumers of stream ' + out.stream, ['Consumer', 'Pending', 'Awaiting ack', 'Redelivered', 'Subjects', 'Last delivery'], rows));
  }, err.show);
}
