/**
 * How the benches seed thousands of tenants with rows: through connections that live a
 * few seconds only, and with the same first rows where a scenario needs no others. A
 * backend keeps a saved plan for every foreign key it has checked (PostgreSQL's RI
 * triggers: one per key of each table and chunk it wrote to), never frees them, and
 * walks all of them on every relation invalidation in the database, which each next
 * tenant's DDL sends by the hundred. A seeding connection that wrote to 1,500 tenants
 * spent 25-28 ms of CPU per tenant provisioned elsewhere, a fresh one 0.25 ms; seeding
 * through long-lived connections made each tenant cost more than the one before
 * (docs/measurements.md).
 *
 * @example
 * await withSeedingPool(env.superuserUrl, 4, (seeding) =>
 *   seeding.begin((tx) => tx.unsafe(firstRowsSql(tenant.schema, tenant.id))),
 * );
 */
import { openPool, type Sql } from '../../src/db/connect.ts';
import { assertTenantSchemaName } from '../../src/db/names.ts';

/** A few hundred tenants per connection at seeding speed. */
const SEEDING_CONNECTION_SECONDS = 10;

/** Runs `seed` with such a pool, which is closed when it settles. */
export async function withSeedingPool<T>(
  superuserUrl: string,
  connections: number,
  seed: (seeding: Sql) => Promise<T>,
): Promise<T> {
  const seeding = openPool(superuserUrl, {
    max: connections,
    name: 'bench-seed',
    maxLifetimeSeconds: SEEDING_CONNECTION_SECONDS,
  });
  try {
    return await seed(seeding);
  } finally {
    await seeding.end();
  }
}

/**
 * A tenant's first rows, written as the owner in the caller's transaction: a portfolio,
 * an order, two trades a week apart and a bar, so three chunks in its two hypertables.
 */
export function firstRowsSql(schema: string, tenantId: string): string {
  const s = `"${assertTenantSchemaName(schema)}"`;
  return `
    select set_config('app.current_tenant_id', '${tenantId}', true);
    with p as (insert into ${s}.portfolios (name) values ('main') returning id),
      o as (insert into ${s}.orders (portfolio_id, symbol, side, type, quantity) select id, 'AAPL', 'buy', 'market', 1 from p)
    insert into ${s}.trades (portfolio_id, symbol, side, quantity, price, executed_at)
      select id, 'AAPL', side, 1, 1, at from p,
        (values ('buy', timestamptz '2024-01-03'), ('sell', timestamptz '2024-01-10')) t (side, at);
    insert into ${s}.market_data (symbol, bar_time, open, high, low, close) values ('AAPL', '2024-01-03', 1, 1, 1, 1);`;
}
