/**
 * Backends for the benchmark. Throughput runs use one nginx (C, fast, pinned with the load
 * generator) serving a small body and a 100 KiB body on two ports. Drills use small Node
 * processes, one per backend, that can be killed with SIGKILL and restarted, with a fixed
 * service time and a concurrency limit so that lost capacity shows.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_CORE, startPinned, waitForPort, type Started } from './tools.js';

export async function startNginxBackends(ports: readonly number[], dir: string): Promise<Started> {
  writeFileSync(join(dir, 'big.bin'), Buffer.alloc(100 * 1024, 'x'));
  const servers = ports
    .map(
      (port) => `  server {
    listen 127.0.0.1:${port} reuseport backlog=4096;
    keepalive_requests 1000000;
    location = /small { return 200 "hello from ${port}\\n"; }
    location = /big { alias ${dir}/big.bin; }
    location = /healthz { return 200 "ok\\n"; }
  }`,
    )
    .join('\n');
  const file = join(dir, 'nginx-backends.conf');
  writeFileSync(
    file,
    `worker_processes 1;
daemon off;
pid ${dir}/nginx-backends.pid;
error_log ${dir}/nginx-backends-error.log;
events { worker_connections 9000; }
http {
  access_log off;
  default_type application/octet-stream;
${servers}
}
`,
  );
  const started = startPinned('nginx-backends', LOAD_CORE, ['nginx', '-c', file, '-e', join(dir, 'nginx-backends-error.log')], join(dir, 'nginx-backends.log'));
  await Promise.all(ports.map((p) => waitForPort(p)));
  return started;
}

const DRILL_BACKEND = fileURLToPath(new URL('./drill-backend.js', import.meta.url));

/** A drill backend process: answers `name` after `serviceMs`, at most `concurrency` at a time. */
export async function startDrillBackend(name: string, port: number, dir: string, serviceMs: number, concurrency: number): Promise<Started> {
  const started = startPinned(name, LOAD_CORE, [process.execPath, DRILL_BACKEND, name, String(port), String(serviceMs), String(concurrency)], join(dir, `${name}.log`));
  await waitForPort(port);
  return started;
}
