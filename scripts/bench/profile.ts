/**
 * `npm run bench -- profile [--seconds S]`: hotwarm under `node --cpu-prof`, small responses at
 * 64 connections, then the profile's self time summed by function and by area (our code,
 * http-proxy, pino, Node's HTTP internals, streams, GC, native). This is what guided the
 * performance work in RESULTS.md.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hotwarmConfig } from './proxies.js';
import { startBackendsOnce } from './shared.js';
import { TOPOLOGY } from './throughput.js';
import { PROXY_CORE, startPinned, waitForPort, wrk } from './tools.js';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

const HOTWARM = fileURLToPath(new URL('../../src/main.js', import.meta.url));

function area(url: string, name: string): string {
  if (url === '') return name === '(garbage collector)' ? 'gc' : name.startsWith('(') ? name : 'native';
  if (url.includes('/dist/src/')) return 'hotwarm';
  if (url.includes('http-proxy')) return 'http-proxy';
  if (url.includes('pino') || url.includes('sonic-boom')) return 'pino';
  if (url.includes('prom-client')) return 'prom-client';
  if (/node:_http|node:http/.test(url)) return 'node http';
  if (/node:internal\/streams|node:stream/.test(url)) return 'node streams';
  if (/node:net|node:internal\/stream_base|node:internal\/net/.test(url)) return 'node net';
  if (url.startsWith('node:')) return 'node other';
  return 'other';
}

const BARE = fileURLToPath(new URL('./bare-proxy.js', import.meta.url));

/**
 * `build`: another build's directory (its dist/src/main.js), for before/after profiles, or
 * 'bare': the bare http-proxy script (as the per-core comparison runs it), to see where
 * hotwarm's extra CPU per request goes.
 */
export async function profile(dir: string, seconds: number, log: (line: string) => void, build?: string): Promise<string> {
  await startBackendsOnce(TOPOLOGY.hot, dir);
  const config = join(dir, 'hotwarm.yaml');
  writeFileSync(config, hotwarmConfig(TOPOLOGY, true));
  const profDir = mkdtempSync(join(dir, 'prof-'));
  const binary = build === undefined ? HOTWARM : join(build, 'dist/src/main.js');
  // The binary's shebang flags, so the profile is of the process an operator runs.
  const args =
    build === 'bare'
      ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${profDir}`, BARE, String(TOPOLOGY.listenPort), ...TOPOLOGY.hot.map(String)]
      : [process.execPath, '--max-semi-space-size=8', '--cpu-prof', `--cpu-prof-dir=${profDir}`, binary, '-c', config];
  const started = startPinned('hotwarm', PROXY_CORE, args, join(dir, 'hotwarm-profile.log'));
  await waitForPort(TOPOLOGY.listenPort);
  wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}/small`, 64, 3);
  const result = wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}/small`, 64, seconds);
  await started.stop('SIGTERM');
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (file === undefined) throw new Error('no profile written');
  const prof = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfByFn = new Map<string, number>();
  const selfByArea = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = prof.timeDeltas[i] ?? 0;
    if (node === undefined) return;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${lineNumber + 1}`;
    selfByFn.set(key, (selfByFn.get(key) ?? 0) + dt);
    const a = area(url, functionName);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + dt);
    total += dt;
  });
  const pct = (n: number): string => `${((n / total) * 100).toFixed(1).padStart(5)}%`;
  const lines = [`profile of ${build === 'bare' ? 'the bare http-proxy script' : build ?? 'this build'}, ${seconds}s at ${result.rps.toFixed(0)} req/s (${join(profDir, file)})`, '', 'self time by area:'];
  for (const [a, t] of [...selfByArea].sort((x, y) => y[1] - x[1])) lines.push(`  ${pct(t)}  ${a}`);
  lines.push('', 'top functions by self time:');
  for (const [fn, t] of [...selfByFn].sort((x, y) => y[1] - x[1]).slice(0, 40)) lines.push(`  ${pct(t)}  ${fn}`);
  const text = lines.join('\n');
  log(text);
  return text;
}
