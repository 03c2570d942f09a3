/** Admin API clients for tests: JSON requests with or without a token, and the event stream. */
import WebSocket from 'ws';
import { request, type Reply } from './client.js';

export interface AdminRequest {
  readonly method?: string;
  readonly token?: string;
  readonly headers?: Record<string, string>;
}

export function adminRequest(port: number, path: string, options: AdminRequest = {}): Promise<Reply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  return request(port, { path, method: options.method ?? 'GET', headers });
}

/** The parsed JSON body of a reply (throws with the body when it is not JSON). */
export function body<T = Record<string, unknown>>(reply: Reply): T {
  try {
    return JSON.parse(reply.body) as T;
  } catch {
    throw new Error(`not JSON (status ${reply.status}): ${reply.body.slice(0, 200)}`);
  }
}

export type StreamMessage = Record<string, unknown> & { type: string; seq: number };

export interface OpenStream {
  readonly ws: WebSocket;
  readonly messages: StreamMessage[];
  /** Resolves with the first message (already received or to come) matching `predicate`. */
  next(predicate: (m: StreamMessage) => boolean, timeoutMs?: number): Promise<StreamMessage>;
  close(): Promise<void>;
}

export interface StreamOptions {
  /** Sent as the `hotwarm.token.<base64url>` subprotocol, as the dashboard does. */
  readonly protocolToken?: string;
  /** Sent as `Authorization: Bearer`. */
  readonly headerToken?: string;
  readonly origin?: string;
}

/** Opens `/events/stream`; resolves with the stream, or with the HTTP status of a refusal. */
export function openStream(port: number, options: StreamOptions = {}): Promise<OpenStream | { refused: number }> {
  const protocols = ['hotwarm.v1'];
  if (options.protocolToken !== undefined) protocols.push(`hotwarm.token.${Buffer.from(options.protocolToken).toString('base64url')}`);
  const headers: Record<string, string> = {};
  if (options.headerToken !== undefined) headers.authorization = `Bearer ${options.headerToken}`;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/events/stream`, protocols, { headers, ...(options.origin ? { origin: options.origin } : {}) });
  const messages: StreamMessage[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    messages.push(JSON.parse(data.toString()) as StreamMessage);
    for (const wake of waiters) wake();
  });
  return new Promise((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve({ refused: res.statusCode ?? 0 });
    });
    ws.once('error', () => resolve({ refused: 0 }));
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        next(predicate, timeoutMs = 3_000) {
          return new Promise((done, fail) => {
            const check = (): boolean => {
              const found = messages.find(predicate);
              if (found === undefined) return false;
              clearTimeout(timer);
              waiters.delete(wake);
              done(found);
              return true;
            };
            const wake = (): void => void check();
            const timer = setTimeout(() => {
              waiters.delete(wake);
              fail(new Error(`no matching event within ${timeoutMs} ms; got ${messages.map((m) => m.type).join(', ')}`));
            }, timeoutMs);
            waiters.add(wake);
            check();
          });
        },
        close() {
          return new Promise<void>((done) => {
            if (ws.readyState === ws.CLOSED) {
              done();
              return;
            }
            ws.once('close', () => done());
            ws.terminate();
          });
        },
      }),
    );
  });
}

export function isOpen(stream: OpenStream | { refused: number }): stream is OpenStream {
  return 'ws' in stream;
}
