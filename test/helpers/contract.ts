/**
 * The integration scenarios as one contract that every transport of the same design must pass
 * (SPEC §9: one process, or a primary and workers): a scenario file runs again in a child
 * process with HOTWARM_TEST_WORKERS set, and every proxy it starts — in process through the
 * harness, or as a child through writeConfig — then has that many workers. The scenarios are
 * the same files, not copies (hono's `common.case.test.ts` idea).
 */
import type { Test } from 'tap';
import { fileURLToPath } from 'node:url';

/**
 * Runs each of `scenarios` with `workers`: file names without `.test.ts`, under test/integration/,
 * or under another test folder when they name it (`hostile/bad-input`).
 */
export function runScenarios(t: Test, scenarios: readonly string[], workers: number): void {
  // Each scenario file is its own child with its own budget; they run one after another.
  t.setTimeout(scenarios.length * 240_000);
  for (const name of scenarios) {
    const file = fileURLToPath(new URL(`../${name.includes('/') ? name : `integration/${name}`}.test.ts`, import.meta.url));
    t.spawn(process.execPath, [...process.execArgv, file], { env: { ...process.env, HOTWARM_TEST_WORKERS: String(workers) } }, `${name} with workers: ${workers}`);
  }
}
