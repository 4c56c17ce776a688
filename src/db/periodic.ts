/**
 * Background work on a schedule that survives database outages: a run at start (or
 * after `firstDelayMs`), then one every `intervalMs`. A run that fails because the
 * database is unavailable is retried sooner, with doubling, jittered delays (1 s, 2 s,
 * 4 s, ... capped at the interval), and logged once per outage rather than once per
 * try; the first run that succeeds again logs the recovery and restores the interval.
 * Runs never overlap; `stop` waits for the one in flight.
 *
 * @example
 * const job = startPeriodic({ name: 'retention purge', intervalMs: 3_600_000, log, run: () => tenants.purgeExpired(who) });
 * await job.stop();
 */
import type { Logger } from '../log.ts';
import { backoffMs, isDatabaseUnavailable } from './unavailable.ts';

export type PeriodicJob = {
  stop(): Promise<void>;
  /** Consecutive runs that found the database unavailable (0 when the last run got through). */
  readonly failures: number;
};

export type PeriodicOptions = {
  name: string;
  intervalMs: number;
  run: () => Promise<unknown>;
  log: Logger;
  firstDelayMs?: number;
  /** First retry delay after an outage (tests shorten it). */
  backoffBaseMs?: number;
};

export function startPeriodic(options: PeriodicOptions): PeriodicJob {
  const { name, intervalMs, run, log } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let failures = 0;

  const tick = () => {
    running = run()
      .then(
        () => {
          if (failures > 0)
            log.info({ job: name, failedRuns: failures }, `${name}: database is back; running on schedule again`);
          failures = 0;
          return intervalMs;
        },
        (err) => {
          if (!isDatabaseUnavailable(err)) {
            log.error({ err, job: name }, `${name} failed`);
            return intervalMs;
          }
          failures++;
          const delay = Math.min(intervalMs, backoffMs(failures, options.backoffBaseMs));
          if (failures === 1)
            log.warn(
              { job: name, code: (err as { code?: string }).code, retryInMs: delay },
              `${name}: database unavailable; retrying with backoff`,
            );
          return delay;
        },
      )
      .then((delay) => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, delay).unref();
      });
  };
  timer = setTimeout(tick, options.firstDelayMs ?? 0).unref();

  return {
    get failures() {
      return failures;
    },
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
