/**
 * The tenant registry: create (provision), read, list, update, suspend, soft delete
 * and purge tenants. Every change writes an audit-log row and a log line.
 *
 * @example
 * const tenants = new TenantService({ sql, provisioner, log, deletedRetentionMs });
 * const { tenant } = await tenants.create({ slug: 'acme', name: 'Acme' }, { actor: 'cli' });
 */
import { createHash, randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Sql, Tx } from '../db/connect.ts';
import { idempotencyLock } from '../db/locks.ts';
import { withRetry } from '../db/retry.ts';
import { AppError, notFound } from '../errors.ts';
import { isUuid } from '../ids.ts';
import { afterCursor, cursorMicros, decodeCursor, toPage } from '../http/cursor.ts';
import type { Logger } from '../log.ts';
import type { Provisioner } from '../provisioning/provisioner.ts';
import type { RowOf } from '../db/rows.ts';
import type { TenantStatus, tenants } from '../db/schema.ts';
import type { CreateTenantInput, ListTenantsQuery, UpdateTenantInput } from './schemas.ts';
import { SQLSTATE } from '../db/sqlstate.ts';
import { claimPooled } from './warm-pool.ts';
import { bumpAccessVersion } from './access-watch.ts';
import { type PlanName, tenantContext } from './plans.ts';
import type { TenantContext } from '../db/with-tenant.ts';

export type Tenant = {
  id: string;
  slug: string;
  name: string;
  plan: string;
  schema: string;
  status: TenantStatus;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  purgeAfter: string | null;
  provisioningMs: number | null;
  lastRequestAt: string | null;
};

/** `select *` from platform.tenants (types from the drizzle schema). */
type TenantRow = RowOf<typeof tenants>;

export type CreateOptions = {
  /** Fills the new schema inside the provisioning transaction (a restore); a failure undoes the tenant. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a loader may return nothing (an async function with no result)
  load?: (tx: Tx, tenant: { id: string; schema: string; role: string }) => Promise<Record<string, unknown> | void>;
  /** More of the request that an idempotency key must match (e.g. the backup restored). */
  requestExtra?: unknown;
  auditDetail?: Record<string, unknown>;
};

/** Who asked, for the audit log. */
export type Actor = { actor: string; requestId?: string };

export type TenantServiceDeps = {
  sql: Sql;
  provisioner: Provisioner;
  log: Logger;
  deletedRetentionMs: number;
  /** Claim a warm-pool tenant before cloning (TENANTFORGE_WARM_POOL > 0). */
  warmPool?: boolean;
};

export class TenantService {
  readonly #accessListeners: (() => void)[] = [];
  readonly #createdListeners: ((tenant: TenantContext) => void)[] = [];
  #inFlight = 0;
  #lastDemandAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: TenantServiceDeps) {}

  /** Called after a change that takes a tenant's access away or gives it back. */
  onAccessChange(listener: () => void): void {
    this.#accessListeners.push(listener);
  }

  /** Called after a tenant is created (cloned, claimed or restored), with its data-plane context. */
  onCreated(listener: (tenant: TenantContext) => void): void {
    this.#createdListeners.push(listener);
  }

  #accessChanged(): void {
    for (const listener of this.#accessListeners) listener();
  }

  /**
   * Provisions a tenant. With an idempotency key, a retry with the same key and body
   * returns the tenant the first call made (`replayed: true`), never a second one.
   */
  async create(
    input: CreateTenantInput,
    who: Actor,
    idempotencyKey?: string,
    options: CreateOptions = {},
  ): Promise<{ tenant: Tenant; replayed: boolean }> {
    const { sql, provisioner, log } = this.deps;
    const requestHash = createHash('sha256')
      .update(
        JSON.stringify(
          options.requestExtra === undefined
            ? [input.slug, input.name, input.plan]
            : [input.slug, input.name, input.plan, options.requestExtra],
        ),
      )
      .digest('hex');
    if (idempotencyKey) {
      const replay = await this.#replay(idempotencyKey, requestHash);
      if (replay) return { tenant: replay, replayed: true };
    }
    const id = randomUUID();
    const started = performance.now();
    this.#inFlight++;
    let path: 'warmPool' | 'cloned' = 'cloned';
    try {
      const row = await withRetry(async () => {
        // A restore loads rows before the role part of the plan runs, so it always clones.
        if (this.deps.warmPool && !options.load) {
          const claimed = await this.#claim(input, who, idempotencyKey, requestHash, started);
          if (claimed) {
            path = 'warmPool';
            return claimed;
          }
        }
        path = 'cloned';
        // Outside the transaction: compiling needs a connection of its own. Fetched on each
        // attempt: a template migration committed meanwhile makes the attempt stale.
        const plan = await provisioner.plan();
        return sql.begin(async (tx) => {
          if (idempotencyKey) {
            // Serialises concurrent requests with one key; the loser replays the winner's tenant.
            await tx`select pg_advisory_xact_lock(hashtext(${idempotencyLock(idempotencyKey)}))`;
            const [existing] = await tx<{ request_hash: string; tenant_id: string }[]>`
              select request_hash, tenant_id from platform.idempotency_keys where key = ${idempotencyKey}`;
            if (existing) return { replayOf: existing } as const;
          }
          // The registry row goes first: a taken slug fails here, before any DDL runs.
          const names = provisioner.namesFor(id);
          await tx`
            insert into platform.tenants (id, slug, name, plan, status, schema_name, role_name, template_version)
            values (${id}, ${input.slug}, ${input.name}, ${input.plan}, 'active', ${names.schema}, ${names.role}, ${plan.templateVersion})`;
          let loaded: Record<string, unknown> | undefined;
          const load = options.load;
          const provisioned = await provisioner.provision(
            tx,
            id,
            plan,
            load ? { load: async (ltx, t) => void (loaded = (await load(ltx, t)) ?? undefined) } : {},
          );
          const ms = performance.now() - started;
          // Pipelined: these go to the server together, one round trip.
          const [[inserted]] = await Promise.all([
            tx<TenantRow[]>`update platform.tenants set provisioning_ms = ${ms} where id = ${id} returning *`,
            tx`insert into platform.tenant_migrations ${sql(provisioned.migrations.map((m) => ({ tenant_id: id, name: m.name, checksum: m.checksum })))}`,
            idempotencyKey
              ? tx`insert into platform.idempotency_keys (key, request_hash, tenant_id) values (${idempotencyKey}, ${requestHash}, ${id})`
              : undefined,
            this.#audit(tx, who, 'tenant.create', id, 'succeeded', ms, {
              slug: input.slug,
              schema: provisioned.schema,
              ...options.auditDetail,
              ...(loaded ? { loaded } : {}),
            }),
          ]);
          return { row: inserted! } as const;
        });
      });
      if ('replayOf' in row)
        return { tenant: await this.#replayed(row.replayOf!, requestHash, idempotencyKey!), replayed: true };
      const tenant = toTenant(row.row);
      this.created[path]++;
      for (const listener of this.#createdListeners) listener(tenantContext(row.row as TenantRow & { plan: PlanName }));
      log.info(
        {
          tenantId: tenant.id,
          slug: input.slug,
          schema: tenant.schema,
          durationMs: round(tenant.provisioningMs!),
          requestId: who.requestId,
        },
        'tenant provisioned',
      );
      return { tenant, replayed: false };
    } catch (err) {
      const ms = performance.now() - started;
      const mapped = mapCreateError(err, input.slug);
      // The failure itself is the answer: an audit row that cannot be written (the
      // database went away) is logged, not allowed to replace it.
      await this.#audit(sql, who, 'tenant.create', null, 'failed', ms, {
        slug: input.slug,
        attemptedId: id,
        error: (err as Error).message,
        ...options.auditDetail,
      }).catch((auditErr) =>
        log.warn(
          { err: (auditErr as Error).message, requestId: who.requestId },
          'could not audit a failed provisioning',
        ),
      );
      log.warn(
        { slug: input.slug, durationMs: round(ms), err: (err as Error).message, requestId: who.requestId },
        'tenant provisioning failed',
      );
      throw mapped;
    } finally {
      this.#inFlight--;
      this.#lastDemandAt = performance.now();
    }
  }

  /**
   * Claims a warm-pool tenant (see warm-pool.ts): the same idempotency handling,
   * registry fields, runtime-role membership and audit row as a clone, so the answer is
   * the same. Undefined when no pooled tenant is at the template's version: the caller clones.
   */
  async #claim(
    input: CreateTenantInput,
    who: Actor,
    idempotencyKey: string | undefined,
    requestHash: string,
    started: number,
  ): Promise<{ row: TenantRow } | { replayOf: { request_hash: string; tenant_id: string } } | undefined> {
    const claim = await claimPooled<TenantRow>(this.deps.sql, {
      slug: input.slug,
      name: input.name,
      plan: input.plan,
      actor: who.actor,
      requestId: who.requestId,
      idempotency: idempotencyKey ? { key: idempotencyKey, requestHash } : undefined,
      ms: performance.now() - started,
    });
    if (claim.row) return { row: claim.row };
    return claim.replayOf ? { replayOf: claim.replayOf } : undefined;
  }

  /** Tenants this instance created since it started, by how: claimed from the warm pool or cloned (for metrics). */
  readonly created = { warmPool: 0, cloned: 0 };

  /** Provisioning requests in flight on this instance, and when the last one ended (performance.now()). */
  demand(): { inFlight: number; lastAt: number } {
    return { inFlight: this.#inFlight, lastAt: this.#lastDemandAt };
  }

  async #replay(key: string, requestHash: string): Promise<Tenant | undefined> {
    const [existing] = await this.deps.sql<{ request_hash: string; tenant_id: string }[]>`
      select request_hash, tenant_id from platform.idempotency_keys where key = ${key}`;
    return existing ? this.#replayed(existing, requestHash, key) : undefined;
  }

  async #replayed(
    existing: { request_hash: string; tenant_id: string },
    requestHash: string,
    key: string,
  ): Promise<Tenant> {
    if (existing.request_hash !== requestHash) {
      throw new AppError(
        422,
        'idempotency_key_reused',
        'Idempotency key reused with a different request',
        `Idempotency-Key ${JSON.stringify(key)} was first used with another body; use a new key for a new request`,
      );
    }
    return this.get(existing.tenant_id);
  }

  /** By id or slug; soft-deleted tenants are returned too (with their status). */
  async get(idOrSlug: string): Promise<Tenant> {
    return toTenant(await this.#row(idOrSlug));
  }

  async #row(idOrSlug: string, tx: Sql | Tx = this.deps.sql, lock = false): Promise<TenantRow> {
    const byId = isUuid(idOrSlug);
    // A pooled tenant is nobody's yet: by id it answers like an unknown one (it has no slug).
    const [row] = byId
      ? await tx<
          TenantRow[]
        >`select * from platform.tenants where id = ${idOrSlug} and status <> 'pooled' ${lock ? tx`for update` : tx``}`
      : await tx<
          TenantRow[]
        >`select * from platform.tenants where lower(slug) = lower(${idOrSlug}) ${lock ? tx`for update` : tx``}`;
    if (!row) throw notFound('tenant', idOrSlug);
    return row;
  }

  /** The active tenants' data-plane contexts; with `withinMs`, only those created or that sent a request within that time. */
  async activeContexts(withinMs = 0): Promise<TenantContext[]> {
    const { sql } = this.deps;
    const rows = await sql<{ id: string; schema_name: string; role_name: string; plan: PlanName }[]>`
      select id, schema_name, role_name, plan from platform.tenants
      where status = 'active'
        ${withinMs > 0 ? sql`and greatest(created_at, last_request_at) >= now() - ${withinMs} * interval '1 millisecond'` : sql``}`;
    return rows.map(tenantContext);
  }

  /** Oldest first, by (created_at, id); `cursor` is opaque to callers. */
  async list(query: ListTenantsQuery): Promise<{ items: Tenant[]; nextCursor: string | null }> {
    const { sql } = this.deps;
    const after = decodeCursor(query.cursor);
    const rows = await sql<(TenantRow & { created_us: string })[]>`
      select *, ${sql.unsafe(cursorMicros('created_at'))} as created_us from platform.tenants
      where true
        ${afterCursor(sql, 'created_at', after)}
        ${query.status ? sql`and status = ${query.status}` : sql`and status not in ('purged', 'pooled')`}
      order by created_at, id
      limit ${query.limit + 1}`;
    return toPage(rows, query.limit, (r) => [r.created_us, r.id], toTenant);
  }

  /** Renames, changes plan, suspends or reactivates. Suspension revokes the runtime role's access at once. */
  async update(idOrSlug: string, patch: UpdateTenantInput, who: Actor): Promise<Tenant> {
    const { sql, provisioner, log } = this.deps;
    const started = performance.now();
    const row = await withRetry(() =>
      sql.begin(async (tx) => {
        const current = await this.#row(idOrSlug, tx, true);
        if (current.status === 'deleted' || current.status === 'purged') {
          throw new AppError(
            409,
            'tenant_deleted',
            'Tenant is deleted',
            `tenant ${current.slug} is ${current.status} and cannot be changed`,
          );
        }
        if (patch.status && patch.status !== current.status) {
          await provisioner.setAccess(
            tx,
            { schema: current.schema_name, role: current.role_name },
            patch.status === 'active',
          );
        }
        if (patch.plan && patch.plan !== current.plan) {
          await provisioner.repinLogin(tx, { id: current.id, schema: current.schema_name, plan: patch.plan });
        }
        // What the tenant's keys answer changes with its status and its plan's limits.
        if ((patch.status && patch.status !== current.status) || (patch.plan && patch.plan !== current.plan))
          await bumpAccessVersion(tx);
        const [updated] = await tx<TenantRow[]>`
          update platform.tenants set
            name = ${patch.name ?? current.name}, plan = ${patch.plan ?? current.plan},
            status = ${patch.status ?? current.status}, updated_at = now()
          where id = ${current.id} returning *`;
        await this.#audit(
          tx,
          who,
          patch.status === 'suspended' ? 'tenant.suspend' : 'tenant.update',
          current.id,
          'succeeded',
          performance.now() - started,
          { changes: patch },
        );
        return updated!;
      }),
    );
    if (patch.status) this.#accessChanged();
    log.info({ tenantId: row.id, changes: patch, requestId: who.requestId }, 'tenant updated');
    return toTenant(row);
  }

  /**
   * Soft delete: access is revoked at once and the data kept until `purge_after`.
   * With `purge`, the schema and role are dropped now. Deleting twice is harmless.
   */
  async delete(idOrSlug: string, options: { purge: boolean }, who: Actor): Promise<Tenant> {
    const { sql, provisioner, log, deletedRetentionMs } = this.deps;
    const started = performance.now();
    const row = await withRetry(() =>
      sql.begin(async (tx) => {
        const current = await this.#row(idOrSlug, tx, true);
        if (current.status === 'purged') return current;
        if (options.purge) return this.#purge(tx, current, who, started);
        if (current.status === 'deleted') return current;
        if (current.status === 'active')
          await provisioner.setAccess(tx, { schema: current.schema_name, role: current.role_name }, false);
        await bumpAccessVersion(tx);
        const [deleted] = await tx<TenantRow[]>`
          update platform.tenants set status = 'deleted', deleted_at = now(), updated_at = now(),
            purge_after = now() + ${`${deletedRetentionMs} milliseconds`}::interval
          where id = ${current.id} returning *`;
        await this.#audit(tx, who, 'tenant.delete', current.id, 'succeeded', performance.now() - started, {
          purgeAfter: deleted!.purge_after,
        });
        return deleted!;
      }),
    );
    this.#accessChanged();
    log.info({ tenantId: row.id, status: row.status, requestId: who.requestId }, 'tenant deleted');
    return toTenant(row);
  }

  async #purge(tx: Tx, current: TenantRow, who: Actor, started: number): Promise<TenantRow> {
    await this.deps.provisioner.drop(tx, { schema: current.schema_name, role: current.role_name });
    await bumpAccessVersion(tx);
    const [purged] = await tx<TenantRow[]>`
      update platform.tenants set status = 'purged', deleted_at = coalesce(deleted_at, now()), purge_after = null, updated_at = now()
      where id = ${current.id} returning *`;
    await this.#audit(tx, who, 'tenant.purge', current.id, 'succeeded', performance.now() - started, {
      schema: current.schema_name,
    });
    return purged!;
  }

  /** Purges soft-deleted tenants whose retention has run out; returns how many. */
  async purgeExpired(who: Actor): Promise<number> {
    const due = await this.deps.sql<{ id: string }[]>`
      select id from platform.tenants where status = 'deleted' and purge_after <= now() order by purge_after limit 100`;
    for (const { id } of due) await this.delete(id, { purge: true }, who);
    return due.length;
  }

  async #audit(
    sql: Sql | Tx,
    who: Actor,
    action: string,
    tenantId: string | null,
    outcome: 'succeeded' | 'failed',
    durationMs: number,
    detail: Record<string, unknown>,
  ): Promise<void> {
    await sql`
      insert into platform.audit_log (actor, action, tenant_id, outcome, duration_ms, request_id, detail)
      values (${who.actor}, ${action}, ${tenantId}, ${outcome}, ${durationMs}, ${who.requestId ?? null}, ${sql.json(detail as never)})`;
  }
}

function mapCreateError(err: unknown, slug: string): unknown {
  const e = err as { code?: string; constraint_name?: string };
  if (e.code === SQLSTATE.uniqueViolation && e.constraint_name === 'tenants_slug_lower_key') {
    return new AppError(
      409,
      'slug_taken',
      'Slug already in use',
      `slug ${JSON.stringify(slug)} is taken (slugs of deleted tenants stay reserved)`,
      { field: 'slug' },
    );
  }
  return err;
}

/** Only for claimed or cloned rows: slug and name are empty only while a tenant is pooled. */
function toTenant(row: TenantRow): Tenant {
  return {
    id: row.id,
    slug: row.slug!,
    name: row.name!,
    plan: row.plan,
    schema: row.schema_name,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    updatedAt: row.updated_at.toISOString(),
    deletedAt: row.deleted_at?.toISOString() ?? null,
    purgeAfter: row.purge_after?.toISOString() ?? null,
    provisioningMs: row.provisioning_ms === null ? null : round(row.provisioning_ms),
    lastRequestAt: row.last_request_at?.toISOString() ?? null,
  };
}

const round = (ms: number) => Math.round(ms * 100) / 100;
