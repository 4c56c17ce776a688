/**
 * Lets the server catch up before anything is timed after a bulk fill or seeding. A fill
 * adds up to 1,000 tenants in a minute (in production, weeks); autovacuum then works
 * through the grown catalogs while the checkpointer writes what the DDL dirtied, and a
 * measurement taken meanwhile measures that too (a 10,000-tenant provisioning run without
 * settling: p50 151 ms at 3,000 tenants and 96 ms at 4,000).
 *
 * Vacuums and analyzes the catalogs a fill grows, checkpoints, and waits (up to a minute)
 * for autovacuum workers to finish; returns how long that took, which callers report.
 *
 * @example
 * const settledMs = await settleServer(env.su);
 */
import type { Sql } from '../../src/db/connect.ts';

export async function settleServer(su: Sql): Promise<number> {
  const started = performance.now();
  await su.unsafe(`vacuum (analyze) ${SETTLED_CATALOGS.join(', ')}`);
  await su`checkpoint`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const [workers] = await su<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity where backend_type = 'autovacuum worker'`;
    if (workers!.n === 0) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  return Math.round(performance.now() - started);
}

/**
 * Waits until a service just started has opened every active tenant's tables on its
 * runtime connections (src/db/lane-warming.ts), which it does in the background at start;
 * returns the seconds that took, which callers report.
 */
export async function serviceWarmed(baseUrl: string, adminToken: string): Promise<number> {
  const started = performance.now();
  // 10,000 tenants took about a minute on a 2-core machine.
  const deadline = started + 15 * 60_000;
  for (;;) {
    if (performance.now() > deadline) throw new Error(`the service at ${baseUrl} was still warming after 15 minutes`);
    const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
    const text = await res.text();
    const pending = /^tenantforge_runtime_warming_tenants (\d+)$/m.exec(text)?.[1];
    if (pending === undefined)
      throw new Error(`GET /metrics answered ${res.status} without tenantforge_runtime_warming_tenants`);
    if (pending === '0') return Math.round((performance.now() - started) / 100) / 10;
    await new Promise((r) => setTimeout(r, 200));
  }
}

const SETTLED_CATALOGS = [
  'pg_catalog.pg_class',
  'pg_catalog.pg_attribute',
  'pg_catalog.pg_attrdef',
  'pg_catalog.pg_type',
  'pg_catalog.pg_depend',
  'pg_catalog.pg_shdepend',
  'pg_catalog.pg_constraint',
  'pg_catalog.pg_index',
  'pg_catalog.pg_trigger',
  'pg_catalog.pg_policy',
  'pg_catalog.pg_namespace',
  'pg_catalog.pg_authid',
  'pg_catalog.pg_auth_members',
  '_timescaledb_catalog.chunk',
  '_timescaledb_catalog.chunk_constraint',
  '_timescaledb_catalog.dimension_slice',
  'platform.tenants',
  'platform.audit_log',
];
