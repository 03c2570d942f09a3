/**
 * One vocabulary: an event has the same fields and values in its log line, in `/events` (the
 * ring) and in the stream (subscribers); the log line adds only the logger's envelope.
 */
import t from 'tap';
import { EventLog, type ProxyEvent } from '../../../src/control/events.js';
import { LogSink } from '../../helpers/log-sink.js';

const ENVELOPE = new Set(['level', 'pid', 'hostname', 'msg']);
const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

t.test('log line, ring and stream carry the same event', async (t) => {
  const sink = new LogSink();
  const events = new EventLog(sink.logger('info'));
  const streamed: ProxyEvent[] = [];
  events.subscribe((e) => streamed.push(JSON.parse(JSON.stringify(e)) as ProxyEvent));
  events.emit('backend_down', {
    pool: 'app',
    backend: 'app-2',
    role: 'hot',
    source: 'check',
    evidence: [{ at: new Date(0).toISOString(), source: 'check', ok: false, detail: 'ECONNREFUSED' }],
  });
  events.emit('shutdown', { phase: 'draining', timeout_ms: 250 });
  await new Promise((resolve) => setTimeout(resolve, 100));

  const ring = JSON.parse(JSON.stringify(events.recent())) as ProxyEvent[];
  t.equal(sink.lines.length, 2);
  t.strictSame(streamed, ring, 'the stream sends what /events shows');
  for (const [i, line] of sink.lines.entries()) {
    const fields = Object.fromEntries(Object.entries(line).filter(([key]) => !ENVELOPE.has(key)));
    t.strictSame(fields, ring[i], `log line ${i} = the event, besides level, pid, hostname, msg`);
    t.equal(line.msg, ring[i]?.type);
    t.match(line.time, ISO_MS, 'ISO 8601 with milliseconds and Z');
    t.notOk('event' in line, 'one name for the kind of event: type');
  }
  t.match(ring[0], { type: 'backend_down', seq: 1, evidence: [{ at: ISO_MS }] });
  t.match(ring[1], { type: 'shutdown', timeout_ms: 250 });
});
