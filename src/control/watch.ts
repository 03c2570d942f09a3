/**
 * `watch: true`: a reload when the config file's content changes (SPEC §12), for deploy tools
 * that replace the file and send no signal — Kubernetes above all.
 *
 * A ConfigMap volume never writes the file in place: `proxy.yaml` is a symlink to
 * `..data/proxy.yaml`, `..data` a symlink to a timestamped folder, and an update writes a new
 * folder and renames a new `..data` over the old one. A watch on the file itself would follow
 * the old inode and miss it. So the folder holding the file is watched (plus the folder of its
 * resolved target when that is elsewhere), any event there schedules a look, and a look reads
 * the file through its path and compares a hash of the content: a reload only when the content
 * differs from the last seen. Editors that write a temporary file and rename it, `cp`, and
 * in-place writes all come down to the same look.
 *
 * Debounce: the look happens {@link QUIET_MS} after the last event, and at most
 * {@link MAX_DELAY_MS} after the first, so a burst of events (a swap is several) is one
 * reload, and one change reloads within a second.
 */
import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Quiet time after the last event before the file is read. */
export const QUIET_MS = 150;
/** The longest a look waits after the first event of a burst. */
export const MAX_DELAY_MS = 600;

export interface ConfigWatcherOptions {
  readonly file: string;
  /** The content changed: reload (the caller's SIGHUP path). */
  readonly onChange: () => void;
  /** A folder that cannot be watched (removed, no permission): logged, the others go on. */
  readonly onError?: (message: string) => void;
}

export class ConfigWatcher {
  readonly #options: ConfigWatcherOptions;
  readonly #watchers = new Map<string, FSWatcher>();
  #fingerprint: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #firstEventAt = 0;
  #active = false;
  /** A look is running: events meanwhile schedule another after it. */
  #looking = false;

  constructor(options: ConfigWatcherOptions) {
    this.#options = options;
  }

  get active(): boolean {
    return this.#active;
  }

  /**
   * Starts watching. `baseline`: the digest of the content the running config was read from
   * ({@link fileDigest} before loading it), so a change made between that load and now is
   * seen at once; null takes the content now.
   */
  async start(baseline: string | null = null): Promise<void> {
    if (this.#active) return;
    this.#active = true;
    this.#fingerprint = baseline ?? (await fileDigest(this.#options.file));
    await this.#watchFolders();
    if (baseline !== null) this.#onEvent();
  }

  stop(): void {
    this.#active = false;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
  }

  #onEvent(): void {
    if (!this.#active) return;
    const now = Date.now();
    if (this.#timer === null) this.#firstEventAt = now;
    else clearTimeout(this.#timer);
    const delay = Math.max(0, Math.min(QUIET_MS, this.#firstEventAt + MAX_DELAY_MS - now));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#look();
    }, delay);
  }

  async #look(): Promise<void> {
    if (this.#looking) {
      this.#onEvent();
      return;
    }
    this.#looking = true;
    try {
      const fingerprint = await fileDigest(this.#options.file);
      if (!this.#active) return;
      // Missing for a moment (between an unlink and a rename): the next event brings it back.
      if (fingerprint !== null && fingerprint !== this.#fingerprint) {
        this.#fingerprint = fingerprint;
        this.#options.onChange();
      }
      await this.#watchFolders();
    } finally {
      this.#looking = false;
    }
  }

  /** The file's folder, and its resolved target's folder when elsewhere (that one changes on a swap). */
  async #watchFolders(): Promise<void> {
    const folders = new Set([dirname(this.#options.file)]);
    try {
      folders.add(dirname(await realpath(this.#options.file)));
    } catch {
      // not there right now; the file's own folder is still watched
    }
    if (!this.#active) return;
    for (const [folder, watcher] of this.#watchers) {
      if (folders.has(folder)) continue;
      watcher.close();
      this.#watchers.delete(folder);
    }
    for (const folder of folders) {
      if (this.#watchers.has(folder)) continue;
      try {
        const watcher = watch(folder, { persistent: false }, () => this.#onEvent());
        // A watched folder that goes away (the old timestamped folder of a swap) ends its watcher.
        watcher.on('error', () => {
          watcher.close();
          if (this.#watchers.get(folder) === watcher) this.#watchers.delete(folder);
        });
        this.#watchers.set(folder, watcher);
      } catch (err) {
        this.#options.onError?.(`cannot watch ${folder}: ${(err as Error).message}`);
      }
    }
  }
}

/** A hash of a file's content read through its path (symlinks followed), or null if unreadable. */
export async function fileDigest(file: string): Promise<string | null> {
  try {
    return createHash('sha256').update(await readFile(file)).digest('hex');
  } catch {
    return null;
  }
}
