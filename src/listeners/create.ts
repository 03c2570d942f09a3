/** The one place that knows which {@link Listener} kind a listener's config asks for. */
import type { ListenerConfig } from '../config/schema.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { HttpListener, type HttpListenerDeps } from './http.js';
import type { Listener } from './listener.js';
import { TcpListener, type TcpListenerDeps } from './tcp.js';

export type ListenerDeps = HttpListenerDeps & TcpListenerDeps;

export function createListener(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: ListenerDeps): Listener {
  return config.protocol === 'tcp' ? new TcpListener(config, pools, deps) : new HttpListener(config, pools, deps);
}
