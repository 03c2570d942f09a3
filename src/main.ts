#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * Process entry: arguments, config, start; SIGHUP → reload, SIGTERM/SIGINT → graceful
 * shutdown. The only file that touches `process`.
 *
 * Exit codes: 0 clean shutdown, 1 invalid config or a listener that cannot bind, 2 bad usage.
 *
 * The shebang caps V8's young generation at 4 MB per semi-space (default 16): under load the
 * default lets RSS reach ~145 MB for garbage a proxy produces and drops within microseconds;
 * at 4 MB it stays under 100 MB (scripts/bench/RESULTS.md). It must be a command-line flag:
 * V8 sizes the heap before any code runs.
 * Startup errors are one line on stderr, never a stack.
 */
import { createRequire } from 'node:module';
import { parseArgs, USAGE } from './args.js';
import { ConfigError, describeConfig, loadConfig } from './config/load.js';
import { ProxyError } from './errors.js';
import { createLogger, flushLogger } from './log.js';
import { Proxy } from './proxy.js';
import { Primary } from './workers/primary.js';
import { workerCount } from './workers/protocol.js';

function version(): string {
  const pkg = createRequire(import.meta.url)('../../package.json') as { version: string };
  return pkg.version;
}

function printConfigErrors(err: ConfigError): void {
  for (const issue of err.issues) process.stderr.write(`${issue.file}:${issue.line}:${issue.col}: ${issue.path}: ${issue.message}\n`);
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
  // With workers (SPEC §9) this process is the primary: several processes share stdout, so every
  // line is written whole (log.ts).
  const workers = workerCount(config.workers);
  const logger = createLogger({ level: config.log.level, shared: workers > 1 });
  // The loader has checked that the variable is set and not empty.
  const adminToken = config.admin?.token_env === undefined ? null : (process.env[config.admin.token_env] ?? null);
  const proxy = workers > 1 ? new Primary(config, { logger, adminToken, workers }) : new Proxy(config, { logger, adminToken });
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
      if (proxy instanceof Primary) proxy.kill();
      else proxy.flushAccessLog();
      logger.flush();
      process.exit(1);
    }
    stopping = true;
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
  const reload = (): void => {
    if (stopping) {
      logger.info({ signal: 'SIGHUP' }, 'SIGHUP ignored: shutting down');
      return;
    }
    logger.info({ signal: 'SIGHUP', file: config.file }, 'reloading');
    if (running) void proxy.reload();
    else reloadAfterStart = true;
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', reload);

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
