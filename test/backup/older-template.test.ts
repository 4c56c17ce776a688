/**
 * Restoring a backup made at an older template version: the files applied since then
 * only add (a column with a default, a table), so the rows load into the current
 * structure and the tenant comes out at the current version, equal on the backup's
 * columns, the new column at its default, the validator (drift check included) clean. A
 * later file the restore cannot replay (a per-tenant data section) is refused by name,
 * leaving nothing behind.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableLayout, type TableLayout } from '../../src/backup/snapshot.ts';
import { validate } from '../../src/isolation/validator.ts';
import { readTenantMigrations } from '../../src/migrations/files.ts';
import { migrateTenants } from '../../src/migrations/runner.ts';
import { currentTemplateVersion, migrateTemplate } from '../../src/migrations/template.ts';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';
import type { TestPlatform } from '../support/platform.ts';
import { addMigration, sqlCopy } from '../migrations/support.ts';
import { backupPlatform, runBackup, seedBulk, tableDigests, testPrefix, type TableDigest } from './support.ts';

const prefix = testPrefix('older');
const dir = sqlCopy();
let t: TestPlatform;
let acme: TenantClient;
let backup: { id: string; templateVersion: string };
let layoutThen: TableLayout[];
let digestsThen: Record<string, TableDigest>;

async function applyTemplateFiles() {
  await migrateTemplate(t.control, readTenantMigrations(dir));
  const summary = await migrateTenants(t.control, { concurrency: 2, lockTimeoutMs: 2_000, retries: 2, actor: 'test' });
  expect(summary.failed).toBe(0);
}

async function leftovers(): Promise<{ schemas: number; registry: number }> {
  const [row] = await t.su`
    select (select count(*)::int from pg_namespace where nspname like 'tenant\\_%') as schemas, (select count(*)::int from platform.tenants) as registry`;
  return row as { schemas: number; registry: number };
}

beforeAll(async () => {
  t = await backupPlatform(prefix, { env: { TENANTFORGE_SQL_DIR: dir } });
  acme = await tenantClient(t, 'acme');
  const portfolio = await acme.ok('POST', '/v1/portfolios', { name: 'Main' });
  const order = await acme.ok('POST', '/v1/orders', {
    portfolioId: portfolio.id,
    symbol: 'AAPL',
    side: 'buy',
    type: 'limit',
    quantity: '10',
    limitPrice: '100',
  });
  await seedBulk(
    t.su,
    acme,
    { portfolios: [portfolio.id], orders: [order.id] },
    { trades: 3_000, bars: 2_000, embeddings: 300 },
  );
  backup = await runBackup(t, acme.id);
  expect(backup).toMatchObject({ status: 'succeeded' });
  layoutThen = await tableLayout(t.su, acme.schema);
  digestsThen = await tableDigests(t.su, acme.schema);

  // The template moves on: a column with a default on a hypertable, and a new table with RLS.
  addMigration(
    dir,
    '0002_trade_venue_and_watchlists',
    `
    alter table trades add column venue text not null default 'XNAS';
    create table watchlists (
      id uuid primary key default gen_random_uuid(),
      tenant_id uuid not null default (nullif(current_setting('app.current_tenant_id', true), ''))::uuid,
      symbol ticker not null
    );
    alter table watchlists enable row level security;
    alter table watchlists force row level security;
    create policy tenant_isolation on watchlists as permissive for all
      using (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid))
      with check (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid));
  `,
  );
  await applyTemplateFiles();
}, 240_000);
afterAll(() => t?.close());

describe('a backup from an older template version', () => {
  it('restores into a new tenant at the current version: equal rows, new column at its default, new table empty, validator clean', async () => {
    const current = await currentTemplateVersion(t.control);
    expect(backup.templateVersion).not.toBe(current);
    const res = await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'acme-old', name: 'Acme (old backup)', plan: 'pro', restoreFrom: { backupId: backup.id } },
    });
    const restored = await res.json();
    expect(res.status, JSON.stringify(restored)).toBe(201);

    // Equal on every column the backup had.
    expect(await tableDigests(t.su, restored.schema, layoutThen)).toEqual(digestsThen);
    expect(digestsThen.trades!.rows).toBe(3_000);
    const [venue] = await t.su.unsafe(
      `select count(*)::int as n, count(*) filter (where venue = 'XNAS')::int as xnas from "${restored.schema}".trades`,
    );
    expect(venue).toEqual({ n: 3_000, xnas: 3_000 });
    const [watch] = await t.su.unsafe(`select count(*)::int as n from "${restored.schema}".watchlists`);
    expect(watch!.n).toBe(0);

    // At the current version, with the whole ledger, like a tenant migrated there.
    const [row] = await t.su`select template_version from platform.tenants where id = ${restored.id}`;
    expect(row!.template_version).toBe(current);
    const ledger =
      await t.su`select name from platform.tenant_migrations where tenant_id = ${restored.id} order by name`;
    expect(ledger.map((l) => l.name)).toEqual(['0001_trading_and_vectors', '0002_trade_venue_and_watchlists']);

    // Clean for the validator (drift check against the current version included), for it and for all.
    expect((await validate(t.control, { tenant: restored.id })).violations).toEqual([]);
    expect((await validate(t.control)).violations).toEqual([]);
    // And usable through the API.
    const issued = await (
      await t.http(`/v1/tenants/${restored.id}/keys`, { method: 'POST', json: { name: 'tests' } })
    ).json();
    const positions = await t.http(`/v1/portfolios`, { token: issued.key });
    expect(positions.status).toBe(200);
  });

  it('is refused, naming the migration, when a later file cannot be replayed onto its rows; nothing is left behind', async () => {
    addMigration(
      dir,
      '0003_trade_source_backfill',
      `
      alter table trades add column source text;
      -- tenantforge:per-tenant
      update trades set source = 'import';
    `,
    );
    await applyTemplateFiles();
    const before = await leftovers();
    const res = await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'acme-old-2', name: 'Acme', restoreFrom: { backupId: backup.id } },
    });
    const body = await res.json();
    expect(res.status, JSON.stringify(body)).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(body.code).toBe('backup_template_outdated');
    expect(body.detail).toMatch(/0003_trade_source_backfill has a per-tenant data section/);
    expect(await leftovers()).toEqual(before);
    expect((await t.http('/v1/tenants/acme-old-2')).status).toBe(404);
  });
});
