/**
 * Connections for writing thousands of tenants' rows (the seeding of the spread and
 * validator scenarios). Each connection lives a few seconds only. A backend keeps a saved
 * plan for every foreign key it has checked (PostgreSQL's RI triggers: one per key of
 * each table and chunk it wrote to), never frees them, and walks all of them on every
 * relation invalidation in the database, which each next tenant's DDL sends by the
 * hundred. A seeding connection that wrote to 1,500 tenants spent 25-28 ms of CPU per
 * tenant provisioned elsewhere, a fresh one 0.25 ms; seeding through long-lived
 * connections made each tenant cost more than the one before (docs/measurements.md).
 *
 * @example
 * const seeding = openSeedingPool(env.superuserUrl, 4);
 * await seeding.begin((tx) => tx.unsafe(rowsOf(tenant)));
 * await seeding.end();
 */
import { openPool, type Sql } from '../../src/db/connect.ts';

/** A few hundred tenants per connection at seeding speed. */
const SEEDING_CONNECTION_SECONDS = 10;

export function openSeedingPool(superuserUrl: string, connections: number): Sql {
  return openPool(superuserUrl, {
    max: connections,
    name: 'bench-seed',
    maxLifetimeSeconds: SEEDING_CONNECTION_SECONDS,
  });
}
