/**
 * The access version (`platform.access_version`): one counter, bumped in the same
 * transaction as every change to what a tenant's API key answers. Each instance reads it
 * every `intervalMs`; a cached key's answer, read together with the version, holds only
 * while the version is unchanged and was read within the last second. So a cached key
 * can be kept for a minute while a revocation made on any instance still takes effect
 * everywhere within a second, at one tiny query per interval per instance instead of
 * one per request of every tenant not seen in the last half second.
 *
 * @example
 * await bumpAccessVersion(tx);                    // in the suspending transaction
 * const watch = new AccessWatch(sql);
 * watch.start();
 * entry.version === watch.version && watch.confirmedWithin(1_000); // still what the database says
 */
import type { Sql, Tx } from '../db/connect.ts';

export async function bumpAccessVersion(tx: Tx): Promise<void> {
  await tx`update platform.access_version set version = version + 1`;
}

export class AccessWatch {
  #version: string | undefined;
  /** When the last successful read started: every change committed before it has been seen. */
  #confirmedAt = Number.NEGATIVE_INFINITY;
  #timer: NodeJS.Timeout | undefined;
  #reading = false;

  constructor(
    private readonly sql: Sql,
    readonly intervalMs = 250,
  ) {}

  start(): void {
    if (this.#timer) return;
    void this.read();
    this.#timer = setInterval(() => void this.read(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Whether every change committed more than `ms` ago has been seen. */
  confirmedWithin(ms: number): boolean {
    return Date.now() - this.#confirmedAt < ms;
  }

  /** The version last read (undefined before the first read). */
  get version(): string | undefined {
    return this.#version;
  }

  /** Reads the version once; a failed read leaves the last confirmation to age. */
  async read(): Promise<void> {
    if (this.#reading) return;
    this.#reading = true;
    const started = Date.now();
    try {
      const [row] = await this.sql<{ version: string }[]>`select version::text from platform.access_version`;
      if (!row) return;
      this.#version = row.version;
      this.#confirmedAt = started;
    } catch {
      // The database is unreachable: the cache falls back to its short lifetime.
    } finally {
      this.#reading = false;
    }
  }
}
