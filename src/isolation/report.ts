/**
 * Validator reports in the control plane (`platform.isolation_reports`): each whole-
 * platform run is stored, and the latest is what the admin API and the metrics show.
 * Reports older than 90 days are dropped as new ones arrive.
 *
 * @example
 * await saveReport(sql, await validate(sql));
 * const latest = await latestReport(sql); // undefined before the first run
 */
import type { Sql } from '../db/connect.ts';
import type { CheckName } from './checks/catalog.ts';
import type { IsolationReport } from './validator.ts';

/** A run that could not complete (the database refused, a check failed). */
export type FailedRun = {
  outcome: 'error';
  scope: { tenant: string | null };
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  tenantsChecked: 0;
  error: string;
};

export type Run = IsolationReport | FailedRun;
export type StoredReport = Run & { id: number };
/** What the metrics need, without the violations themselves. */
export type ReportSummary = Pick<IsolationReport, 'startedAt' | 'finishedAt' | 'durationMs' | 'tenantsChecked'> & {
  id: number;
  outcome: Run['outcome'];
  counts: Record<CheckName, number> | null;
};

const RETENTION = '90 days';

export async function saveReport(sql: Sql, run: Run): Promise<number> {
  const violations = run.outcome === 'error' ? 0 : run.violations.length;
  const [row] = await sql<{ id: number }[]>`
    insert into platform.isolation_reports (started_at, finished_at, outcome, tenants_checked, violations, report)
    values (${run.startedAt}, ${run.finishedAt}, ${run.outcome}, ${run.tenantsChecked}, ${violations}, ${sql.json(run as never)})
    returning id`;
  await sql`delete from platform.isolation_reports where finished_at < now() - ${RETENTION}::interval`;
  return Number(row!.id);
}

export async function latestReport(sql: Sql): Promise<StoredReport | undefined> {
  const [row] = await sql<{ id: string; report: Run }[]>`
    select id, report from platform.isolation_reports order by finished_at desc, id desc limit 1`;
  return row ? { id: Number(row.id), ...row.report } : undefined;
}

export async function latestSummary(sql: Sql): Promise<ReportSummary | undefined> {
  const [row] = await sql<
    {
      id: string;
      outcome: Run['outcome'];
      tenants_checked: string;
      report: Pick<Run, 'startedAt' | 'finishedAt' | 'durationMs'> & { counts?: Record<CheckName, number> };
    }[]
  >`
    select id, outcome, tenants_checked,
           jsonb_build_object('startedAt', report->'startedAt', 'finishedAt', report->'finishedAt',
                              'durationMs', report->'durationMs', 'counts', report->'counts') as report
    from platform.isolation_reports order by finished_at desc, id desc limit 1`;
  if (!row) return undefined;
  return {
    id: Number(row.id),
    outcome: row.outcome,
    startedAt: row.report.startedAt,
    finishedAt: row.report.finishedAt,
    durationMs: row.report.durationMs,
    tenantsChecked: Number(row.tenants_checked),
    counts: row.report.counts ?? null,
  };
}
