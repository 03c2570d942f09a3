/** A plain HTTP client for tests: never throws, reports transport failures as `error`. */
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** Transport-level failure (ECONNRESET, socket hang up, incomplete body), else null. */
  readonly error: string | null;
}

export interface RequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
  readonly agent?: http.Agent | false;
  readonly timeoutMs?: number;
}

export function request(port: number, options: RequestOptions = {}): Promise<Reply> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (reply: Reply): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(reply);
    };
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: options.method ?? 'GET',
      path: options.path ?? '/',
      headers: options.headers,
      agent: options.agent ?? false,
    });
    const timer = setTimeout(() => {
      req.destroy();
      done({ status: 0, headers: {}, body: '', error: 'client timeout' });
    }, options.timeoutMs ?? 30_000); // a bound for a hung exchange, generous for a loaded machine
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), error: res.complete ? null : 'incomplete' }));
      res.on('error', (err: NodeJS.ErrnoException) => done({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => done({ status: 0, headers: {}, body: '', error: err.code ?? err.message }));
    req.end(options.body);
  });
}

/** Sends raw bytes and collects everything until the server closes (or `timeoutMs`). */
export function rawRequest(port: number, data: string | Buffer, timeoutMs = 2_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => socket.destroy(), timeoutMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Runs `count` requests with `concurrency` workers; returns every reply in completion order. */
export async function load(concurrency: number, count: number, send: () => Promise<Reply>): Promise<Reply[]> {
  const replies: Reply[] = [];
  let started = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < count) {
        started++;
        replies.push(await send());
      }
    }),
  );
  return replies;
}

export interface SteadyLoad {
  /** Replies so far, in completion order, with the time each completed (ms since start). */
  readonly replies: (Reply & { readonly at: number })[];
  /** Stops issuing requests and waits for those in flight. */
  stop(): Promise<(Reply & { readonly at: number })[]>;
}

/**
 * `concurrency` clients sending requests back to back until stopped (each over a shared
 * keep-alive agent unless `agent` says otherwise), with `pauseMs` between requests per client.
 */
export function steadyLoad(port: number, concurrency: number, options: RequestOptions & { pauseMs?: number } = {}): SteadyLoad {
  const started = Date.now();
  const replies: (Reply & { at: number })[] = [];
  const agent = options.agent ?? new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let running = true;
  const workers = Array.from({ length: concurrency }, async () => {
    while (running) {
      const reply = await request(port, { ...options, agent });
      replies.push({ ...reply, at: Date.now() - started });
      if (options.pauseMs !== undefined && options.pauseMs > 0) await new Promise((r) => setTimeout(r, options.pauseMs));
    }
  });
  return {
    replies,
    async stop() {
      running = false;
      await Promise.all(workers);
      if (options.agent === undefined && agent !== false) agent.destroy();
      return replies;
    },
  };
}
