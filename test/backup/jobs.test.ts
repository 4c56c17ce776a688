import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupService } from '../../src/backup/service.ts';
import { tenantClient, type TenantClient } from '../support/tenant-client.ts';
import type { TestPlatform } from '../support/platform.ts';
import { backupPlatform, testPrefix, testStore } from './support.ts';

const prefix = testPrefix('jobs');
let t: TestPlatform;
let pro: TenantClient;
let enterprise: TenantClient;
let free: TenantClient;

beforeAll(async () => {
  t = await backupPlatform(prefix);
  [pro, enterprise, free] = [
    await tenantClient(t, 'pro-desk', 'pro'),
    await tenantClient(t, 'big-desk', 'enterprise'),
    await tenantClient(t, 'small-desk', 'free'),
  ];
});
afterAll(() => t?.close());

describe('backup jobs', () => {
  it('several instances never run the same backup twice', async () => {
    const started = await t.backups.start(pro.id, { actor: 'test' });
    // Four "instances" (services of their own on the same control plane) race for it.
    const instances = Array.from(
      { length: 4 },
      () => new BackupService({ sql: t.control, store: t.backups.store, tenants: t.tenants, log: t.log }),
    );
    const results = await Promise.all(instances.map((i) => i.runNext(started.id)));
    expect(results.filter(Boolean)).toHaveLength(1);
    const [row] = await t.su`select status, attempts from platform.backups where id = ${started.id}`;
    expect(row).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('schedules per plan (pro daily, enterprise hourly, free never) and keeps the newest N per plan, deleting the rest from the bucket', async () => {
    await t.su`delete from platform.backups`;
    expect(await t.backups.schedule()).toBe(2);
    expect(await t.backups.schedule()).toBe(0); // already queued
    const queued = await t.su<
      { tenant_id: string }[]
    >`select tenant_id from platform.backups where trigger = 'scheduled' and status = 'queued'`;
    expect(queued.map((q) => q.tenant_id).sort()).toEqual([pro.id, enterprise.id].sort());
    while (await t.backups.runNext()) {}
    // An hour later, enterprise is due again; pro (daily) is not.
    await t.su`update platform.backups set created_at = created_at - interval '61 minutes'`;
    expect(await t.backups.schedule()).toBe(1);
    while (await t.backups.runNext()) {}

    // Retention: free keeps 3. Make five backups of it, oldest first.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const b = await t.backups.start(free.id, { actor: 'test' });
      await t.backups.runNext(b.id);
      await t.su`update platform.backups set created_at = now() - ${`${10 - i} minutes`}::interval where id = ${b.id}`;
      ids.push(b.id);
    }
    expect(await t.backups.expire()).toBe(2);
    const rows = await t.su<
      { id: string; status: string }[]
    >`select id, status from platform.backups where tenant_id = ${free.id} order by created_at`;
    expect(rows.map((r) => r.status)).toEqual(['expired', 'expired', 'succeeded', 'succeeded', 'succeeded']);
    const keys = await testStore(prefix).list(`${prefix}/`);
    for (const gone of ids.slice(0, 2)) expect(keys.filter((k) => k.includes(gone))).toEqual([]);
    for (const kept of ids.slice(2)) expect(keys).toContain(`${prefix}/tenants/${free.id}/${kept}/manifest.json`);
    // An expired backup is no longer offered for restore.
    const res = await t.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'from-expired', name: 'x', restoreFrom: { backupId: ids[0] } },
    });
    expect(res.status).toBe(409);
    expect((await res.json()).code).toBe('backup_incomplete');
  });

  it('the background worker and scheduler are off unless turned on; when on, a queued backup runs by itself', async () => {
    const on = await backupPlatform(prefix, { runBackupWorker: true });
    try {
      const desk = await tenantClient(on, 'auto-desk');
      const res = await on.http(`/v1/tenants/${desk.id}/backups`, { method: 'POST' });
      expect(res.status).toBe(202);
      const { id } = await res.json();
      let status = 'queued';
      for (let i = 0; i < 100 && status !== 'succeeded'; i++) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await (await on.http(`/v1/tenants/${desk.id}/backups/${id}`)).json()).status;
      }
      expect(status).toBe('succeeded');
    } finally {
      await on.close();
    }
  });
});
