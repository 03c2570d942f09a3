/**
 * Operational events (SPEC §8): logged as JSON, kept in a ring buffer for the admin API, and
 * pushed to subscribers (the dashboard's WebSocket stream). The evidence for a failover lives
 * in one event, not scattered across lines.
 *
 * One vocabulary (SPEC §13): an event has the same fields and values in its log line, in
 * `/events` and in `/events/stream` — `seq`, `time` (ISO 8601, ms, Z), `type` and its details;
 * the log line adds only the logger's envelope (level, pid, hostname, msg). Times inside
 * details are ISO strings too; durations are numbers named `…_ms`.
 */
import { logAt, type Logger } from '../log.js';

export const EVENT_TYPES = [
  'backend_up',
  'backend_down',
  'promoted',
  'released',
  'degraded',
  'restored',
  'spill',
  'admin',
  'reload',
  'listening',
  'shutdown',
  'worker_exit',
  'discovery_failed',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface ProxyEvent {
  readonly seq: number;
  /** ISO time. */
  readonly time: string;
  readonly type: EventType;
  readonly pool?: string;
  readonly backend?: string;
  readonly [detail: string]: unknown;
}

type Level = 'info' | 'warn' | 'error' | 'debug';

const LEVEL: Readonly<Record<EventType, Level>> = {
  backend_up: 'info',
  backend_down: 'warn',
  promoted: 'warn',
  released: 'info',
  degraded: 'error',
  restored: 'info',
  spill: 'warn',
  admin: 'info',
  reload: 'info',
  listening: 'info',
  shutdown: 'info',
  worker_exit: 'error',
  discovery_failed: 'warn',
};

export type EventListener = (event: ProxyEvent) => void;

export class EventLog {
  readonly #logger: Logger;
  readonly #capacity: number;
  readonly #ring: ProxyEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  #seq = 0;

  constructor(logger: Logger, capacity = 500) {
    this.#logger = logger;
    this.#capacity = capacity;
  }

  emit(type: EventType, details: Readonly<Record<string, unknown>> = {}, level: Level = LEVEL[type]): ProxyEvent {
    const now = Date.now();
    const seq = ++this.#seq;
    const event: ProxyEvent = { seq, time: new Date(now).toISOString(), type, ...details };
    this.#ring.push(event);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    // The line's own `time` is the event's: no second time field, no drift between the two.
    logAt(now, () => this.#logger[level]({ seq, type, ...details }, type));
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A failing subscriber (a closed dashboard socket) must not stop the others.
      }
    }
    return event;
  }

  /** Oldest first. */
  recent(): readonly ProxyEvent[] {
    return this.#ring.slice();
  }

  /** How many subscribers are attached (a closed metrics registry or stream leaves none behind). */
  get subscribers(): number {
    return this.#listeners.size;
  }

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
