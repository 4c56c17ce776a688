/**
 * Whether the database is there, so requests can fail fast while it is not. A request
 * that fails because the database is unavailable starts a probe (`select 1` on a
 * connection of its own); if the probe fails too, the database is marked down and every
 * request that needs it answers 503 at once, without queueing behind reconnecting pool
 * connections, until the probe, retried every `retryMs`, gets through again. A single
 * dropped connection (the probe succeeds at once) never marks it down.
 *
 * @example
 * const availability = new DatabaseAvailability(() => probePool`select 1`, log);
 * availability.assertAvailable();   // throws DatabaseDownError while down (503 upstream)
 * availability.noteError(err);      // after a failed request
 */
import type { Logger } from '../log.ts';
import { isDatabaseUnavailable } from './unavailable.ts';

/** Thrown while the database is known to be down; its code is one `isDatabaseUnavailable` knows. */
export class DatabaseDownError extends Error {
  override name = 'DatabaseDownError';
  readonly code = 'DATABASE_DOWN';
}

const PROBE_TIMEOUT_MS = 2_000;

export class DatabaseAvailability {
  #down = false;
  #downSince = 0;
  #watching: Promise<void> | undefined;
  #stopped = false;
  readonly #backListeners: (() => void)[] = [];

  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly log: Logger,
    private readonly retryMs = 250,
  ) {}

  /** Called each time the database answers again after an outage. */
  onBack(listener: () => void): void {
    this.#backListeners.push(listener);
  }

  get isDown(): boolean {
    return this.#down;
  }

  /** Whether a probe is running (a failure reported meanwhile starts no second one). */
  get probing(): boolean {
    return this.#watching !== undefined;
  }

  /** Since when (epoch ms) the database is down, or null. */
  get downSince(): number | null {
    return this.#down ? this.#downSince : null;
  }

  assertAvailable(): void {
    if (this.#down)
      throw new DatabaseDownError(
        `the database has been unreachable for ${Math.round((Date.now() - this.#downSince) / 100) / 10} s`,
      );
  }

  /** Reports a failed operation; an outage error starts the probe unless one runs. */
  noteError(err: unknown): void {
    if (this.#stopped || this.#watching || !isDatabaseUnavailable(err) || err instanceof DatabaseDownError) return;
    this.#watching = this.#watch().finally(() => (this.#watching = undefined));
  }

  async #watch(): Promise<void> {
    while (!this.#stopped) {
      try {
        await withTimeout(this.probe(), PROBE_TIMEOUT_MS);
        const wasDown = this.#down;
        if (wasDown) this.log.info({ downMs: Date.now() - this.#downSince }, 'database is back: serving again');
        this.#down = false;
        if (wasDown) for (const listener of this.#backListeners) listener();
        return;
      } catch (err) {
        if (!this.#down) {
          this.#down = true;
          this.#downSince = Date.now();
          this.log.warn(
            { code: (err as { code?: string }).code, err: (err as Error).message },
            'database unavailable: answering 503 until it is back',
          );
        }
        await new Promise((r) => setTimeout(r, this.retryMs).unref());
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#watching;
  }
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`no answer within ${ms} ms`), { code: 'CONNECT_TIMEOUT' })),
      ms,
    );
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}
