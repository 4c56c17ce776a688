/**
 * Whether scheduled backups keep up: what an on-call engineer alerts on. The figures come
 * from the control plane, so every instance reports the same, for `GET /v1/admin/backups`,
 * `tenantforge backups coverage` and the gauges on `GET /metrics`.
 *
 * A tenant whose plan schedules backups is **overdue** when its newest restorable backup
 * was taken more than two of the plan's intervals ago (at least one scheduled backup
 * missed), or, having none, when the tenant itself is that old. Per-tenant detail stays
 * in the API and the CLI: a gauge per tenant would be 10,000 series.
 *
 * @example
 * const coverage = await backupCoverage(sql, true);
 * coverage.overdueTenants;         // 0 when every schedule keeps up
 * renderBackupMetrics(coverage);   // tenantforge_backup_overdue_tenants 0 ...
 */
import type { Sql } from '../db/connect.ts';
import { MetricsText } from '../http/prometheus.ts';
import { PLANS } from '../tenants/plans.ts';

/** A tenant is overdue past this many of its plan's intervals. */
export const OVERDUE_INTERVALS = 2;

/** How many overdue tenants the API and the CLI list unless told otherwise. */
export const OVERDUE_LIST_LIMIT = 100;

export type OverdueTenant = {
  tenantId: string;
  slug: string;
  plan: string;
  intervalSeconds: number;
  /** When its newest restorable backup was taken (its snapshot); null: it has none. */
  lastBackupAt: string | null;
  /** Seconds since then (or since the tenant was created). */
  ageSeconds: number;
  /** Whether its newest backup attempt ended failed (after its retries). */
  lastAttemptFailed: boolean;
};

export type BackupCoverage = {
  /** False without a backup store: nothing is scheduled, and no tenant counts as overdue. */
  configured: boolean;
  /** Active tenants whose plan schedules backups. */
  scheduledTenants: number;
  overdueTenants: number;
  /** Of the scheduled tenants, those whose newest backup attempt failed. */
  lastFailedTenants: number;
  /** The largest age of a scheduled tenant's newest restorable backup; null with no scheduled tenant. */
  oldestAgeSeconds: number | null;
  jobs: {
    queued: number;
    running: number;
    /** How long the longest-waiting due job has waited past its start time (0 when none waits). */
    delaySeconds: number;
  };
  /** The most overdue tenants first, at most the limit asked for. */
  overdue: OverdueTenant[];
};

/** The most overdue tenants first, as JSON (up to the limit, parameter $2). */
const OVERDUE_LIST = `coalesce((
  select json_agg(o order by o.age_seconds desc, o.id) from (
    select id, slug, plan, interval_ms, last_backup_at, age_seconds, last_attempt_failed
    from flagged where overdue order by age_seconds desc, id limit $2) o), '[]')`;

// Each scheduled tenant with its newest succeeded backup and its newest attempt, both
// found through (tenant_id, created_at): a tenant's expired rows are never read. The
// counts and the list of overdue tenants come from one pass over them; without a list
// (what /metrics asks for) the pass is not materialized at all, which is cheaper.
const coverageSql = (listed: boolean) => `
  with plans as (
    select plan, interval_ms from jsonb_to_recordset($1::jsonb) as p(plan text, interval_ms bigint)
    where interval_ms > 0),
  scheduled as (
    select t.id, t.slug, t.plan, p.interval_ms, good.started_at as last_backup_at,
      extract(epoch from now() - coalesce(good.started_at, t.created_at))::float8 as age_seconds,
      coalesce(latest.status = 'failed', false) as last_attempt_failed
    from platform.tenants t
    join plans p on p.plan = t.plan
    left join lateral (
      select b.started_at from platform.backups b
      where b.tenant_id = t.id and b.status = 'succeeded'
      order by b.created_at desc limit 1) good on true
    left join lateral (
      select b.status from platform.backups b
      where b.tenant_id = t.id and b.status <> 'expired'
      order by b.created_at desc limit 1) latest on true
    where t.status = 'active'),
  flagged as (
    select *, age_seconds * 1000 > ${OVERDUE_INTERVALS} * interval_ms as overdue from scheduled)
  select count(*)::int as scheduled, count(*) filter (where overdue)::int as overdue,
    count(*) filter (where last_attempt_failed)::int as failed, max(age_seconds) as oldest,
    ${listed ? OVERDUE_LIST : `'[]'::json`} as overdue_tenants
  from flagged`;

type Summary = {
  scheduled: number;
  overdue: number;
  failed: number;
  oldest: number | null;
  /** As JSON: timestamps are strings. */
  overdue_tenants: {
    id: string;
    slug: string;
    plan: string;
    interval_ms: number;
    last_backup_at: string | null;
    age_seconds: number;
    last_attempt_failed: boolean;
  }[];
};
type Jobs = { queued: number; running: number; delay_seconds: number };

/** `limit`: how many overdue tenants to list (0: only the counts, as /metrics needs). */
export async function backupCoverage(sql: Sql, configured: boolean, limit = 0): Promise<BackupCoverage> {
  const plans = sql.json(Object.entries(PLANS).map(([plan, p]) => ({ plan, interval_ms: p.backups.intervalMs })));
  const [summaryRows, jobRows] = await Promise.all([
    configured ? sql.unsafe<Summary[]>(coverageSql(limit > 0), limit > 0 ? [plans, limit] : [plans]) : [],
    // The due-job index holds exactly the queued and running rows.
    sql<Jobs[]>`
      select count(*) filter (where status = 'queued')::int as queued,
        count(*) filter (where status = 'running')::int as running,
        coalesce(extract(epoch from max(now() - run_after) filter (where status = 'queued' and run_after < now())), 0)::float8
          as delay_seconds
      from platform.backups where status in ('queued', 'running')`,
  ]);
  const summary = summaryRows[0];
  const jobs = jobRows[0]!;
  return {
    configured,
    scheduledTenants: summary?.scheduled ?? 0,
    overdueTenants: summary?.overdue ?? 0,
    lastFailedTenants: summary?.failed ?? 0,
    oldestAgeSeconds: summary?.oldest ?? null,
    jobs: { queued: jobs.queued, running: jobs.running, delaySeconds: seconds(jobs.delay_seconds) },
    overdue: (summary?.overdue_tenants ?? []).map((r) => ({
      tenantId: r.id,
      slug: r.slug,
      plan: r.plan,
      intervalSeconds: r.interval_ms / 1000,
      lastBackupAt: r.last_backup_at === null ? null : new Date(r.last_backup_at).toISOString(),
      ageSeconds: seconds(r.age_seconds),
      lastAttemptFailed: r.last_attempt_failed,
    })),
  };
}

const seconds = (s: number) => Math.round(s * 10) / 10;

/** The Prometheus gauges; without a store only `tenantforge_backup_configured 0` and the job gauges. */
export function renderBackupMetrics(coverage: BackupCoverage): string {
  const when = (value: number | null) => (coverage.configured ? value : null);
  return new MetricsText()
    .gauge(
      'tenantforge_backup_configured',
      'Whether a backup store is configured (1) or not (0).',
      Number(coverage.configured),
    )
    .gauge(
      'tenantforge_backup_scheduled_tenants',
      'Active tenants whose plan schedules backups.',
      when(coverage.scheduledTenants),
    )
    .gauge(
      'tenantforge_backup_overdue_tenants',
      `Scheduled tenants whose newest restorable backup is older than ${OVERDUE_INTERVALS} plan intervals (or who have none by then).`,
      when(coverage.overdueTenants),
    )
    .gauge(
      'tenantforge_backup_last_failed_tenants',
      'Scheduled tenants whose newest backup attempt failed.',
      when(coverage.lastFailedTenants),
    )
    .gauge(
      'tenantforge_backup_oldest_age_seconds',
      "The age of the oldest among the scheduled tenants' newest restorable backups (the worst recovery point).",
      when(coverage.oldestAgeSeconds),
    )
    .gauge('tenantforge_backup_jobs', 'Backup jobs by state.', [
      ['{status="queued"}', coverage.jobs.queued],
      ['{status="running"}', coverage.jobs.running],
    ])
    .gauge(
      'tenantforge_backup_queue_delay_seconds',
      'How long the longest-waiting due backup job has waited to start (a stuck or stopped worker shows here).',
      coverage.jobs.delaySeconds,
    )
    .toString();
}
