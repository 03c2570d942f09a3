/** hotwarm's own version, from package.json (found from src/ when tested, from dist/src/ when built). */
import { createRequire } from 'node:module';

let cached: string | null = null;

export function hotwarmVersion(): string {
  if (cached !== null) return cached;
  const require = createRequire(import.meta.url);
  for (const path of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(path) as { name?: string; version?: string };
      if (pkg.name === 'hotwarm' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // Not at this depth: try the next.
    }
  }
  return (cached = '0.0.0');
}
