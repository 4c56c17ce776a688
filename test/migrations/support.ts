/**
 * Tenant-migration tests: a private copy of `sql/` per test file (tests add files there,
 * never to the repository's `sql/`), and tenants seeded with trades across many weeks so
 * their `trades` hypertable has many chunks.
 *
 * @example
 * const dir = sqlCopy();
 * addMigration(dir, '0002_note', 'alter table trades add column note text;');
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withTenant, type TenantContext } from '../../src/db/with-tenant.ts';
import { TENANT_MIGRATIONS_FOLDER } from '../../src/migrations/files.ts';
import { PLANS } from '../../src/tenants/plans.ts';
import type { Tenant } from '../../src/tenants/service.ts';
import type { TestPlatform } from '../support/platform.ts';
import { tenantRoleName } from '../../src/db/names.ts';
import { scratchDir } from '../support/scratch.ts';

export function sqlCopy(): string {
  const dir = scratchDir('tf-sql-');
  cpSync(TENANT_MIGRATIONS_FOLDER, dir, { recursive: true });
  return dir;
}

export function addMigration(dir: string, name: string, sql: string): string {
  const path = join(dir, `${name}.sql`);
  writeFileSync(path, sql);
  return path;
}

export type SeededTenant = Tenant & { context: TenantContext };

export async function tenantWithChunks(t: TestPlatform, slug: string, weeks: number): Promise<SeededTenant> {
  const { tenant } = await t.tenants.create({ slug, name: slug, plan: 'free' }, { actor: 'test:migrations' });
  const context = {
    id: tenant.id,
    schema: tenant.schema,
    role: tenantRoleName(tenant.schema),
    statementTimeoutMs: 10_000,
    chunkQuota: PLANS.free.chunkQuota,
  };
  if (weeks > 0) {
    await withTenant(t.app, context, async (tx) => {
      const [p] = await tx`insert into portfolios (name) values ('main') returning id`;
      await tx`
        insert into trades (portfolio_id, symbol, side, quantity, price, executed_at)
        select ${p!.id}, 'AAPL', 'buy', 1, 100, timestamptz '2024-01-01' + w * interval '7 days' from generate_series(0, ${weeks - 1}) w`;
      await tx`insert into orders (portfolio_id, symbol, side, type, quantity) values (${p!.id}, 'AAPL', 'buy', 'market', 5)`;
    });
  }
  return { ...tenant, context };
}
