import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';
import { backupPlatform, testPrefix } from './support.ts';

let t: TestPlatform;
let pro: TenantClient;
let enterprise: TenantClient;
let free: TenantClient;

beforeAll(async () => {
  t = await backupPlatform(testPrefix('coverage'));
  [pro, enterprise, free] = [
    await tenantClient(t, 'cov-pro', 'pro'),
    await tenantClient(t, 'cov-big', 'enterprise'),
    await tenantClient(t, 'cov-free', 'free'),
  ];
});
afterAll(() => t?.close());

const coverage = async (platform = t) => {
  const res = await platform.http('/v1/admin/backups');
  const body = await res.json();
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body;
};
const metric = async (name: string, platform = t) => {
  const text = await (await platform.http('/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
};
const age = (tenantId: string, interval: string) =>
  t.su`update platform.tenants set created_at = now() - ${interval}::interval where id = ${tenantId}`;

describe('backup coverage (GET /v1/admin/backups, /metrics)', () => {
  it('needs the admin token', async () => {
    expect((await t.http('/v1/admin/backups', { token: null })).status).toBe(401);
    expect((await t.http('/v1/admin/backups', { token: pro.key })).status).toBe(401);
  });

  it('counts only scheduled plans, and a tenant without a backup is overdue only once two intervals have passed', async () => {
    expect(await coverage()).toMatchObject({
      configured: true,
      scheduledTenants: 2, // pro and enterprise; free has no schedule
      overdueTenants: 0,
      overdue: [],
    });
    expect(await metric('tenantforge_backup_overdue_tenants')).toBe(0);

    await age(enterprise.id, '119 minutes'); // hourly: not yet two intervals
    expect((await coverage()).overdueTenants).toBe(0);
    await age(enterprise.id, '121 minutes');
    await age(free.id, '400 days'); // never scheduled, never overdue
    const body = await coverage();
    expect(body).toMatchObject({ overdueTenants: 1, lastFailedTenants: 0 });
    expect(body.overdue).toEqual([
      expect.objectContaining({
        tenantId: enterprise.id,
        slug: 'cov-big',
        plan: 'enterprise',
        intervalSeconds: 3600,
        lastBackupAt: null,
        lastAttemptFailed: false,
      }),
    ]);
    expect(body.overdue[0].ageSeconds).toBeGreaterThan(121 * 60 - 5);
    expect(body.oldestAgeSeconds).toBeGreaterThan(121 * 60 - 5);
    expect(await metric('tenantforge_backup_overdue_tenants')).toBe(1);
    expect(await metric('tenantforge_backup_scheduled_tenants')).toBe(2);
  });

  it('a backup clears it; the backup growing old makes it overdue again, naming when it was taken', async () => {
    const res = await t.http(`/v1/tenants/${enterprise.id}/backups`, { method: 'POST' });
    const { id } = await res.json();
    await t.backups.runNext(id);
    expect(await coverage()).toMatchObject({ overdueTenants: 0, overdue: [] });
    expect(await metric('tenantforge_backup_oldest_age_seconds')).toBeLessThan(60);

    await t.su`update platform.backups set started_at = now() - interval '3 hours', created_at = now() - interval '3 hours' where id = ${id}`;
    const body = await coverage();
    expect(body.overdue).toEqual([expect.objectContaining({ tenantId: enterprise.id, lastAttemptFailed: false })]);
    expect(Date.parse(body.overdue[0].lastBackupAt)).toBeLessThan(Date.now() - 3 * 3600_000 + 60_000);
    expect(body.overdue[0].ageSeconds).toBeGreaterThanOrEqual(3 * 3600 - 5);
    expect(await metric('tenantforge_backup_oldest_age_seconds')).toBeGreaterThanOrEqual(3 * 3600 - 5);

    // Expired backups no longer restore: a tenant whose only backup expired has none.
    await t.su`update platform.backups set status = 'expired', expired_at = now() where id = ${id}`;
    expect((await coverage()).overdue).toEqual([
      expect.objectContaining({ tenantId: enterprise.id, lastBackupAt: null }),
    ]);
    // A suspended tenant is not scheduled, so not counted.
    await t.su`update platform.tenants set status = 'suspended' where id = ${enterprise.id}`;
    expect(await coverage()).toMatchObject({ scheduledTenants: 1, overdueTenants: 0 });
    await t.su`update platform.tenants set status = 'active' where id = ${enterprise.id}`;
  });

  it('flags tenants whose newest attempt failed, and shows how long due jobs wait', async () => {
    await t.su`
      insert into platform.backups (tenant_id, status, trigger, attempts, error, started_at, finished_at)
      values (${pro.id}, 'failed', 'scheduled', 3, 'store unreachable', now(), now())`;
    expect(await coverage()).toMatchObject({ lastFailedTenants: 1 });
    expect(await metric('tenantforge_backup_last_failed_tenants')).toBe(1);

    // Queued (no worker runs in this platform), due five minutes ago.
    const res = await t.http(`/v1/tenants/${pro.id}/backups`, { method: 'POST' });
    const { id } = await res.json();
    await t.su`update platform.backups set run_after = now() - interval '5 minutes' where id = ${id}`;
    const body = await coverage();
    // The newest attempt is now the queued one, not the failure.
    expect(body.lastFailedTenants).toBe(0);
    expect(body.jobs.queued).toBe(1);
    expect(body.jobs.delaySeconds).toBeGreaterThanOrEqual(300);
    expect(await metric('tenantforge_backup_jobs{status="queued"}')).toBe(1);
    expect(await metric('tenantforge_backup_queue_delay_seconds')).toBeGreaterThanOrEqual(300);
    await t.backups.runNext(id);
    expect((await coverage()).jobs).toEqual({ queued: 0, running: 0, delaySeconds: 0 });
  });

  it('lists the most overdue first, up to the limit asked for', async () => {
    await age(pro.id, '3 days');
    await t.su`update platform.backups set started_at = now() - interval '3 days', created_at = now() - interval '3 days' where tenant_id = ${pro.id}`;
    const body = await coverage();
    expect(body.overdueTenants).toBe(2);
    expect(body.overdue.map((o: { slug: string }) => o.slug)).toEqual(['cov-pro', 'cov-big']);
    const one = await (await t.http('/v1/admin/backups?limit=1')).json();
    expect(one).toMatchObject({ overdueTenants: 2, overdue: [expect.objectContaining({ slug: 'cov-pro' })] });
    const bad = await t.http('/v1/admin/backups?limit=-1');
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/problem+json');
  });

  it('without a backup store: not configured, and nobody counts as overdue', async () => {
    const plain = await testPlatform();
    try {
      const res = await plain.http('/v1/tenants', {
        method: 'POST',
        json: { slug: 'old-pro', name: 'x', plan: 'pro' },
      });
      const tenant = await res.json();
      await plain.su`update platform.tenants set created_at = now() - interval '30 days' where id = ${tenant.id}`;
      expect(await coverage(plain)).toMatchObject({ configured: false, scheduledTenants: 0, overdueTenants: 0 });
      expect(await metric('tenantforge_backup_configured', plain)).toBe(0);
      expect(await metric('tenantforge_backup_overdue_tenants', plain)).toBeUndefined();
    } finally {
      await plain.close();
    }
  });
});
