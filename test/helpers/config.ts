/** Shared helpers for the config tests (not a test file itself). */
import { ConfigError, parseConfig, type ConfigIssue } from '../../src/config/load.js';

/** Joins lines with "\n", so that line N of the YAML is argument N. */
export const lines = (...text: string[]): string => `${text.join('\n')}\n`;

/** A valid minimal config; the error tables vary it. */
export const MINIMAL = lines(
  'listeners:',
  '  - name: web',
  '    listen: 127.0.0.1:8080',
  '    pool: app',
  'pools:',
  '  app:',
  '    backends:',
  '      - { name: a, address: 127.0.0.1:3001 }',
);

/** `3:5 listeners[0].pool: unknown pool "x"`, compact enough to compare whole lists. */
export const row = (issue: ConfigIssue): string => `${issue.line}:${issue.col} ${issue.path}: ${issue.message}`;

/** The issues `parseConfig` throws for `text`; a rejected promise of anything else, or success, is an error. */
export async function issuesOf(
  text: string,
  options: { env?: Record<string, string | undefined>; file?: string } = {},
): Promise<readonly ConfigIssue[]> {
  try {
    await parseConfig(text, options.file ?? 'proxy.yaml', { env: options.env ?? {} });
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}
