/**
 * The tenant migration fan-out: brings every tenant that is behind the template to its
 * version, each in its own transaction (its DDL, its ledger rows and its registry
 * version commit together or not at all), a few tenants at a time.
 *
 * - One run at a time: a session advisory lock held by a reserved connection of the
 *   platform's privileged pool (tenant roles cannot take advisory locks on it, and it
 *   goes away with the connection, so a killed runner never leaves it behind). Each
 *   tenant's registry row is also locked FOR UPDATE while it migrates.
 * - `lock_timeout` per tenant transaction, retried with exponential backoff: a tenant
 *   whose tables are busy waits a little, never stalls the run or its own traffic.
 * - A tenant that still fails is recorded with its error and stays on its version; the
 *   others go on. A rerun picks up exactly the tenants still behind.
 * - One tenant per transaction keeps the lock count small: TimescaleDB locks a
 *   hypertable and each of its chunks, so only one tenant's chunks count against
 *   `max_locks_per_transaction` at a time.
 *
 * @example
 * const summary = await migrateTenants(platform.control, { concurrency: 4, lockTimeoutMs: 2000, retries: 3, actor: 'cli' });
 * if (summary.failed) console.log(summary.failures);
 * await migrateTenants(platform.control, { ...options, tenants: ['canary-desk'] });   // one tenant first
 */
import { performance } from 'node:perf_hooks';
import type { Sql } from '../db/connect.ts';
import { LOCKS } from '../db/locks.ts';
import { isRetryable } from '../db/retry.ts';
import { ROLES, EXTENSIONS_SCHEMA } from '../db/roles.ts';
import type { Logger } from '../log.ts';
import { renderClonePlan } from '../provisioning/clone-plan.ts';
import { assertTenantRoleName, assertTenantSchemaName } from '../db/names.ts';
import { behindTenants, resolveTenants, type BehindTenant } from './behind.ts';
import { templateVersionOf } from './files.ts';
import { closeAbandonedRuns, recordFailure, startRun, updateRun } from './runs.ts';
import { loadedPlan, type TenantPlan } from './tenant-plan.ts';
import { SQLSTATE } from '../db/sqlstate.ts';

export const RUN_LOCK_KEY = LOCKS.migrationRun;

export class RunInProgressError extends Error {
  override name = 'RunInProgressError';
}

export type Progress = {
  total: number;
  done: number;
  migrated: number;
  failed: number;
  skipped: number;
  elapsedMs: number;
};

export type RunnerOptions = {
  concurrency: number;
  lockTimeoutMs: number;
  retries: number;
  /** First retry's wait; each next one doubles (plus jitter). */
  backoffMs?: number;
  actor: string;
  /**
   * Only these tenants (ids or slugs), for a canary before the rest; an unknown one fails
   * the run before anything is touched (UnknownTenantError). Default: every tenant.
   */
  tenants?: string[];
  /** Wait for a run in progress to finish instead of failing with RunInProgressError. */
  wait?: boolean;
  onProgress?: (progress: Progress) => void;
  /** Called after each tenant with how long it took (all attempts): for benches and logs. */
  onTenant?: (tenant: { id: string; outcome: 'migrated' | 'skipped' | 'failed'; ms: number }) => void;
  /** Stop taking new tenants (the ones in flight finish); the run is recorded as interrupted. */
  signal?: AbortSignal;
  log?: Logger;
};

export type TenantFailure = {
  tenantId: string;
  schema: string;
  migration: string | null;
  code: string | null;
  error: string;
  attempts: number;
};

export type RunSummary = {
  status: 'current' | 'succeeded' | 'failed' | 'interrupted';
  runId: number | null;
  targetVersion: string;
  total: number;
  migrated: number;
  failed: number;
  skipped: number;
  durationMs: number;
  tenantsPerSecond: number;
  failures: TenantFailure[];
};

type LedgerEntry = { name: string; checksum: string; tenant_plan: TenantPlan | null };

export async function migrateTenants(sql: Sql, options: RunnerOptions): Promise<RunSummary> {
  const started = performance.now();
  const lock = await sql.reserve();
  try {
    const [got] = options.wait
      ? await lock`select true as ok from (select pg_advisory_lock(hashtext(${RUN_LOCK_KEY}))) waited`
      : await lock`select pg_try_advisory_lock(hashtext(${RUN_LOCK_KEY})) as ok`;
    if (!got!.ok)
      throw new RunInProgressError(
        'another tenant migration run is in progress; wait for it to finish (see GET /v1/admin/migrations) or pass --wait',
      );
    try {
      return await run(sql, options, started);
    } finally {
      await lock`select pg_advisory_unlock(hashtext(${RUN_LOCK_KEY}))`;
    }
  } finally {
    lock.release();
  }
}

async function run(sql: Sql, options: RunnerOptions, started: number): Promise<RunSummary> {
  await closeAbandonedRuns(sql);
  const ledger = await sql<
    LedgerEntry[]
  >`select name, checksum, tenant_plan from platform.template_migrations order by name`;
  const targetVersion = templateVersionOf(ledger);
  const only = options.tenants ? await resolveTenants(sql, options.tenants) : undefined;
  const behind = await behindTenants(sql, targetVersion, only);
  const summary: RunSummary = {
    status: 'current',
    runId: null,
    targetVersion,
    total: behind.length,
    migrated: 0,
    failed: 0,
    skipped: 0,
    durationMs: 0,
    tenantsPerSecond: 0,
    failures: [],
  };
  if (behind.length === 0) return finish(summary, started);

  // Each version the template has been at, and how many files it had then.
  const prefixes = new Map(ledger.map((_, i) => [templateVersionOf(ledger.slice(0, i + 1)), i] as const));
  const runId = (summary.runId = await startRun(sql, targetVersion, options.actor, behind.length));
  options.log?.info(
    { runId, targetVersion, tenants: behind.length, concurrency: options.concurrency },
    'tenant migration run started',
  );
  let lastSaved = performance.now();
  const progress = () => {
    const { total, migrated, failed, skipped } = summary;
    options.onProgress?.({
      total,
      done: migrated + failed + skipped,
      migrated,
      failed,
      skipped,
      elapsedMs: performance.now() - started,
    });
  };
  progress();

  let next = 0;
  const worker = async () => {
    while (next < behind.length && !options.signal?.aborted) {
      const tenant = behind[next++]!;
      const began = performance.now();
      const outcome = await migrateOne(sql, tenant, ledger, prefixes, targetVersion, options);
      options.onTenant?.({
        id: tenant.id,
        outcome: typeof outcome === 'string' ? outcome : 'failed',
        ms: performance.now() - began,
      });
      if (outcome === 'migrated') summary.migrated++;
      else if (outcome === 'skipped') summary.skipped++;
      else {
        summary.failed++;
        summary.failures.push(outcome);
        await recordFailure(sql, runId, outcome);
        options.log?.warn(
          { runId, tenantId: tenant.id, schema: tenant.schema, code: outcome.code, err: outcome.error },
          'tenant migration failed',
        );
      }
      progress();
      if (performance.now() - lastSaved > 1_000) {
        lastSaved = performance.now();
        await updateRun(sql, runId, summary);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency, behind.length) }, worker));

  summary.status =
    options.signal?.aborted && summary.migrated + summary.failed + summary.skipped < summary.total
      ? 'interrupted'
      : summary.failed
        ? 'failed'
        : 'succeeded';
  await updateRun(sql, runId, summary, summary.status);
  finish(summary, started);
  options.log?.info(
    {
      runId,
      status: summary.status,
      migrated: summary.migrated,
      failed: summary.failed,
      durationMs: summary.durationMs,
    },
    'tenant migration run finished',
  );
  return summary;
}

function finish(summary: RunSummary, started: number): RunSummary {
  summary.durationMs = Math.round((performance.now() - started) * 10) / 10;
  summary.tenantsPerSecond =
    summary.durationMs > 0
      ? Math.round(((summary.migrated + summary.failed) / summary.durationMs) * 1000 * 10) / 10
      : 0;
  return summary;
}

/** Raised inside a tenant's transaction when its registry row moved since the run listed it. */
const MOVED = 'TF409';

/**
 * One tenant, with retries on lock timeouts and deadlocks. The whole transaction body is
 * one multi-statement query (one round trip, like hand-written DDL): lock the registry
 * row and check its version, the plans of the files it lacks, its ledger rows and its
 * new version. Every value inlined is validated (uuid, schema and role names, file names,
 * hex checksums).
 */
async function migrateOne(
  sql: Sql,
  tenant: BehindTenant,
  ledger: LedgerEntry[],
  prefixes: Map<string, number>,
  target: string,
  options: RunnerOptions,
): Promise<'migrated' | 'skipped' | TenantFailure> {
  let pending: LedgerEntry[] = [];
  for (let attempt = 1; ; attempt++) {
    try {
      // The files a tenant lacks follow from its version: tenants are always at a prefix of the ledger.
      const at = prefixes.get(tenant.version) ?? -1;
      if (at < 0)
        throw new Error(
          `tenant is at ${tenant.version}, which is not a version of this template; provision it again or restore it`,
        );
      pending = ledger.slice(at + 1);
      const statements = [
        `select set_config('lock_timeout', '${Math.round(options.lockTimeoutMs)}ms', true)`,
        `do $$ begin perform 1 from platform.tenants where id = '${uuid(tenant.id)}' and status <> 'purged' and template_version = ${literal(tenant.version)} for update;
           if not found then raise exception 'tenant moved' using errcode = '${MOVED}'; end if; end $$`,
        `set local role ${ROLES.owner}`,
      ];
      for (const m of pending) {
        if (!m.tenant_plan)
          throw new Error(
            `${m.name} has no tenant plan (it was applied to the template before tenant plans existed); provision the tenant again`,
          );
        statements.push(
          ...renderClonePlan(
            { templateVersion: target, tables: [], hypertables: [], steps: loadedPlan(m.tenant_plan).steps },
            tenant,
          ),
        );
        if (m.tenant_plan.data)
          statements.push(...dataSection(m.tenant_plan.data, tenant.id, tenant), `set local role ${ROLES.owner}`);
      }
      statements.push(
        'reset role',
        `insert into platform.tenant_migrations (tenant_id, name, checksum) values ${pending.map((m) => `('${uuid(tenant.id)}', ${literal(fileName(m.name))}, '${hex(m.checksum)}')`).join(', ')}`,
        `update platform.tenants set template_version = ${literal(target)} where id = '${uuid(tenant.id)}'`,
      );
      if (pending.length === 0) statements.splice(-2, 1);
      await sql.begin((tx) => tx.unsafe(statements.join(';\n')));
      return 'migrated';
    } catch (err) {
      const e = err as { code?: string; message?: string };
      if (e.code === MOVED) return 'skipped';
      const busy = e.code === SQLSTATE.lockNotAvailable || isRetryable(err);
      if (busy && attempt <= options.retries) {
        const base = options.backoffMs ?? 250;
        await new Promise((r) => setTimeout(r, base * 2 ** (attempt - 1) * (0.75 + Math.random() / 2)));
        continue;
      }
      const hint =
        e.code === SQLSTATE.outOfMemory
          ? ' (raise max_locks_per_transaction, or lower TENANTFORGE_MIGRATE_CONCURRENCY)'
          : busy
            ? ` (still busy after ${attempt} attempts; rerun later)`
            : '';
      return {
        tenantId: tenant.id,
        schema: tenant.schema,
        migration: pending[0]?.name ?? null,
        code: e.code ?? null,
        error: `${e.message ?? String(err)}${hint}`,
        attempts: attempt,
      };
    }
  }
}

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

function uuid(id: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id))
    throw new Error(`unexpected tenant id ${id}`);
  return id;
}

function hex(text: string): string {
  if (!/^[0-9a-f]+$/.test(text)) throw new Error(`unexpected checksum ${text}`);
  return text;
}

function fileName(name: string): string {
  if (!/^\d{4}_[a-z0-9_]+$/.test(name)) throw new Error(`unexpected migration name ${name}`);
  return name;
}

/** A file's data section, run as the tenant's role with its setting, so RLS and defaults apply as for its own requests. */
function dataSection(data: string, tenantId: string, names: { schema: string; role: string }): string[] {
  const role = assertTenantRoleName(names.role);
  return [
    `set local role "${role}"`,
    `select set_config('search_path', '"${assertTenantSchemaName(names.schema)}", ${EXTENSIONS_SCHEMA}', true), set_config('app.current_tenant_id', '${uuid(tenantId)}', true)`,
    data,
  ];
}
