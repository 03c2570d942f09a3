/**
 * Handle-leak check: counts the process's active sockets, servers and timers when created and
 * asserts they return to that baseline (or below it) once everything is closed (each tap test file runs in
 * its own process, so the baseline is this file's own).
 */
import type { Test } from 'tap';

const WATCHED = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout', 'TLSWrap'] as const;

function snapshot(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const name of WATCHED) counts[name] = 0;
  for (const name of process.getActiveResourcesInfo()) {
    if (name in counts) counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

export interface LeakCheck {
  /** Waits up to `graceMs` for the counts to come back to the baseline, then asserts it. */
  assertClean(t: Test, graceMs?: number): Promise<void>;
}

export function leakCheck(): LeakCheck {
  const before = snapshot();
  return {
    async assertClean(t, graceMs = 2_000) {
      const deadline = Date.now() + graceMs;
      let after = snapshot();
      while (Date.now() < deadline && WATCHED.some((k) => (after[k] ?? 0) > (before[k] ?? 0))) {
        await new Promise((r) => setTimeout(r, 20));
        after = snapshot();
      }
      // At most the baseline, not exactly it: a handle of an earlier test still closing when the
      // baseline was taken (a socket whose close was not yet processed) may be gone by now, and
      // how often that happens depends on the machine's speed, not on this test.
      const over = WATCHED.filter((k) => (after[k] ?? 0) > (before[k] ?? 0));
      t.ok(over.length === 0, 'sockets, servers and timers are back to baseline', { found: after, wanted: before, over });
    },
  };
}
