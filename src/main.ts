#!/usr/bin/env -S node --max-semi-space-size=8
/**
 * Process entry: arguments, config, start; SIGHUP → reload, SIGTERM/SIGINT → graceful
 * shutdown, SIGUSR1 → reopen the log file. The only file that touches `process`.
 *
 * Exit codes: 0 clean shutdown, 1 invalid config or a listener that cannot bind, 2 bad usage.
 *
 * The shebang caps V8's young generation at 8 MB per semi-space (default 16): under load the
 * default lets RSS reach ~100–145 MB for garbage a proxy produces and drops within microseconds;
 * at 8 MB it stays near 85 MB. 4 MB saved another 8 MB but cost 10–15% CPU per request in
 * scavenges (scripts/bench/RESULTS.md). It must be a command-line flag: V8 sizes the heap before
 * any code runs.
 * Startup errors are one line on stderr, never a stack.
 */
import './node-compat.js';
import { createRequire } from 'node:module';
import { parseArgs, USAGE } from './args.js';
import { describeConfig, loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import type { EventLog } from './control/events.js';
import { ConfigError, ProxyError, formatIssue } from './errors.js';
import { ConfigWatcher, fileDigest } from './control/watch.js';
import { createLogger, flushLogger, type Logger } from './log.js';
import { LogSink } from './log-sink.js';
import type { Proxy } from './proxy.js';
import type { Primary } from './workers/primary.js';
import { workerCount } from './workers/protocol.js';

function version(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

function printConfigErrors(err: ConfigError): void {
  // formatIssue: the same lines a failed reload logs.
  for (const issue of err.issues) process.stderr.write(`${formatIssue(issue)}\n`);
}

async function check(file: string): Promise<number> {
  try {
    const config = await loadConfig(file);
    process.stdout.write(`${describeConfig(config)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigErrors(err);
      return 1;
    }
    throw err;
  }
}

async function run(file: string): Promise<void> {
  let config;
  // Before loading: `watch` compares later content with what was loaded (a change made while
  // the proxy starts is not missed).
  const loadedDigest = await fileDigest(file);
  try {
    config = await loadConfig(file);
  } catch (err) {
    if (err instanceof ConfigError) {
      printConfigErrors(err);
      process.exitCode = 1;
      return;
    }
    throw err;
  }
  // Logs (SPEC §12): a log file that cannot be opened is a startup error on stderr.
  const logFile = config.log.file ?? null;
  const unwritable = logFile === null ? null : LogSink.probe(logFile);
  if (unwritable !== null) {
    process.stderr.write(`hotwarm: ${unwritable}\n`);
    process.exitCode = 1;
    return;
  }
  // With workers (SPEC §9) this process is the primary: several processes share the log, so every
  // line is written whole, asynchronously and never torn (log-sink.ts, log-writer.ts).
  const workers = workerCount(config.workers);
  const sink = new LogSink({ format: config.log.format, file: logFile, shared: workers > 1 });
  const logger = createLogger({ level: config.log.level, destination: sink });
  // The loader has checked that the variable is set and not empty.
  const adminToken = config.admin?.token_env === undefined ? null : (process.env[config.admin.token_env] ?? null);
  // Only the side this process plays is loaded: a primary never loads the forwarding code
  // (http-proxy, listeners), and one process never loads the cluster supervisor.
  const proxy: Proxy | Primary =
    workers > 1
      ? new (await import('./workers/primary.js')).Primary(config, { logger, adminToken, workers, env: process.env })
      : new (await import('./proxy.js')).Proxy(config, { logger, adminToken, env: process.env });
  const primary = workers > 1 ? (proxy as Primary) : null;
  process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

  // Signals (SPEC §6). SIGTERM/SIGINT: graceful shutdown; a second one exits at once.
  // SIGHUP: reload; the Proxy coalesces signals that arrive while a reload runs. A SIGHUP during
  // startup reloads once the proxy runs (the file may have changed after it was read); one
  // during shutdown is ignored.
  let stopping = false;
  let running = false;
  let reloadAfterStart = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      if (primary !== null) primary.kill();
      else (proxy as Proxy).flushAccessLog();
      logger.flush();
      process.exit(1);
    }
    stopping = true;
    watcher.stop();
    logger.info({ signal }, 'shutting down');
    void proxy
      .shutdown()
      .then(
        () => 0,
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          return 1;
        },
      )
      .then(async (code) => {
        // pino writes asynchronously: without this, the last lines (the shutdown event) are lost.
        await flushLogger(logger);
        process.exit(code);
      });
  };
  // `source`: SIGHUP, or `watch` when the file changed (exactly the same reload).
  const reload = (source: 'SIGHUP' | 'watch' = 'SIGHUP'): void => {
    if (stopping) {
      logger.info({ signal: source }, `${source} ignored: shutting down`);
      return;
    }
    logger.info({ signal: source, file: config.file }, 'reloading');
    if (running) void proxy.reload();
    else reloadAfterStart = true;
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => reload('SIGHUP'));
  const watcher = followConfigFile(proxy, logger, loadedDigest, () => reload('watch'));
  // SIGUSR1: reopen the log file (logrotate's postrotate); lines go to the file at that path from now on.
  process.on('SIGUSR1', () => {
    sink.reopen();
    primary?.reopenLogs();
    logger.info({ signal: 'SIGUSR1', file: logFile }, 'log file reopened');
  });

  try {
    await proxy.start();
  } catch (err) {
    const message = err instanceof ProxyError ? err.message : String(err);
    process.stderr.write(`hotwarm: ${message}\n`);
    await flushLogger(logger);
    process.exit(1);
  }
  running = proxy.running;
  if (running && reloadAfterStart) void proxy.reload();
  if (running && !stopping) watcher.sync();
}

/**
 * `watch: true` (SPEC §12): the file's changes go through `reload`, the SIGHUP path. Whether
 * it is on follows the running config: a reload may turn it on or off.
 */
function followConfigFile(proxy: { readonly config: Config; readonly events: EventLog }, logger: Logger, loadedDigest: string | null, reload: () => void): { sync(): void; stop(): void } {
  const watcher = new ConfigWatcher({
    file: proxy.config.file,
    onChange: reload,
    onError: (message) => logger.warn({ file: proxy.config.file }, message),
  });
  let stopped = false;
  // The first start compares with the content loaded at startup; one after a reload turned
  // watch on compares with the content then.
  let baseline = loadedDigest;
  const sync = (): void => {
    if (stopped) return;
    if (!proxy.config.watch) watcher.stop();
    else if (!watcher.active) void watcher.start(baseline);
    baseline = null;
  };
  const unsubscribe = proxy.events.subscribe((event) => {
    if (event.type === 'reload' && event.ok === true) sync();
  });
  return {
    sync,
    stop: () => {
      stopped = true;
      unsubscribe();
      watcher.stop();
    },
  };
}

async function main(): Promise<void> {
  const command = parseArgs(process.argv.slice(2));
  switch (command.kind) {
    case 'version':
      process.stdout.write(`hotwarm ${version()}\n`);
      return;
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    case 'usage':
      process.stderr.write(`hotwarm: ${command.message}\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    case 'check':
      process.exitCode = await check(command.file);
      return;
    case 'run':
      await run(command.file);
      return;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`hotwarm: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
