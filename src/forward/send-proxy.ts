/**
 * `send_proxy_protocol` for HTTP: the upstream connections of a client carry its PROXY header,
 * so they belong to that client connection alone (one small keep-alive agent per client
 * connection and backend, closed when the client goes). The streams of an HTTP/2 connection are
 * one client: they share its agent (their `req.socket` is a stand-in made per stream).
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ProxiedH2Request } from './h2-adapter.js';
import { formatProxyHeader } from '../core/proxy-header.js';
import { ProxyHeaderAgent, type UpstreamAgent } from '../upstream/agent.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import { connectionAddresses } from './client-address.js';

const agents = new WeakMap<Socket, Map<UpstreamBackend, ProxyHeaderAgent>>();

/** The client connection `req` came on: for HTTP/2 the session's socket, not the stream's stand-in. */
function clientConnection(req: IncomingMessage): Socket {
  if (!(req instanceof ProxiedH2Request)) return req.socket;
  return (req.stream.session?.socket as Socket | undefined) ?? req.socket;
}

/** The agent `req` goes through to `backend`. */
export function upstreamAgent(req: IncomingMessage, backend: UpstreamBackend): UpstreamAgent {
  const version = backend.sendProxyProtocol;
  if (version === 'off') return backend.agent;
  const client = clientConnection(req);
  let own = agents.get(client);
  if (own === undefined) {
    const created = new Map<UpstreamBackend, ProxyHeaderAgent>();
    own = created;
    agents.set(client, created);
    client.once('close', () => {
      for (const agent of created.values()) agent.destroy();
      created.clear();
    });
  }
  let agent = own.get(backend);
  if (agent === undefined) {
    agent = new ProxyHeaderAgent(formatProxyHeader(version, connectionAddresses(client)));
    own.set(backend, agent);
  }
  return agent;
}

/** A WebSocket upgrade's own connection (it becomes the tunnel): `false` = a plain one. */
export function upgradeAgent(client: Socket, backend: UpstreamBackend): ProxyHeaderAgent | false {
  const version = backend.sendProxyProtocol;
  return version === 'off' ? false : new ProxyHeaderAgent(formatProxyHeader(version, connectionAddresses(client)));
}
