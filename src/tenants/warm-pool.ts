/**
 * The warm pool: tenants provisioned ahead of demand, so `POST /v1/tenants` can hand one
 * out in a short transaction instead of cloning the template (whose `create_hypertable`
 * calls grow with the catalog). A pooled tenant is complete (schema, tables,
 * hypertables, role, grants, ledger rows) and its id is final, so its hashed schema name
 * is too and nothing is renamed when it is claimed. Until then it has status `pooled`,
 * no slug or name, and the runtime role is not a member of its role: no API, key or
 * login can reach it.
 *
 * @example
 * const pool = new WarmPool({ sql, provisioner, log, size: 10 });
 * await pool.topUpOne();            // 'made' | 'full' | 'locked'
 * const claim = await claimPooled(sql, { slug: 'acme', name: 'Acme', plan: 'pro', actor: 'admin', requestId, ms });
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Sql, Tx } from '../db/connect.ts';
import { idempotencyLock, LOCKS, ROLE_DDL_LOCK } from '../db/locks.ts';
import { ROLES } from '../db/roles.ts';
import { runtimeRoleOfSql } from '../db/names.ts';
import { withRetry } from '../db/retry.ts';
import type { Logger } from '../log.ts';
import { TEMPLATE_VERSION_SQL } from '../migrations/files.ts';
import type { Provisioner } from '../provisioning/provisioner.ts';
import { DEFAULT_PLAN } from './plans.ts';

export type WarmPoolDeps = {
  /** A privileged pool; the refill job gives it one of its own so it never takes a request's connection. */
  sql: Sql;
  provisioner: Provisioner;
  log: Logger;
  /** How many pooled tenants to keep ready (TENANTFORGE_WARM_POOL); 0 = none. */
  size: number;
};

export type TopUp = 'made' | 'full' | 'locked';

export class WarmPool {
  constructor(private readonly deps: WarmPoolDeps) {}

  get size(): number {
    return this.deps.size;
  }

  /**
   * Makes one pooled tenant if fewer than `target` are pooled. The count and the new
   * tenant are one transaction under an advisory lock that instances only try: while
   * one instance refills, the others skip their round, so the pool never overshoots.
   */
  async topUpOne(target = this.deps.size): Promise<TopUp> {
    const { sql, provisioner, log } = this.deps;
    if (target <= 0) return 'full';
    const id = randomUUID();
    const started = performance.now();
    const outcome = await withRetry(async () => {
      const plan = await provisioner.plan();
      return sql.begin(async (tx): Promise<TopUp> => {
        const [lock] = await tx<{ ok: boolean }[]>`select pg_try_advisory_xact_lock(hashtext(${LOCKS.warmPool})) as ok`;
        if (!lock!.ok) return 'locked';
        if ((await pooledCount(tx)) >= target) return 'full';
        const names = provisioner.namesFor(id);
        await tx`
          insert into platform.tenants (id, slug, name, plan, status, schema_name, role_name, template_version)
          values (${id}, null, null, ${DEFAULT_PLAN}, 'pooled', ${names.schema}, ${names.role}, ${plan.templateVersion})`;
        const provisioned = await provisioner.provision(tx, id, plan, { runtimeAccess: false });
        const ms = performance.now() - started;
        await Promise.all([
          tx`update platform.tenants set provisioning_ms = ${ms} where id = ${id}`,
          tx`insert into platform.tenant_migrations ${sql(provisioned.migrations.map((m) => ({ tenant_id: id, name: m.name, checksum: m.checksum })))}`,
          tx`
            insert into platform.audit_log (actor, action, tenant_id, outcome, duration_ms, detail)
            values ('system:warm-pool', 'tenant.pool', ${id}, 'succeeded', ${ms}, ${tx.json({ schema: provisioned.schema, templateVersion: plan.templateVersion })})`,
        ]);
        return 'made';
      });
    });
    if (outcome === 'made')
      log.debug({ tenantId: id, durationMs: Math.round(performance.now() - started) }, 'warm pool: tenant pooled');
    return outcome;
  }
}

/** Pooled tenants, and how many are at `version` (default: the template's current one): only those can be claimed. */
export async function pooledCounts(sql: Sql, version?: string): Promise<{ pooled: number; claimable: number }> {
  const [row] = await sql<{ pooled: number; claimable: number }[]>`
    select count(*)::int as pooled,
      count(*) filter (where template_version = ${version === undefined ? sql.unsafe(TEMPLATE_VERSION_SQL) : version})::int as claimable
    from platform.tenants where status = 'pooled'`;
  return row!;
}

export async function pooledCount(sql: Sql | Tx): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from platform.tenants where status = 'pooled'`;
  return row!.n;
}

export type ClaimRequest = {
  slug: string;
  name: string;
  plan: string;
  actor: string;
  requestId: string | undefined;
  /** With an Idempotency-Key: a tenant already made for it is replayed instead of a claim. */
  idempotency?: { key: string; requestHash: string };
  /** Time spent on the request so far (its provisioning time, as a clone records its own). */
  ms: number;
};

/** The claimed tenant's registry row, or the tenant an earlier request with the same key made, or neither (nothing pooled). */
export type ClaimResult<Row> = { row?: Row; replayOf?: { request_hash: string; tenant_id: string } };

const literal = (text: string) => `'${text.replaceAll("'", "''")}'`;

/** Transaction-local: the id of the tenant this transaction claimed, for the statements after the claim. */
const CLAIMED = 'tenantforge.claimed_tenant';
const claimedId = `nullif(current_setting('${CLAIMED}', true), '')::uuid`;

/**
 * Claims the oldest pooled tenant at the template's version and makes it the caller's,
 * in one transaction sent as one round trip (the service's latency target is a few
 * milliseconds, and every round trip on a busy server costs one). In order:
 *
 * 1. the idempotency key's lock and the template lock (shared, as a clone takes it),
 *    each its own statement, so what follows sees what their holders committed;
 * 2. the claim: `FOR UPDATE SKIP LOCKED`, so concurrent claims (on any instance) each
 *    take a different row and never wait on each other, and a row the migration runner
 *    holds is skipped; it sets slug, name, plan, status and created_at (the tenant
 *    exists for its owner from now) and notes the id for the statements below. Nothing
 *    is claimed when the idempotency key was used already: that request is replayed;
 * 3. the runtime role's membership (under the role-DDL lock), the idempotency key and
 *    the `tenant.create` audit row, each only when step 2 claimed a tenant;
 * 4. COMMIT, which after a failed statement (a taken slug) is a rollback.
 *
 * Nothing at all is written when no pooled tenant is at the version: the caller clones.
 */
export async function claimPooled<Row extends { id: string }>(
  sql: Sql,
  request: ClaimRequest,
): Promise<ClaimResult<Row>> {
  const key = request.idempotency?.key ?? null;
  const conn = await sql.reserve();
  try {
    // Each query is sent as it is made (execute), so they go out in this order; a query
    // left to Promise.all would be sent a tick later, after the COMMIT below.
    const begin = conn.unsafe('begin').execute();
    const steps = Promise.all([
      key ? conn`select pg_advisory_xact_lock(hashtext(${idempotencyLock(key)}))`.execute() : undefined,
      conn`select pg_advisory_xact_lock_shared(hashtext(${LOCKS.template}))`.execute(),
      key
        ? conn<{ request_hash: string; tenant_id: string }[]>`
            select request_hash, tenant_id from platform.idempotency_keys where key = ${key}`.execute()
        : undefined,
      conn<(Row & { claimed: string })[]>`
        update platform.tenants
        set slug = ${request.slug}, name = ${request.name}, plan = ${request.plan}, status = 'active',
            created_at = now(), updated_at = now(), provisioning_ms = ${request.ms}
        where id = (
          select id from platform.tenants
          where status = 'pooled' and template_version = ${conn.unsafe(TEMPLATE_VERSION_SQL)}
          order by created_at, id limit 1 for update skip locked)
          and not exists (select 1 from platform.idempotency_keys where key = ${key})
        returning *, set_config(${CLAIMED}, id::text, true) as claimed`.execute(),
      conn
        .unsafe(
          [
            `set local role ${ROLES.owner}`,
            `do $$ declare r text := (select role_name from platform.tenants where id = ${claimedId}); begin
             if r is not null then
               execute ${literal(ROLE_DDL_LOCK)};
               execute format('grant %I to %I', r, ${runtimeRoleOfSql('r')});
             end if;
           end $$`,
            'reset role',
          ].join(';\n'),
        )
        .execute(),
      key
        ? conn`
            insert into platform.idempotency_keys (key, request_hash, tenant_id)
            select ${key}, ${request.idempotency!.requestHash}, id from platform.tenants where id = ${conn.unsafe(claimedId)}`.execute()
        : undefined,
      conn`
        insert into platform.audit_log (actor, action, tenant_id, outcome, duration_ms, request_id, detail)
        select ${request.actor}, 'tenant.create', id, 'succeeded', ${request.ms}, ${request.requestId ?? null},
               jsonb_build_object('slug', slug, 'schema', schema_name, 'warmPool', true)
        from platform.tenants where id = ${conn.unsafe(claimedId)}`.execute(),
    ]);
    const commit = conn.unsafe('commit').execute();
    // A failed step makes COMMIT a rollback, and its error is the answer. Everything is
    // settled before the connection goes back to the pool.
    const settled = await Promise.allSettled([begin, steps, commit]);
    for (const result of settled) if (result.status === 'rejected') throw result.reason;
    const [, , existing, claimed] = (settled[1] as PromiseFulfilledResult<Awaited<typeof steps>>).value;
    if (claimed?.[0]) {
      const { claimed: _, ...row } = claimed[0];
      return { row: row as unknown as Row };
    }
    return existing?.[0] ? { replayOf: existing[0] } : {};
  } finally {
    conn.release();
  }
}
