/**
 * The files in deploy/: each parses, and what can be checked without a container engine, a
 * cluster or a second host is checked — the image runs the proxy as non-root under an init,
 * the systemd unit passes `systemd-analyze verify`, the Kubernetes ConfigMap's proxy.yaml
 * passes `hotwarm check`, and probes, ports and grace periods agree with that config.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULTS } from '../../src/config/schema.js';
import { parseDuration } from '../../src/config/units.js';
import { runBin } from '../helpers/process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const ms = (text: string): number => {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
};
const available = (command: string): boolean => spawnSync('sh', ['-c', `command -v ${command}`]).status === 0;

// ---------------------------------------------------------------------------------------------

interface Instruction {
  readonly op: string;
  readonly args: string;
}

/** Dockerfile → instructions per stage (continuation lines joined, comments dropped). */
function dockerStages(text: string): Instruction[][] {
  const stages: Instruction[][] = [];
  const logical = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of logical) {
    const [op = '', ...rest] = line.split(/\s+/);
    const instruction = { op: op.toUpperCase(), args: rest.join(' ') };
    if (instruction.op === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return stages;
}

t.test('Dockerfile: Node 24, non-root, tini as PID 1, exec-form ENTRYPOINT and CMD, sources that exist', async (t) => {
  const stages = dockerStages(read('deploy/Dockerfile'));
  t.ok(stages.length >= 2, 'a build stage and a runtime stage');
  for (const stage of stages) t.match(stage[0]?.args, /^node:24[-.\w]* ?/, 'every stage is Node 24');
  const runtime = stages.at(-1) ?? [];
  const users = runtime.filter((i) => i.op === 'USER');
  t.equal(users.length, 1, 'the runtime stage sets USER');
  t.notMatch(users[0]?.args ?? 'root', /^(root|0)(:|$)/, 'and it is not root');
  const last = (op: string): string => runtime.filter((i) => i.op === op).at(-1)?.args ?? '';
  const entrypoint = JSON.parse(last('ENTRYPOINT')) as string[];
  const cmd = JSON.parse(last('CMD')) as string[];
  t.ok(Array.isArray(entrypoint) && Array.isArray(cmd), 'ENTRYPOINT and CMD in exec form (no shell between the signals and the proxy)');
  t.match(entrypoint[0], /tini$/, 'tini is PID 1');
  t.equal(entrypoint[1], '--');
  t.equal(entrypoint[2], 'node');
  const bin = (JSON.parse(read('package.json')) as { bin: { hotwarm: string } }).bin.hotwarm;
  t.equal(entrypoint.at(-1), `/app/${bin}`, 'runs the package bin');
  t.strictSame(cmd, ['-c', '/etc/hotwarm/proxy.yaml']);
  t.ok(runtime.some((i) => i.op === 'RUN' && /apt-get install .*\btini\b/.test(i.args)), 'tini comes from Debian');
  t.notOk(runtime.some((i) => i.op === 'RUN' && /npm (ci|install)/.test(i.args)), 'the runtime stage installs no npm packages');
  t.ok(stages[0]?.some((i) => i.op === 'RUN' && i.args.includes('npm prune --omit=dev')), 'development dependencies are pruned');
  for (const stage of stages) {
    for (const copy of stage.filter((i) => i.op === 'COPY' && !i.args.includes('--from='))) {
      const sources = copy.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
      for (const source of sources) t.ok(existsSync(join(ROOT, source)), `COPY source ${source} exists`);
    }
  }
  const ignore = read('deploy/Dockerfile.dockerignore').split('\n');
  for (const entry of ['node_modules', 'dist', '.git']) t.ok(ignore.includes(entry), `${entry} stays out of the build context`);
});

// ---------------------------------------------------------------------------------------------

/** An INI-style unit file → key → values (keys may repeat). */
function unitKeys(text: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match === null) continue;
    keys.set(match[1] as string, [...(keys.get(match[1] as string) ?? []), match[2] as string]);
  }
  return keys;
}

t.test('systemd unit: reload by SIGHUP, low ports without root, restart on failure, hardened', async (t) => {
  const unit = read('deploy/systemd/hotwarm.service');
  const keys = unitKeys(unit);
  const one = (key: string): string | undefined => keys.get(key)?.at(-1);
  t.equal(one('ExecReload'), '/bin/kill -HUP $MAINPID');
  t.match(one('ExecStart'), /node .*dist\/src\/main\.js -c \/etc\/hotwarm\/proxy\.yaml$/);
  t.match(one('ExecStartPre'), / check -c \/etc\/hotwarm\/proxy\.yaml$/, 'a bad config fails the start before anything binds');
  t.equal(one('User'), 'hotwarm', 'not root');
  t.equal(one('AmbientCapabilities'), 'CAP_NET_BIND_SERVICE');
  t.equal(one('CapabilityBoundingSet'), 'CAP_NET_BIND_SERVICE', 'and no other capability');
  t.equal(one('Restart'), 'on-failure');
  t.equal(one('KillSignal'), 'SIGTERM');
  t.ok(ms(one('TimeoutStopSec') ?? '0s') > ms(DEFAULTS.shutdown_timeout), 'systemd waits longer than shutdown_timeout');
  for (const [key, value] of [['NoNewPrivileges', 'true'], ['ProtectSystem', 'strict'], ['ProtectHome', 'true'], ['PrivateTmp', 'true'], ['RestrictSUIDSGID', 'true']]) {
    t.equal(one(key as string), value, `${key}=${value}`);
  }
  t.notOk(keys.has('MemoryDenyWriteExecute'), 'no MemoryDenyWriteExecute: V8 needs W^X exceptions for its JIT');
  if (available('systemd-analyze')) {
    const verify = spawnSync('systemd-analyze', ['verify', join(ROOT, 'deploy/systemd/hotwarm.service')], { encoding: 'utf8' });
    t.equal(verify.status, 0, `systemd-analyze verify: ${verify.stderr}`);
    t.equal(verify.stderr.split('\n').filter((l) => l.includes('hotwarm.service')).join('\n'), '', 'no warning about the unit');
  } else {
    t.pass('systemd-analyze is not installed here: the unit is checked by parsing only');
  }
  const rotate = read('deploy/systemd/hotwarm.logrotate');
  t.match(rotate, /postrotate\n\s+systemctl kill --kill-whom=main --signal=SIGUSR1 hotwarm\.service/, 'logrotate reopens with SIGUSR1');
  t.notMatch(rotate.replace(/#.*$/gm, ""), /copytruncate/, "no copytruncate");
});

// ---------------------------------------------------------------------------------------------

type Manifest = { kind: string; metadata: { name: string }; data?: Record<string, string>; spec?: Record<string, unknown> };
interface Container {
  args: string[];
  ports: { name: string; containerPort: number }[];
  readinessProbe: { httpGet: { path: string; port: string } };
  livenessProbe: { httpGet: { path: string; port: string } };
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  securityContext: { allowPrivilegeEscalation: boolean; readOnlyRootFilesystem: boolean };
  volumeMounts: { name: string; mountPath: string; subPath?: string }[];
  env: { name: string }[];
}

t.test('Kubernetes: the ConfigMap passes hotwarm check; probes, ports and grace period agree with it', async (t) => {
  const docs = parseAllDocuments(read('deploy/kubernetes/hotwarm.yaml'));
  for (const doc of docs) t.strictSame(doc.errors, [], 'each document parses');
  const manifests = docs.map((d) => d.toJS() as Manifest);
  const find = (kind: string): Manifest => {
    const found = manifests.find((m) => m.kind === kind);
    if (found === undefined) throw new Error(`no ${kind}`);
    return found;
  };
  const configMap = find('ConfigMap');
  const deployment = find('Deployment');
  const service = find('Service');
  const text = configMap.data?.['proxy.yaml'] ?? '';

  const pod = (deployment.spec as { template: { spec: Record<string, unknown> } }).template.spec as {
    terminationGracePeriodSeconds: number;
    securityContext: { runAsNonRoot: boolean };
    containers: Container[];
    volumes: { name: string; configMap?: { name: string } }[];
  };
  const container = pod.containers[0] as Container;
  const env = Object.fromEntries(container.env.map((e) => [e.name, 'test-token']));
  const config = await parseConfig(text, 'proxy.yaml', { env });
  t.equal(config.watch, true, 'watch: true');

  const dir = t.testdir({});
  writeFileSync(join(dir, 'proxy.yaml'), text);
  const check = await runBin(['check', '-c', 'proxy.yaml'], { cwd: dir, env });
  t.equal(check.code, 0, `hotwarm check: ${check.stderr}`);
  t.match(check.stdout, /^ok: 1 listeners, 1 pools, \d+ backends\n$/);

  const port = (name: string): number | undefined => container.ports.find((p) => p.name === name)?.containerPort;
  t.equal(container.readinessProbe.httpGet.path, '/readyz');
  t.equal(container.livenessProbe.httpGet.path, '/healthz');
  t.equal(port(container.readinessProbe.httpGet.port), config.admin?.listen.port, 'the probes reach the admin listener');
  t.equal(port(container.livenessProbe.httpGet.port), config.admin?.listen.port);
  t.not(config.admin?.listen.host, '127.0.0.1', 'which listens beyond loopback, so the kubelet can reach it');
  const preStop = Number(container.lifecycle?.preStop?.exec?.command[1] ?? 0);
  t.ok(pod.terminationGracePeriodSeconds * 1000 > config.shutdown_timeout + preStop * 1000, 'grace period > preStop pause + shutdown_timeout');

  const mount = container.volumeMounts.find((m) => pod.volumes.find((v) => v.name === m.name)?.configMap?.name === configMap.metadata.name);
  t.ok(mount, 'the ConfigMap is mounted');
  t.equal(mount?.subPath, undefined, 'as a folder: a subPath mount is never updated');
  t.equal(join(mount?.mountPath ?? '', 'proxy.yaml'), container.args[container.args.indexOf('-c') + 1], '-c names the mounted file');
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.equal(container.securityContext.allowPrivilegeEscalation, false);

  const targets = (service.spec as { ports: { targetPort: string }[] }).ports.map((p) => port(p.targetPort));
  t.strictSame(targets, config.listeners.map((l) => l.listen.port), 'the Service reaches the listener');
});

// ---------------------------------------------------------------------------------------------

t.test('keepalived: two instances share one VIP, each tracking its own /readyz', async (t) => {
  const configs = ['a', 'b'].map((host) => ({ host, text: read(`deploy/keepalived/keepalived-${host}.conf`) }));
  const field = (text: string, key: string): string => new RegExp(`^\\s*${key}\\s+(.+)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  const block = (text: string, name: string): string => new RegExp(`${name}\\s*\\{([^}]*)\\}`).exec(text)?.[1]?.trim() ?? '';
  for (const { host, text } of configs) {
    const body = text.replace(/#.*$/gm, '');
    t.equal((body.match(/\{/g) ?? []).length, (body.match(/\}/g) ?? []).length, `${host}: braces balance`);
    t.match(block(body, 'vrrp_script chk_hotwarm'), /script ".*curl -fsS .*http:\/\/127\.0\.0\.1:9901\/readyz"/, `${host}: checks /readyz`);
    t.match(block(body, 'track_script'), 'chk_hotwarm', `${host}: the instance tracks it`);
    if (available('keepalived')) {
      const test = spawnSync('keepalived', ['--config-test', '-f', join(ROOT, `deploy/keepalived/keepalived-${host}.conf`)], { encoding: 'utf8' });
      t.equal(test.status, 0, `keepalived --config-test: ${test.stderr}`);
    }
  }
  const [a, b] = configs.map((c) => c.text) as [string, string];
  t.equal(block(a, 'virtual_ipaddress'), block(b, 'virtual_ipaddress'), 'one VIP');
  t.equal(field(a, 'virtual_router_id'), field(b, 'virtual_router_id'), 'one VRRP group');
  t.not(field(a, 'priority'), field(b, 'priority'), 'different priorities');
  t.equal(field(a, 'unicast_src_ip'), block(b, 'unicast_peer'), 'each names the other as its peer');
  t.equal(field(b, 'unicast_src_ip'), block(a, 'unicast_peer'));
  
});
