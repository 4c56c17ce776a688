/**
 * Tenants for isolation tests: provisioned through the service, seeded through the
 * runtime pool exactly as the data plane writes, and reachable through a login of their
 * own (a role that holds the tenant's role and nothing else), as a tenant's own tools
 * would connect.
 *
 * @example
 * const a = await newTenant(t, 'acme');
 * await seed(t, a);
 * const asA = await loginFor(t, a); // postgres.js pool, current_user holds a.role only
 */
import { randomBytes } from 'node:crypto';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { withTenant, type TenantContext } from '../../src/db/with-tenant.ts';
import { ROLES } from '../../src/db/roles.ts';
import { PLANS } from '../../src/tenants/plans.ts';
import type { Tenant } from '../../src/tenants/service.ts';
import type { TestPlatform } from '../support/platform.ts';
import { tenantRoleName } from '../../src/db/names.ts';

export type TestTenant = Tenant & { role: string; context: TenantContext };

const admin = { actor: 'test:isolation' };

export async function newTenant(t: TestPlatform, slug: string): Promise<TestTenant> {
  const { tenant } = await t.tenants.create({ slug, name: slug, plan: 'free' }, admin);
  const role = tenantRoleName(tenant.schema);
  return {
    ...tenant,
    role,
    context: {
      id: tenant.id,
      schema: tenant.schema,
      role,
      statementTimeoutMs: 5_000,
      chunkQuota: PLANS.free.chunkQuota,
    },
  };
}

/** Drops tenants (schema, chunks, role) through the service; the first ones first, so grants others hold on them go with them. */
export async function purge(t: TestPlatform, ...tenants: TestTenant[]): Promise<void> {
  for (const tenant of tenants) await t.tenants.delete(tenant.id, { purge: true }, admin);
}

/** Every trade and bar lands in one chunk per hypertable: the week and day of this instant. */
export const SEED_TIME = '2024-01-03T12:00:00Z';

/** A 384-dimension vector with `hot` at dimension `at` (cosine neighbours share `at`). */
export function vector(at: number, hot = 1): string {
  return `[${Array.from({ length: 384 }, (_, i) => (i === at ? hot : 0.001)).join(',')}]`;
}

/** Two portfolios, two trades, a bar and an embedding per tenant, written as the data plane does. */
export async function seed(t: TestPlatform, tenant: TestTenant, embeddingAt = 0): Promise<void> {
  await withTenant(t.app, tenant.context, async (tx) => {
    const [p] = await tx`insert into portfolios (name) values ('main'), ('hedge') returning id`;
    await tx`
      insert into trades (portfolio_id, symbol, side, quantity, price, executed_at)
      values (${p!.id}, 'AAPL', 'buy', 10, 190.5, ${SEED_TIME}), (${p!.id}, 'MSFT', 'sell', 5, 410, ${SEED_TIME})`;
    await tx`insert into market_data (symbol, bar_time, open, high, low, close) values ('AAPL', ${SEED_TIME}, 1, 2, 1, 2)`;
    await tx`insert into embeddings (content, embedding) values (${`note of ${tenant.slug}`}, ${vector(embeddingAt)})`;
  });
}

/** The (only) chunk of a tenant's hypertable, schema-qualified and quoted. */
export async function chunkOf(
  t: TestPlatform,
  tenant: TestTenant,
  hypertable = 'trades',
): Promise<{ schema: string; name: string; qualified: string }> {
  const [chunk] = await t.su<{ schema: string; name: string }[]>`
    select n.nspname as schema, c.relname as name
    from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_namespace n on n.oid = c.relnamespace
    where i.inhparent = ${`"${tenant.schema}".${hypertable}`}::regclass`;
  if (!chunk) throw new Error(`${tenant.schema}.${hypertable} has no chunk: seed it first`);
  return { ...chunk, qualified: `"${chunk.schema}"."${chunk.name}"` };
}

export type Login = { sql: Sql; role: string; drop(): Promise<void> };

/**
 * A login role holding `tenant`'s role (INHERIT) and nothing else but the tenant-login
 * group (which holds CONNECT): the tenant's own direct credentials. Connects over
 * loopback with a password.
 */
export async function loginFor(t: TestPlatform, tenant: TestTenant): Promise<Login> {
  const role = `tf_test_login_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  await t.su.unsafe(
    `create role ${role} login inherit password '${password}' in role "${tenant.role}", ${ROLES.tenantLogins}`,
  );
  const url = new URL(t.db.url);
  url.username = role;
  url.password = password;
  const sql = openPool(url.toString(), { max: 1, name: 'test-login' });
  return {
    sql,
    role,
    drop: async () => {
      await sql.end();
      await t.su.unsafe(`drop role if exists ${role}`);
    },
  };
}
