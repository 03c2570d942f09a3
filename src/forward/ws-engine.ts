/**
 * http-proxy's upgrade path (`proxy.ws`) reduced to what it does well: building and sending the
 * upstream upgrade request. Everything after that belongs to forward/websocket.ts.
 *
 * What http-proxy 1.18.1's `ws` stream pass does, and what is done about it here:
 * - it builds and sends the upstream request (target, headers, `Connection: upgrade`) — kept:
 *   that is what we use it for;
 * - its path joining collapses `//` → the exact request-target is set on the request before
 *   the pass renders its head (from the `proxyReqWs` event, emitted synchronously);
 * - on a connect error it calls back and then `socket.end()`s the client — no retry possible,
 *   and the client is given a bare close instead of a 502;
 * - a client that resets before the 101 leaves the upstream request running, and after a late
 *   101 the upstream socket is piped into a dead socket and stays open (a leak);
 * - a non-101 answer is written back from `res.headers` as they are — hop-by-hop headers and
 *   `Transfer-Encoding: chunked` included, followed by the already de-chunked body (a corrupt
 *   message) — and the upstream request is never cancelled if the client goes away;
 * - after the 101 it pipes both sockets with `pipe()`: no idle timeout, no byte counts, an error
 *   on the upstream side `end()`s the client (an abort presented as a clean close), and nothing
 *   knows when the tunnel ends (in-flight accounting impossible).
 * So the pass is used to create the upstream request only: as soon as `proxy.ws()` returns (it
 * runs synchronously, before any I/O), the `error`, `response` and `upgrade` listeners it put on
 * the request are removed, and the caller attaches its own. It never sees a 101, so it never
 * pipes anything: after the 101 the caller owns both sockets outright.
 */
import { upgradeAgent } from './send-proxy.js';
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
// Before http-proxy loads: it takes util._extend, deprecated on Node 22+ (see node-compat.ts).
import '../node-compat.js';
import httpProxy from 'http-proxy';
import type { UpstreamBackend } from '../upstream/backend.js';

/** The listeners the stream pass adds to the upstream request, and we remove. */
const ENGINE_EVENTS = ['error', 'response', 'upgrade'] as const;
type Listener = (...args: unknown[]) => void;

const NO_HEAD = Buffer.alloc(0);

/** A callback must be passed or http-proxy emits `error`; its error listener is removed anyway. */
function ignoreEngineCallback(): void {}

export class WsEngine {
  readonly #engine: httpProxy;
  #claim: ((upstream: ClientRequest) => void) | null = null;

  constructor() {
    this.#engine = httpProxy.createProxyServer({ toProxy: true, xfwd: false });
    // checkMethodAndHeader (the listener checks method and Upgrade) and XHeaders (headers.ts does it) are not needed.
    const engine = this.#engine as unknown as { wsPasses: { name: string }[] };
    engine.wsPasses = engine.wsPasses.filter((pass) => pass.name === 'stream');
    this.#engine.on('proxyReqWs', (upstream: ClientRequest) => {
      const claim = this.#claim;
      this.#claim = null;
      if (claim !== null) claim(upstream);
    });
    // Safety net: with a callback on every call nothing should reach it.
    this.#engine.on('error', ignoreEngineCallback);
  }

  /**
   * Creates and sends the upgrade request for `req` (headers already prepared) to `backend`,
   * with `target` as its exact request-target; returns it without any of the engine's
   * listeners, before any I/O happened on it. The client's early bytes (`head`) are not given
   * to the engine: the caller keeps them for the tunnel.
   */
  request(req: IncomingMessage, socket: Duplex, backend: UpstreamBackend, target: string): ClientRequest | null {
    let upstream: ClientRequest | null = null;
    const before = new Map<string, Listener[]>();
    this.#claim = (created) => {
      upstream = created;
      created.path = target;
      for (const event of ENGINE_EVENTS) before.set(event, created.listeners(event) as Listener[]);
    };
    // A fresh connection per upgrade (agent: false): it becomes the tunnel, never returns to a pool.
    // With send_proxy_protocol, an agent of its own whose one connection opens with the header.
    this.#engine.ws(req, socket, NO_HEAD, { target: backend.target, agent: upgradeAgent(req.socket, backend) }, ignoreEngineCallback);
    this.#claim = null;
    const created = upstream as ClientRequest | null;
    if (created === null) return null;
    for (const event of ENGINE_EVENTS) {
      const own = before.get(event) ?? [];
      for (const fn of created.listeners(event) as Listener[]) if (!own.includes(fn)) created.off(event, fn);
    }
    return created;
  }
}
