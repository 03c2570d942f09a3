/**
 * Operational events (SPEC §8): logged as JSON, kept in a ring buffer for the admin API, and
 * pushed to subscribers (the dashboard's WebSocket stream). The evidence for a failover lives
 * in one event, not scattered across lines.
 */
import type { Logger } from '../log.js';

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
    this.#logger = logger.child({ component: 'events' });
    this.#capacity = capacity;
  }

  emit(type: EventType, details: Readonly<Record<string, unknown>> = {}, level: Level = LEVEL[type]): ProxyEvent {
    const event: ProxyEvent = { seq: ++this.#seq, time: new Date().toISOString(), type, ...details };
    this.#ring.push(event);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    this.#logger[level]({ event: type, ...details }, type);
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

  subscribe(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
