/**
 * `send_proxy_protocol` for HTTP: the upstream connections of a client carry its PROXY header,
 * so they belong to that client connection alone (one small keep-alive agent per client
 * connection and backend, closed when the client goes).
 */
import type { Socket } from 'node:net';
import { formatProxyHeader } from '../core/proxy-header.js';
import { ProxyHeaderAgent, type UpstreamAgent } from '../upstream/agent.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import { connectionAddresses } from './client-address.js';

const agents = new WeakMap<Socket, Map<UpstreamBackend, ProxyHeaderAgent>>();

/** The agent a request from `client` to `backend` goes through. */
export function upstreamAgent(client: Socket, backend: UpstreamBackend): UpstreamAgent {
  const version = backend.sendProxyProtocol;
  if (version === 'off') return backend.agent;
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
