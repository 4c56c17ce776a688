/**
 * The record of tenant migration runs (platform.migration_runs) and the tenants each
 * could not migrate (platform.migration_failures): what `GET /v1/admin/migrations`, the
 * metrics and `tenantforge migrate --json` report.
 *
 * @example
 * const status = await migrationStatus(sql);  // { targetVersion, tenantsBehind, run: { status, total, migrated, failed, failures } }
 */
import type { Sql } from '../db/connect.ts';
import type { MigrationRunStatus } from '../db/schema.ts';
import { countBehind } from './behind.ts';
import { currentTemplateVersion } from './template.ts';

export type MigrationFailure = {
  tenantId: string;
  slug: string;
  schema: string;
  migration: string | null;
  code: string | null;
  error: string;
  attempts: number;
  failedAt: string;
};

export type MigrationRun = {
  id: number;
  status: MigrationRunStatus;
  targetVersion: string;
  actor: string;
  startedAt: string;
  finishedAt: string | null;
  total: number;
  migrated: number;
  failed: number;
  failures: MigrationFailure[];
};

export type MigrationStatus = { targetVersion: string; tenantsBehind: number; run: MigrationRun | null };

/** How many failures a status lists (the count is always complete). */
const FAILURES_SHOWN = 100;

/** Called with the run lock held: a run still "running" is then one whose runner died. */
export async function closeAbandonedRuns(sql: Sql): Promise<void> {
  await sql`update platform.migration_runs set status = 'interrupted', finished_at = now() where status = 'running'`;
}

export async function startRun(sql: Sql, targetVersion: string, actor: string, total: number): Promise<number> {
  const [run] = await sql<{ id: number }[]>`
    insert into platform.migration_runs (target_version, actor, total) values (${targetVersion}, ${actor}, ${total}) returning id`;
  return Number(run!.id);
}

export async function updateRun(
  sql: Sql,
  id: number,
  counts: { migrated: number; failed: number },
  status?: MigrationRunStatus,
): Promise<void> {
  await sql`
    update platform.migration_runs set migrated = ${counts.migrated}, failed = ${counts.failed},
      status = ${status ?? 'running'}, finished_at = ${status && status !== 'running' ? sql`now()` : null}
    where id = ${id}`;
}

export async function recordFailure(
  sql: Sql,
  runId: number,
  failure: { tenantId: string; migration: string | null; code: string | null; error: string; attempts: number },
): Promise<void> {
  await sql`
    insert into platform.migration_failures (run_id, tenant_id, migration, code, error, attempts)
    values (${runId}, ${failure.tenantId}, ${failure.migration}, ${failure.code}, ${failure.error}, ${failure.attempts})
    on conflict (run_id, tenant_id) do update set migration = excluded.migration, code = excluded.code, error = excluded.error,
      attempts = excluded.attempts, failed_at = now()`;
}

/** The template's version, how many tenants are behind it, and the latest run (running or finished). */
export async function migrationStatus(sql: Sql): Promise<MigrationStatus> {
  const targetVersion = await currentTemplateVersion(sql);
  const [tenantsBehind, [run]] = await Promise.all([
    countBehind(sql, targetVersion),
    sql<
      {
        id: string;
        status: MigrationRunStatus;
        target_version: string;
        actor: string;
        started_at: Date;
        finished_at: Date | null;
        total: number;
        migrated: number;
        failed: number;
      }[]
    >`
      select * from platform.migration_runs order by started_at desc, id desc limit 1`,
  ]);
  if (!run) return { targetVersion, tenantsBehind, run: null };
  const failures = await sql<
    {
      tenant_id: string;
      slug: string;
      schema_name: string;
      migration: string | null;
      code: string | null;
      error: string;
      attempts: number;
      failed_at: Date;
    }[]
  >`
    select f.tenant_id::text, t.slug, t.schema_name, f.migration, f.code, f.error, f.attempts, f.failed_at
    from platform.migration_failures f join platform.tenants t on t.id = f.tenant_id
    where f.run_id = ${run.id} order by f.failed_at, f.tenant_id limit ${FAILURES_SHOWN}`;
  return {
    targetVersion,
    tenantsBehind,
    run: {
      id: Number(run.id),
      status: run.status,
      targetVersion: run.target_version,
      actor: run.actor,
      startedAt: run.started_at.toISOString(),
      finishedAt: run.finished_at?.toISOString() ?? null,
      total: run.total,
      migrated: run.migrated,
      failed: run.failed,
      failures: failures.map((f) => ({
        tenantId: f.tenant_id,
        slug: f.slug,
        schema: f.schema_name,
        migration: f.migration,
        code: f.code,
        error: f.error,
        attempts: f.attempts,
        failedAt: f.failed_at.toISOString(),
      })),
    },
  };
}
