/**
 * One warm-up request (SPEC §3): sent to a promoted warm through its own keep-alive agent, so
 * its pooled connections are open and its caches primed before it takes live traffic.
 */
import http from 'node:http';
import type { UpstreamBackend } from './backend.js';

/** Resolves null on a non-5xx answer, else a short reason. Never rejects. */
export function warmupRequest(backend: UpstreamBackend, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.request({
      host: backend.host,
      port: backend.port,
      path,
      agent: backend.agent,
      headers: { host: backend.address, 'user-agent': 'hotwarm-warmup' },
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(`timeout after ${timeoutMs}ms`);
    }, timeoutMs);
    req.once('response', (res) => {
      res.on('error', () => undefined);
      res.resume();
      res.once('end', () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve(status < 500 ? null : String(status));
      });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
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
): Promise<'warmed' | 'stale' | { readonly failed: string }> {
  let ok = 0;
  let lastDetail = '';
  for (let i = 0; i < warmup.requests; i++) {
    if (!current()) return 'stale';
    const detail = await warmupRequest(backend, warmup.path, timeoutMs);
    if (detail === null) ok++;
    else lastDetail = detail;
  }
  if (!current()) return 'stale';
  return ok > 0 ? 'warmed' : { failed: lastDetail };
}
