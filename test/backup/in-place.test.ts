/**
 * In-place restore of an existing tenant: confirmed with its slug, one transaction, the
 * old rows kept until the new ones are loaded and verified. A failure mid-load (a
 * corrupted object after some tables were already loaded) leaves the tenant exactly as
 * it was and serving; a wrong or missing confirmation and another tenant's backup are
 * refused; nothing half-made is left (schemas, roles, tables, indexes, RLS).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validate } from '../../src/isolation/validator.ts';
import { shape } from '../support/shape.ts';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';
import type { TestPlatform } from '../support/platform.ts';
import {
  backupPlatform,
  damagedCopy,
  flipByte,
  runBackup,
  seedBulk,
  tableDigests,
  testPrefix,
  type TableDigest,
} from './support.ts';

const prefix = testPrefix('in-place');
let t: TestPlatform;
let acme: TenantClient;
let other: TenantClient;
let acmeBackup: { id: string };
let otherBackup: { id: string };
let atBackup: Record<string, TableDigest>;
let otherAtBackup: Record<string, TableDigest>;
let portfolio: string;

/** What must not change when a restore fails: the data, the structure, and what exists in the database. */
async function state(tenant: TenantClient) {
  const [counts] = await t.su`
    select (select count(*)::int from pg_namespace where nspname like 'tenant\\_%') as schemas,
           (select count(*)::int from pg_roles r where rolname like 'tenant\\_%' and exists (
              select 1 from pg_shdepend d where d.refobjid = r.oid and d.dbid = (select oid from pg_database where datname = current_database()))) as roles,
           (select count(*)::int from platform.tenants) as registry,
           (select count(*)::int from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${tenant.schema}) as relations`;
  return { counts: counts!, digests: await tableDigests(t.su, tenant.schema), shape: await shape(t.su, tenant.schema) };
}

const restoreInPlace = async (slug: string, json: unknown) => {
  const res = await t.http(`/v1/tenants/${slug}/restore`, { method: 'POST', json });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.json() };
};

beforeAll(async () => {
  t = await backupPlatform(prefix);
  acme = await tenantClient(t, 'acme');
  other = await tenantClient(t, 'other');
  portfolio = (await acme.ok('POST', '/v1/portfolios', { name: 'Main' })).id;
  await acme.ok('POST', '/v1/trades', {
    portfolioId: portfolio,
    symbol: 'AAPL',
    side: 'buy',
    quantity: '4',
    price: '99.5',
    executedAt: '2026-02-01T10:00:00Z',
  });
  await seedBulk(t.su, acme, { portfolios: [portfolio], orders: [] }, { trades: 5_000, bars: 3_000, embeddings: 400 });
  const op = (await other.ok('POST', '/v1/portfolios', { name: 'Other' })).id;
  await seedBulk(t.su, other, { portfolios: [op], orders: [] }, { trades: 700, bars: 100, embeddings: 20 });
  acmeBackup = await runBackup(t, acme.id);
  otherBackup = await runBackup(t, other.id);
  atBackup = await tableDigests(t.su, acme.schema);
  otherAtBackup = await tableDigests(t.su, other.schema);
  // Life goes on after the backup: more trades, a position changed, a portfolio gone.
  await acme.ok('POST', '/v1/trades', {
    portfolioId: portfolio,
    symbol: 'MSFT',
    side: 'buy',
    quantity: '7',
    price: '410',
    executedAt: '2026-02-02T10:00:00Z',
  });
  await acme.ok('POST', '/v1/portfolios', { name: 'Later' });
  await t.su.unsafe(`delete from "${acme.schema}".trades where symbol = 'TSLA'`);
}, 180_000);
afterAll(() => t?.close());

describe('in-place restore: refusals change nothing', () => {
  it('a missing or wrong confirmation is a clear 4xx', async () => {
    const before = await state(acme);
    const missing = await restoreInPlace('acme', { backupId: acmeBackup.id });
    expect(missing.status).toBe(400);
    expect(missing.type).toBe('application/problem+json');
    const wrong = await restoreInPlace('acme', { backupId: acmeBackup.id, confirm: 'other' });
    expect(wrong.status).toBe(422);
    expect(wrong.type).toBe('application/problem+json');
    expect(wrong.body).toMatchObject({ code: 'restore_not_confirmed', field: 'confirm' });
    expect(wrong.body.detail).toContain('"confirm": "acme"');
    expect(await state(acme)).toEqual(before);
  });

  it("another tenant's backup is refused unless explicitly allowed; unknown backups are 404", async () => {
    const before = await state(acme);
    const res = await restoreInPlace('acme', { backupId: otherBackup.id, confirm: 'acme' });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'backup_tenant_mismatch', field: 'backupId' });
    expect(res.body.detail).toMatch(/allowOtherTenant/);
    const unknown = await restoreInPlace('acme', { backupId: '5b0c2a3e-9a53-4c1e-9a7e-2b9b6b7e0f11', confirm: 'acme' });
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ code: 'backup_not_found', field: 'backupId' });
    expect(await state(acme)).toEqual(before);
    expect((await restoreInPlace('nobody', { backupId: acmeBackup.id, confirm: 'nobody' })).status).toBe(404);
  });

  it('a corrupted object mid-load (after earlier tables were loaded) leaves the tenant exactly as it was, and serving', async () => {
    const before = await state(acme);
    expect(before.digests).not.toEqual(atBackup);
    // trades comes after portfolios and orders in the backup: those are truncated and loaded before the damage is found.
    const damaged = await damagedCopy(prefix, acme.id, acmeBackup.id, flipByte('trades.bin.zst'));
    const res = await restoreInPlace('acme', { backupId: damaged, confirm: 'acme' });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.code).toBe('backup_corrupt');
    expect(await state(acme)).toEqual(before);
    const positions = await acme.ok('GET', `/v1/portfolios/${portfolio}/positions`);
    expect(JSON.stringify(positions)).toContain('MSFT');
    expect((await validate(t.control, { tenant: acme.id })).violations).toEqual([]);
  });
});

describe('in-place restore', () => {
  it("replaces the tenant's rows with the backup's: equal table by table, RLS and indexes back, validator clean, serving", async () => {
    const before = await state(acme);
    const res = await restoreInPlace('acme', { backupId: acmeBackup.id, confirm: 'acme' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({
      id: acme.id,
      slug: 'acme',
      status: 'active',
      restoredFrom: acmeBackup.id,
      restoredRows: { trades: 5_001, portfolios: 1 },
    });
    const after = await state(acme);
    expect(after.digests).toEqual(atBackup);
    expect(after.shape).toEqual(before.shape);
    expect(after.counts.schemas).toBe(before.counts.schemas);
    expect(after.counts.roles).toBe(before.counts.roles);
    expect(after.counts.registry).toBe(before.counts.registry);
    // Through the API, with the tenant's key: the position of the backup's time, the later trade gone.
    const positions = await acme.ok('GET', `/v1/portfolios/${portfolio}/positions`);
    expect(JSON.stringify(positions)).not.toContain('MSFT');
    expect((await acme.ok('GET', '/v1/portfolios')).items).toHaveLength(1);
    expect((await validate(t.control)).violations).toEqual([]);
    const [audit] =
      await t.su`select detail from platform.audit_log where action = 'tenant.restore' and tenant_id = ${acme.id}`;
    expect(audit!.detail).toMatchObject({ backupId: acmeBackup.id, sourceTenant: acme.id });
  });

  it("loads another tenant's backup when explicitly allowed; the rows get this tenant's id", async () => {
    const res = await restoreInPlace('acme', { backupId: otherBackup.id, confirm: 'acme', allowOtherTenant: true });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(await tableDigests(t.su, acme.schema)).toEqual(otherAtBackup);
    const [row] = await t.su.unsafe(
      `select count(*) filter (where tenant_id <> $1)::int as foreign, count(*)::int as n from "${acme.schema}".trades`,
      [acme.id],
    );
    expect(row).toEqual({ foreign: 0, n: 700 });
    // The other tenant is untouched.
    expect(await tableDigests(t.su, other.schema)).toEqual(otherAtBackup);
    expect((await acme.ok('GET', '/v1/portfolios')).items.map((p: { name: string }) => p.name)).toEqual(['Other']);
  });

  it('readers meanwhile see the old rows, the restored ones, or a retryable 503 lock_timeout: never an empty or half-loaded tenant', async () => {
    // Start the restore, and while it runs, read trades through the API a few times.
    const restoring = restoreInPlace('acme', { backupId: acmeBackup.id, confirm: 'acme' });
    const seen: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await acme.call('GET', '/v1/trades?limit=1');
      seen.push(res.status === 200 ? `rows:${res.body.items.length}` : `${res.status}:${res.body.code}`);
    }
    expect((await restoring).status).toBe(200);
    for (const s of seen) expect(['rows:1', '503:lock_timeout']).toContain(s);
    expect(await tableDigests(t.su, acme.schema)).toEqual(atBackup);
  });
});
