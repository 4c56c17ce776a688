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
 * const row = await claimPooled(tx, version, { slug: 'acme', name: 'Acme', plan: 'pro' });
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Sql, Tx } from '../db/connect.ts';
import { LOCKS } from '../db/locks.ts';
import { withRetry } from '../db/retry.ts';
import type { Logger } from '../log.ts';
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

  /** Pooled tenants, and how many of them are at `version` (only those can be claimed). */
  async count(version?: string): Promise<{ pooled: number; claimable: number }> {
    const [row] = await this.deps.sql<{ pooled: number; claimable: number }[]>`
      select count(*)::int as pooled, count(*) filter (where template_version = ${version ?? null})::int as claimable
      from platform.tenants where status = 'pooled'`;
    return row!;
  }
}

export async function pooledCount(sql: Sql | Tx): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from platform.tenants where status = 'pooled'`;
  return row!.n;
}

/**
 * Inside the caller's transaction: turns the oldest pooled tenant at `version` into an
 * active one with the caller's slug, name and plan, and returns its registry row (or
 * nothing when none is pooled). `SKIP LOCKED`: concurrent claims (on any instance) each
 * lock a different row and never wait on each other; a row the migration runner holds is
 * skipped too. created_at becomes now: the tenant exists for its owner from this moment.
 * The caller grants the runtime role its membership in the same transaction.
 */
export async function claimPooled<Row extends object>(
  tx: Tx,
  version: string,
  input: { slug: string; name: string; plan: string },
): Promise<Row | undefined> {
  const [row] = await tx<Row[]>`
    update platform.tenants
    set slug = ${input.slug}, name = ${input.name}, plan = ${input.plan}, status = 'active',
        created_at = now(), updated_at = now()
    where id = (
      select id from platform.tenants
      where status = 'pooled' and template_version = ${version}
      order by created_at, id limit 1 for update skip locked)
    returning *`;
  return row;
}
