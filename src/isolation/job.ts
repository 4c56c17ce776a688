/**
 * The scheduled validator inside the service: a whole-platform run at start and then
 * every interval, each stored in the control plane. Several instances share the
 * schedule through the stored reports: a run is skipped when any instance finished one
 * within the last 90% of the interval. Runs never overlap; `stop` waits for the one in
 * flight. While the database is unavailable it retries with backoff (db/periodic.ts)
 * and stores no report for the outage.
 *
 * @example
 * const job = startValidatorJob({ sql: platform.control, intervalMs: 3_600_000, log });
 * await job.stop();
 */
import type { Sql } from '../db/connect.ts';
import { startPeriodic, type PeriodicJob } from '../db/periodic.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import type { Logger } from '../log.ts';
import { latestSummary, saveReport } from './report.ts';
import { validate } from './validator.ts';

export type ValidatorJob = PeriodicJob;

export function startValidatorJob(options: {
  sql: Sql;
  intervalMs: number;
  log: Logger;
  backoffBaseMs?: number;
}): ValidatorJob {
  const { sql, intervalMs, log } = options;

  const runOnce = async () => {
    const latest = await latestSummary(sql);
    if (latest && Date.now() - Date.parse(latest.finishedAt) < intervalMs * 0.9) return;
    const startedAt = new Date().toISOString();
    try {
      const report = await validate(sql);
      await saveReport(sql, report);
      const failing = Object.fromEntries(Object.entries(report.counts).filter(([, n]) => n > 0));
      if (report.outcome === 'clean')
        log.info({ tenants: report.tenantsChecked, durationMs: report.durationMs }, 'isolation validated: clean');
      else
        log.warn(
          {
            tenants: report.tenantsChecked,
            violations: report.violations.length,
            checks: failing,
            durationMs: report.durationMs,
          },
          'isolation violations found',
        );
    } catch (err) {
      // An outage is not a finding: nothing can be stored now, and the job retries soon.
      if (isDatabaseUnavailable(err)) throw err;
      log.error({ err }, 'isolation validator could not run');
      const finishedAt = new Date().toISOString();
      await saveReport(sql, {
        outcome: 'error',
        scope: { tenant: null },
        startedAt,
        finishedAt,
        durationMs: Date.parse(finishedAt) - Date.parse(startedAt),
        tenantsChecked: 0,
        error: (err as Error).message,
      });
    }
  };

  return startPeriodic({
    name: 'isolation validator',
    intervalMs,
    run: runOnce,
    log,
    backoffBaseMs: options.backoffBaseMs,
  });
}
