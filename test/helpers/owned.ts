/**
 * What a test starts — processes, servers, sockets, load generators — stopped in `t.teardown`,
 * so a test that fails half-way still frees them and its file ends in seconds instead of at
 * tap's timeout. A test that goes on to assert that nothing is left (a leak check) runs the same
 * stops earlier with `stopAll()`. Each stop runs once, newest first; one that throws does not
 * keep the others from running.
 */
import type { Test } from 'tap';

export interface Owned {
  /** Registers `stop` for `thing` and returns `thing`. */
  <T>(thing: T, stop: (thing: T) => unknown): T;
  /** Runs every registered stop now (the teardown then has nothing left to do). */
  stopAll(): Promise<void>;
}

export function owned(t: Test): Owned {
  const stops: (() => unknown)[] = [];
  const stopAll = async (): Promise<void> => {
    while (stops.length > 0) {
      const stop = stops.pop() as () => unknown;
      try {
        await stop();
      } catch {
        // Cleanup after a failure: the failure itself is what the test reports.
      }
    }
  };
  t.teardown(stopAll);
  const own = <T>(thing: T, stop: (thing: T) => unknown): T => {
    stops.push(() => stop(thing));
    return thing;
  };
  return Object.assign(own, { stopAll });
}

/** Stops for the helpers' usual things. */
export const closeAll = (things: readonly { close(): Promise<unknown> }[]): Promise<unknown> => Promise.all(things.map((x) => x.close()));
export const close = (thing: { close(): Promise<unknown> }): Promise<unknown> => thing.close();
export const stopProxy = (harness: { stop(): Promise<void> }): Promise<void> => harness.stop();
export const stopLoad = (load: { stop(): Promise<unknown> }): Promise<unknown> => load.stop();
