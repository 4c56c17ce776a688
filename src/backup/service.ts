/**
 * Tenant backups as jobs: start one (queued, answered at once), list them, run them
 * (claimed with `FOR UPDATE SKIP LOCKED` under a renewed lease, retried with backoff),
 * restore one into a new tenant or in place of an existing one's rows, and expire old
 * ones per plan.
 *
 * Why a job table of our own and not pg-boss or graphile-worker: their current releases
 * need Node 22 (this project runs on Node 20), and a backup is already a row with a
 * status that the API shows; making that row the job keeps one source of truth, and
 * claiming it is one UPDATE.
 *
 * @example
 * const backup = await backups.start('acme', { actor: 'cli' });   // status 'queued'
 * await backups.runNext();                                         // claims and runs it
 * const tenant = await backups.restoreInto({ slug: 'acme-copy', name: 'Acme', plan: 'pro' }, backup.id, who);
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Sql } from '../db/connect.ts';
import { LOCKS } from '../db/locks.ts';
import { SQLSTATE, sqlState } from '../db/sqlstate.ts';
import type { BackupStatus } from '../db/schema.ts';
import { AppError } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { ROLES } from '../db/roles.ts';
import { templateVersionOf } from '../migrations/files.ts';
import { assertTenantSchemaName } from '../provisioning/names.ts';
import type { Logger } from '../log.ts';
import { PLANS } from '../tenants/plans.ts';
import type { CreateTenantInput } from '../tenants/schemas.ts';
import type { Actor, Tenant, TenantService } from '../tenants/service.ts';
import { backupCoverage, type BackupCoverage } from './coverage.ts';
import { backupFolder, indexKey } from './manifest.ts';
import { assertTemplateCompatible, loadBackup, locateBackup, templateMigrations } from './restore.ts';
import { snapshotTenant, tableLayout } from './snapshot.ts';
import { describeS3Error, notConfigured, type BackupStore } from './store.ts';

export type Backup = {
  id: string;
  tenantId: string;
  status: BackupStatus;
  trigger: 'manual' | 'scheduled';
  attempts: number;
  error: string | null;
  templateVersion: string | null;
  sizeBytes: number | null;
  rawBytes: number | null;
  /** Rows per table. */
  tables: Record<string, number> | null;
  encryption: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
};

type BackupRow = {
  id: string;
  tenant_id: string;
  status: BackupStatus;
  trigger: 'manual' | 'scheduled';
  attempts: number;
  max_attempts: number;
  error: string | null;
  template_version: string | null;
  size_bytes: string | null;
  raw_bytes: string | null;
  tables: Record<string, number> | null;
  encryption: string | null;
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
  duration_ms: number | null;
};

export type BackupServiceOptions = {
  sql: Sql;
  store: BackupStore | undefined;
  tenants: TenantService;
  log: Logger;
  /** How long a claimed backup stays claimed without a heartbeat. */
  leaseMs?: number;
  /** Wait before the first retry; doubled for each further one. */
  retryDelayMs?: number;
  maxAttempts?: number;
};

export class BackupService {
  readonly worker = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #leaseMs: number;
  readonly #retryDelayMs: number;
  readonly #maxAttempts: number;

  #sleepers: (() => void)[] = [];

  constructor(private readonly deps: BackupServiceOptions) {
    this.#leaseMs = deps.leaseMs ?? 60_000;
    this.#retryDelayMs = deps.retryDelayMs ?? 30_000;
    this.#maxAttempts = deps.maxAttempts ?? 3;
  }

  get store(): BackupStore {
    if (!this.deps.store) throw notConfigured();
    return this.deps.store;
  }

  /** Wakes this instance's idle workers (a backup was just queued). */
  kick(): void {
    for (const wake of this.#sleepers.splice(0)) wake();
  }

  /** Waits `ms`, or less when kicked. */
  idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#sleepers.push(done);
    });
  }

  /** Queues a backup of a tenant; a worker (this instance's or another's) runs it. */
  async start(idOrSlug: string, who: Actor, trigger: 'manual' | 'scheduled' = 'manual'): Promise<Backup> {
    // The tenant first: an unknown tenant is a 404 whether or not backups are configured.
    const tenant = await this.deps.tenants.get(idOrSlug);
    if (tenant.status === 'deleted' || tenant.status === 'purged') {
      throw new AppError(
        409,
        'tenant_deleted',
        'Tenant is deleted',
        `tenant ${tenant.slug} is ${tenant.status}; its data cannot be backed up`,
      );
    }
    if (!this.deps.store) throw notConfigured();
    const [row] = await this.deps.sql<BackupRow[]>`
      insert into platform.backups (tenant_id, trigger, max_attempts) values (${tenant.id}, ${trigger}, ${this.#maxAttempts}) returning *`;
    await this.#audit(who, 'backup.start', tenant.id, { backupId: row!.id, trigger });
    this.deps.log.info({ tenantId: tenant.id, backupId: row!.id, trigger, requestId: who.requestId }, 'backup queued');
    return toBackup(row!);
  }

  /** A tenant's backups, newest first. */
  async list(idOrSlug: string, limit = 100): Promise<Backup[]> {
    const tenant = await this.deps.tenants.get(idOrSlug);
    const rows = await this.deps.sql<BackupRow[]>`
      select * from platform.backups where tenant_id = ${tenant.id} order by created_at desc, id limit ${limit}`;
    return rows.map(toBackup);
  }

  /** One backup of one tenant: another tenant's backup id is a 404, like an unknown one. */
  async get(idOrSlug: string, backupId: string): Promise<Backup> {
    const tenant = await this.deps.tenants.get(idOrSlug);
    const [row] = isUuid(backupId)
      ? await this.deps.sql<
          BackupRow[]
        >`select * from platform.backups where id = ${backupId} and tenant_id = ${tenant.id}`
      : [];
    if (!row)
      throw new AppError(
        404,
        'backup_not_found',
        'Backup not found',
        `tenant ${tenant.slug} has no backup ${JSON.stringify(backupId)}`,
      );
    return toBackup(row);
  }

  /** Claims the next due backup (or the given one) and runs it. Returns the finished row, or undefined when none was due. */
  async runNext(onlyId?: string): Promise<Backup | undefined> {
    const { sql } = this.deps;
    // A lease that ran out with no attempts left: its instance died on the last try.
    await sql`
      update platform.backups set status = 'failed', finished_at = now(), error = coalesce(error, 'the instance running it stopped')
      where status = 'running' and lease_until < now() and attempts >= max_attempts`;
    const [claimed] = await sql<BackupRow[]>`
      update platform.backups b set status = 'running', attempts = b.attempts + 1, worker = ${this.worker},
        lease_until = now() + ${`${this.#leaseMs} milliseconds`}::interval, started_at = coalesce(b.started_at, now())
      where b.id = (
        select id from platform.backups
        where ((status = 'queued' and run_after <= now()) or (status = 'running' and lease_until < now()))
          and attempts < max_attempts ${onlyId ? sql`and id = ${onlyId}` : sql``}
        order by run_after, created_at
        for update skip locked
        limit 1)
      returning b.*`;
    if (!claimed) return undefined;
    return this.#run(claimed);
  }

  async #run(row: BackupRow): Promise<Backup> {
    const { sql, log } = this.deps;
    const store = this.store;
    const started = performance.now();
    const controller = new AbortController();
    // Renew the lease while running; if another instance took the backup over (ours ran out), stop.
    const heartbeat = setInterval(
      () => {
        sql`update platform.backups set lease_until = now() + ${`${this.#leaseMs} milliseconds`}::interval
          where id = ${row.id} and worker = ${this.worker} and status = 'running' returning id`
          .then((r) => r.length === 0 && controller.abort(new Error('lost the lease on this backup')))
          .catch(() => {});
      },
      Math.max(1_000, this.#leaseMs / 3),
    );
    heartbeat.unref();
    try {
      const tenant = await this.deps.tenants.get(row.tenant_id);
      const [names] = await sql<
        { schema_name: string; role_name: string; status: string }[]
      >`select schema_name, role_name, status from platform.tenants where id = ${row.tenant_id}`;
      if (names!.status === 'purged') throw new Error('the tenant was purged');
      const manifest = await snapshotTenant({
        sql,
        store,
        backupId: row.id,
        signal: controller.signal,
        tenant: {
          id: tenant.id,
          slug: tenant.slug,
          name: tenant.name,
          plan: tenant.plan,
          schema: names!.schema_name,
          role: names!.role_name,
        },
      });
      const encryption = await store
        .encryptionOf(`${backupFolder(store, tenant.id, row.id)}/manifest.json`)
        .catch(() => 'unknown');
      const ms = performance.now() - started;
      const tables = Object.fromEntries(manifest.tables.map((t) => [t.name, t.rows]));
      const [done] = await sql<BackupRow[]>`
        update platform.backups set status = 'succeeded', finished_at = now(), duration_ms = ${ms}, error = null, lease_until = null,
          template_version = ${manifest.templateVersion}, tables = ${sql.json(tables)},
          size_bytes = ${manifest.tables.reduce((n, t) => n + t.bytes, 0)}, raw_bytes = ${manifest.tables.reduce((n, t) => n + t.rawBytes, 0)},
          encryption = ${encryption}
        where id = ${row.id} and worker = ${this.worker} returning *`;
      log.info(
        { tenantId: tenant.id, backupId: row.id, durationMs: Math.round(ms), bytes: done?.size_bytes, encryption },
        'backup succeeded',
      );
      return toBackup(done ?? row);
    } catch (err) {
      const message = describeFailure(err);
      // Leave nothing of a failed attempt in the store (a retry writes it all again).
      await deleteBackupObjects(store, row.tenant_id, row.id).catch(() => {});
      const retry = row.attempts < row.max_attempts;
      const [failed] = await sql<BackupRow[]>`
        update platform.backups set status = ${retry ? 'queued' : 'failed'}, error = ${message}, lease_until = null,
          run_after = now() + ${`${this.#retryDelayMs * 2 ** (row.attempts - 1)} milliseconds`}::interval,
          finished_at = ${retry ? null : sql`now()`}, duration_ms = ${performance.now() - started}
        where id = ${row.id} and worker = ${this.worker} returning *`;
      log.warn(
        { tenantId: row.tenant_id, backupId: row.id, attempt: row.attempts, retry, err: message },
        'backup attempt failed',
      );
      return toBackup(failed ?? row);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** Runs the given backup here if no instance has it, then waits for it to finish (CLI `--wait`). */
  async runAndWait(backupId: string, timeoutMs = 30 * 60_000): Promise<Backup> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ran = await this.runNext(backupId);
      const [row] = await this.deps.sql<BackupRow[]>`select * from platform.backups where id = ${backupId}`;
      if (!row) throw new AppError(404, 'backup_not_found', 'Backup not found', `no backup ${backupId}`);
      if (row.status === 'succeeded' || row.status === 'failed' || row.status === 'expired') return toBackup(row);
      if (Date.now() > deadline) return toBackup(row);
      if (!ran) await new Promise((r) => setTimeout(r, 500));
    }
  }

  /**
   * Provisions a new tenant from a backup, in one transaction: schema, role, registry row
   * and every row of the backup, checked against its manifest, or nothing at all.
   */
  async restoreInto(
    input: CreateTenantInput,
    backupId: string,
    who: Actor,
    idempotencyKey?: string,
    expectTenantId?: string,
  ): Promise<{ tenant: Tenant; replayed: boolean; restoredRows: Record<string, number> }> {
    const store = this.store;
    const located = await locateBackup(this.deps.sql, store, backupId);
    if (expectTenantId && located.tenantId !== expectTenantId) {
      throw new AppError(
        409,
        'backup_tenant_mismatch',
        'Backup is of another tenant',
        `backup ${backupId} is not a backup of tenant ${expectTenantId}`,
        { field: 'restoreFrom.tenantId' },
      );
    }
    assertTemplateCompatible(located.manifest, await templateMigrations(this.deps.sql));
    let restoredRows: Record<string, number> = {};
    const started = performance.now();
    const result = await this.deps.tenants.create(input, who, idempotencyKey, {
      requestExtra: { restoreFrom: backupId },
      auditDetail: { restoredFrom: backupId, sourceTenant: located.tenantId },
      load: async (tx, tenant) => {
        const loaded = await loadBackup(tx, store, located, tenant);
        restoredRows = loaded.rows;
        return { rows: loaded.rows, bytes: loaded.bytes };
      },
    });
    this.deps.log.info(
      { tenantId: result.tenant.id, backupId, durationMs: Math.round(performance.now() - started), rows: restoredRows },
      'tenant restored from backup',
    );
    return { ...result, restoredRows };
  }

  /**
   * Replaces every row of an existing tenant with a backup's, in one transaction:
   * TRUNCATE of all its tables, then the load, checked against the manifest. The old rows
   * are gone only when the transaction commits, after the new ones are loaded and
   * verified; any failure rolls back to the tenant exactly as it was. Meanwhile TRUNCATE's
   * ACCESS EXCLUSIVE locks suspend the tenant: its requests (reads and writes alike) wait
   * up to their lock timeout, then get a retryable 503; none sees an empty or partly
   * loaded table.
   *
   * `confirm` must be the tenant's slug. A backup of another tenant is refused unless
   * `allowOtherTenant` (its rows then get this tenant's id).
   */
  async restoreInPlace(
    idOrSlug: string,
    backupId: string,
    options: { confirm: string | undefined; allowOtherTenant?: boolean },
    who: Actor,
  ): Promise<{ tenant: Tenant; restoredRows: Record<string, number> }> {
    const { sql, log } = this.deps;
    const tenant = await this.deps.tenants.get(idOrSlug);
    if (tenant.status === 'deleted' || tenant.status === 'purged') {
      throw new AppError(
        409,
        'tenant_deleted',
        'Tenant is deleted',
        `tenant ${tenant.slug} is ${tenant.status}; restore its backup into a new tenant instead`,
      );
    }
    if (options.confirm !== tenant.slug) {
      throw new AppError(
        422,
        'restore_not_confirmed',
        'Restore not confirmed',
        `an in-place restore replaces every row of tenant ${tenant.slug}: confirm with the tenant's slug ("confirm": ${JSON.stringify(tenant.slug)}, CLI --confirm ${tenant.slug})`,
        { field: 'confirm' },
      );
    }
    const store = this.store;
    const located = await locateBackup(sql, store, backupId, 'backupId');
    if (located.tenantId !== tenant.id && !options.allowOtherTenant) {
      throw new AppError(
        409,
        'backup_tenant_mismatch',
        'Backup is of another tenant',
        `backup ${backupId} is a backup of tenant ${located.manifest.tenant.slug} (${located.tenantId}), not of ${tenant.slug}; to load another tenant's rows into this one, pass "allowOtherTenant": true (CLI --allow-other-tenant)`,
        { field: 'backupId' },
      );
    }
    const ledger = await templateMigrations(sql);
    assertTemplateCompatible(located.manifest, ledger);
    const started = performance.now();
    const loaded = await sql.begin(async (tx) => {
      const [row] = await tx<{ schema_name: string; status: string; template_version: string }[]>`
        select schema_name, status, template_version from platform.tenants where id = ${tenant.id} for update`;
      if (row!.status === 'deleted' || row!.status === 'purged')
        throw new AppError(409, 'tenant_deleted', 'Tenant is deleted', `tenant ${tenant.slug} is ${row!.status}`);
      if (row!.template_version !== templateVersionOf(ledger)) {
        throw new AppError(
          409,
          'tenant_behind_template',
          'Tenant is behind the template',
          `tenant ${tenant.slug} is at template ${row!.template_version}, not ${templateVersionOf(ledger)}; run tenantforge migrate first, then restore`,
        );
      }
      const schema = assertTenantSchemaName(row!.schema_name);
      const tables = (await tableLayout(tx, schema)).map((t) => `"${schema}"."${t.name}"`);
      // Wait a bounded time for the tenant's transactions in flight; new ones queue behind this lock.
      await tx`select set_config('lock_timeout', ${`${IN_PLACE_LOCK_TIMEOUT_MS}ms`}, true)`;
      await tx.unsafe(`set local role ${ROLES.owner}; truncate table ${tables.join(', ')}; reset role`).catch((err) => {
        throw busyOr(err, tenant.slug);
      });
      await tx`select set_config('lock_timeout', '0', true)`;
      const result = await loadBackup(tx, store, located, { id: tenant.id, schema });
      await tx`
        insert into platform.audit_log (actor, action, tenant_id, outcome, duration_ms, request_id, detail)
        values (${who.actor}, 'tenant.restore', ${tenant.id}, 'succeeded', ${performance.now() - started}, ${who.requestId ?? null},
                ${tx.json({ backupId, sourceTenant: located.tenantId, rows: result.rows } as never)})`;
      return result;
    });
    log.info(
      {
        tenantId: tenant.id,
        backupId,
        durationMs: Math.round(performance.now() - started),
        rows: loaded.rows,
        requestId: who.requestId,
      },
      'tenant restored in place',
    );
    return { tenant: await this.deps.tenants.get(tenant.id), restoredRows: loaded.rows };
  }

  /** Whether scheduled backups keep up (coverage.ts), listing up to `limit` overdue tenants. */
  coverage(limit = 0): Promise<BackupCoverage> {
    return backupCoverage(this.deps.sql, this.deps.store !== undefined, limit);
  }

  /** Queues scheduled backups for tenants whose plan schedules them and whose last one is older than the plan's interval. */
  async schedule(): Promise<number> {
    const { sql } = this.deps;
    const plans = Object.entries(PLANS).filter(([, p]) => p.backups.intervalMs > 0);
    if (!plans.length || !this.deps.store) return 0;
    return sql.begin(async (tx) => {
      // One scheduler at a time across instances; the others skip this round.
      const [lock] = await tx<
        { ok: boolean }[]
      >`select pg_try_advisory_xact_lock(hashtext(${LOCKS.backupSchedule})) as ok`;
      if (!lock!.ok) return 0;
      let queued = 0;
      for (const [plan, { backups }] of plans) {
        const rows = await tx`
          insert into platform.backups (tenant_id, trigger, max_attempts)
          select t.id, 'scheduled', ${this.#maxAttempts} from platform.tenants t
          where t.plan = ${plan} and t.status = 'active'
            and not exists (
              select 1 from platform.backups b
              where b.tenant_id = t.id and b.trigger = 'scheduled'
                and (b.status in ('queued', 'running') or b.created_at > now() - ${`${backups.intervalMs} milliseconds`}::interval))
          returning id`;
        queued += rows.length;
      }
      return queued;
    });
  }

  /**
   * Retention: keeps each tenant's newest `keep` succeeded backups (per its plan) and
   * deletes the objects of older ones, then marks them expired. Failed backups hold no objects.
   */
  async expire(): Promise<number> {
    const { sql, log } = this.deps;
    if (!this.deps.store) return 0;
    const store = this.store;
    const keep = Object.entries(PLANS).map(([plan, p]) => ({ plan, keep: p.backups.keep }));
    const due = await sql<{ id: string; tenant_id: string }[]>`
      select id, tenant_id from (
        select b.id, b.tenant_id, row_number() over (partition by b.tenant_id order by b.created_at desc) as n, k.keep
        from platform.backups b join platform.tenants t on t.id = b.tenant_id
        join jsonb_to_recordset(${sql.json(keep)}) as k(plan text, keep int) on k.plan = t.plan
        where b.status = 'succeeded') ranked
      where n > keep`;
    for (const b of due) {
      // Marked first, so it is never offered for restore while its objects go.
      await sql`update platform.backups set status = 'expired', expired_at = now() where id = ${b.id} and status = 'succeeded'`;
      await deleteBackupObjects(store, b.tenant_id, b.id);
      log.info({ tenantId: b.tenant_id, backupId: b.id }, 'backup expired and deleted');
    }
    return due.length;
  }

  async #audit(who: Actor, action: string, tenantId: string, detail: Record<string, unknown>): Promise<void> {
    await this.deps.sql`
      insert into platform.audit_log (actor, action, tenant_id, outcome, request_id, detail)
      values (${who.actor}, ${action}, ${tenantId}, 'succeeded', ${who.requestId ?? null}, ${this.deps.sql.json(detail as never)})`;
  }
}

/** Runs due backups in the background; `stop` waits for the ones in flight. */
export function startBackupWorker(
  service: BackupService,
  options: { concurrency: number; pollMs?: number; log: Logger },
): { stop(): Promise<void> } {
  let stopped = false;
  const loops: Promise<void>[] = [];
  for (let i = 0; i < options.concurrency; i++) {
    loops.push(
      (async () => {
        while (!stopped) {
          const ran = await service.runNext().catch((err) => {
            options.log.error({ err }, 'backup worker error');
            return undefined;
          });
          if (!ran && !stopped) await service.idle(options.pollMs ?? 1_000);
        }
      })(),
    );
  }
  return {
    stop: async () => {
      stopped = true;
      service.kick();
      await Promise.all(loops);
    },
  };
}

/** Schedules and expires backups every interval (one instance at a time does the scheduling). */
export function startBackupScheduler(
  service: BackupService,
  options: { intervalMs: number; log: Logger },
): { stop(): void } {
  const tick = () => {
    service
      .schedule()
      .then(() => service.expire())
      .catch((err) => options.log.error({ err }, 'backup scheduling failed'));
  };
  const timer = setInterval(tick, options.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** How long an in-place restore waits for the tenant's transactions in flight before it gives up (409, retry). */
const IN_PLACE_LOCK_TIMEOUT_MS = 10_000;

function busyOr(err: unknown, slug: string): unknown {
  const code = sqlState(err);
  if (code !== SQLSTATE.lockNotAvailable && code !== SQLSTATE.deadlockDetected) return err;
  return new AppError(
    409,
    'tenant_busy',
    'Tenant is busy',
    `tenant ${slug} kept its tables busy for ${IN_PLACE_LOCK_TIMEOUT_MS / 1000} s; nothing was changed, try again`,
  );
}

/** Every object of a backup: its folder and the index object that finds it by id. Both are tried; the first failure is thrown. */
async function deleteBackupObjects(store: BackupStore, tenantId: string, backupId: string): Promise<void> {
  const [folder, index] = await Promise.allSettled([
    store.deletePrefix(backupFolder(store, tenantId, backupId)),
    store.deleteObject(indexKey(store, backupId)),
  ]);
  for (const result of [folder, index]) if (result.status === 'rejected') throw result.reason;
}

function describeFailure(err: unknown): string {
  if (err instanceof AppError) return `${err.message} [${err.code}]`;
  const e = err as { name?: string; message?: string; $metadata?: unknown };
  if (e.$metadata) return describeS3Error(err);
  return e.message ?? String(err);
}

function toBackup(row: BackupRow): Backup {
  return {
    id: row.id,
    tenantId: row.tenant_id,
    status: row.status,
    trigger: row.trigger,
    attempts: row.attempts,
    error: row.error,
    templateVersion: row.template_version,
    sizeBytes: row.size_bytes === null ? null : Number(row.size_bytes),
    rawBytes: row.raw_bytes === null ? null : Number(row.raw_bytes),
    tables: row.tables,
    encryption: row.encryption,
    createdAt: row.created_at.toISOString(),
    startedAt: row.started_at?.toISOString() ?? null,
    finishedAt: row.finished_at?.toISOString() ?? null,
    durationMs: row.duration_ms === null ? null : Math.round(row.duration_ms),
  };
}
