/** Processes shared by the benchmark's parts, stopped once at exit (also on Ctrl-C). */
import { startNginxBackends } from './backends.js';
import type { Started } from './tools.js';

const running: Started[] = [];

export function track(started: Started): Started {
  running.push(started);
  return started;
}

let backends: Promise<Started> | null = null;

/** The nginx throughput backends, started on first use. */
export function startBackendsOnce(ports: readonly number[], dir: string): Promise<Started> {
  backends ??= startNginxBackends(ports, dir).then(track);
  return backends;
}

export async function stopAll(): Promise<void> {
  await Promise.all(running.splice(0).map((s) => s.stop()));
  backends = null;
}
