/**
 * One backend as the shell sees it: the core's load fields (in-flight, weight, pick order)
 * plus what the core never touches — its keep-alive agent, health counters, the evidence
 * behind its last transition, and the tunnels open on it.
 */
import type { BackendConfig, HealthCheckConfig } from '../config/schema.js';
import { HealthCounter, PassiveDetector } from '../core/health.js';
import type { PoolMember } from '../core/pool.js';
import type { Role } from '../core/failover-types.js';
import { UpstreamAgent } from './agent.js';

/** Upstream connections kept per backend. Measured in scripts/bench (see RESULTS.md). */
export const MAX_SOCKETS_PER_BACKEND = 64;
/** How many check results and passive errors are kept as evidence for `backend_down`. */
const EVIDENCE_KEPT = 5;

export interface Evidence {
  /** Epoch ms. */
  readonly at: number;
  readonly source: 'check' | 'passive' | 'warmup';
  readonly ok: boolean;
  /** `200`, `ECONNREFUSED`, `timeout after 1000ms`. */
  readonly detail: string;
}

/** Anything that holds a backend connection open beyond one request (TCP or WebSocket tunnel). */
export interface Closable {
  close(reason: string): void;
}

export class UpstreamBackend implements PoolMember {
  readonly pool: string;
  readonly name: string;
  readonly role: Role;
  readonly host: string;
  readonly port: number;
  /** `host:port` (IPv6 bracketed) for logs and status, never for clients. */
  readonly address: string;
  /**
   * Identity across processes and reloads: a reload keeps a backend only when name, address and
   * role are unchanged, so a report about an older backend of the same name is told apart.
   */
  readonly key: string;
  weight: number;
  maxConns: number;
  // Load facts: written by the core pool only (select, acquire, release).
  inFlight = 0;
  credit = 0;
  lastPick = 0;
  servingSince: number | null = null;
  ramp = false;
  readonly agent: UpstreamAgent;
  /** http-proxy's target, built once. */
  readonly target: { readonly protocol: 'http:'; readonly host: string; readonly port: number };
  readonly health: HealthCounter;
  readonly passive: PassiveDetector;
  readonly evidence: Evidence[] = [];
  readonly tunnels = new Set<Closable>();
  /** The pool's send_proxy_protocol: health checks (probes.ts) and connections carry the header. */
  sendProxyProtocol: 'off' | 'v1' | 'v2' = 'off';
  /** Worker side (SPEC §9): the primary counts a passive-failure streak on this backend; the next success is reported. */
  streakOpen = false;
  /** Worker side: refused a connection here; avoided until the primary's verdict or this time (worker clock). */
  avoidUntil = 0;

  constructor(pool: string, config: BackendConfig, check: HealthCheckConfig, passiveThreshold: number) {
    this.pool = pool;
    this.name = config.name;
    this.role = config.role;
    this.host = config.address.host;
    this.port = config.address.port;
    this.address = this.host.includes(':') ? `[${this.host}]:${this.port}` : `${this.host}:${this.port}`;
    this.key = `${this.name}|${this.address}|${this.role}`;
    this.weight = config.weight;
    this.maxConns = config.max_conns;
    this.agent = new UpstreamAgent(MAX_SOCKETS_PER_BACKEND);
    this.target = { protocol: 'http:', host: this.host, port: this.port };
    this.health = new HealthCounter(check.rise, check.fall);
    this.passive = new PassiveDetector(passiveThreshold);
  }

  /** A reload keeps this object (and its state) only when name, address and role are unchanged. */
  matches(config: BackendConfig): boolean {
    return config.name === this.name && config.address.host === this.host && config.address.port === this.port && config.role === this.role;
  }

  /** Applies what a reload may change in place. */
  update(config: BackendConfig, check: HealthCheckConfig, passiveThreshold: number): void {
    this.weight = config.weight;
    this.maxConns = config.max_conns;
    this.health.setThresholds(check.rise, check.fall);
    this.passive.setThreshold(passiveThreshold);
  }

  recordEvidence(entry: Evidence): void {
    this.evidence.push(entry);
    if (this.evidence.length > EVIDENCE_KEPT) this.evidence.shift();
  }

  /** Closes every tunnel and pooled connection (backend down for good, or removed and drained). */
  closeAll(reason: string): void {
    for (const tunnel of [...this.tunnels]) tunnel.close(reason);
    this.agent.destroy();
  }
}
