/**
 * One warm-up request (SPEC §3): sent to a promoted warm through its own keep-alive agent, so
 * its pooled connections are open and its caches primed before it takes live traffic.
 */
import http from 'node:http';
import type { UpstreamBackend } from './backend.js';
import { systemClock, type Clock } from './clock.js';

/** Resolves null on a non-5xx answer, else a short reason. Never rejects. */
export function warmupRequest(backend: UpstreamBackend, path: string, timeoutMs: number, clock: Clock = systemClock): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.request({
      host: backend.host,
      port: backend.port,
      path,
      agent: backend.agent,
      headers: { host: backend.address, 'user-agent': 'hotwarm-warmup' },
    });
    const timer = clock.schedule(timeoutMs, () => {
      req.destroy();
      resolve(`timeout after ${timeoutMs}ms`);
    });
    req.once('response', (res) => {
      res.on('error', () => undefined);
      res.resume();
      res.once('end', () => {
        timer.cancel();
        const status = res.statusCode ?? 0;
        resolve(status < 500 ? null : String(status));
      });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      timer.cancel();
      resolve(err.code ?? err.message);
    });
    req.end();
  });
}

/**
 * Sends `warmup.requests` requests to `backend`, one after the other, while `current()` says the
 * promotion they belong to still stands. `stale`: it stopped standing (released, removed,
 * stopped); `failed` carries the last reason when no request got a non-5xx answer.
 */
export async function warmUp(
  backend: UpstreamBackend,
  warmup: { readonly path: string; readonly requests: number },
  timeoutMs: number,
  current: () => boolean,
  clock: Clock = systemClock,
): Promise<'warmed' | 'stale' | { readonly failed: string }> {
  let ok = 0;
  let lastDetail = '';
  for (let i = 0; i < warmup.requests; i++) {
    if (!current()) return 'stale';
    const detail = await warmupRequest(backend, warmup.path, timeoutMs, clock);
    if (detail === null) ok++;
    else lastDetail = detail;
  }
  if (!current()) return 'stale';
  return ok > 0 ? 'warmed' : { failed: lastDetail };
}
