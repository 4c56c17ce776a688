/**
 * Tenant activity: requests are counted in memory and written to the registry by a
 * flush, which keeps what it could not write (a row held locked, a connection the
 * database ended) for the next one.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { TenantActivity } from '../../src/tenants/activity.ts';
import { createApp } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform } from '../../src/platform.ts';
import { newTenant, type TestTenant } from '../isolation/support.ts';
import { testConfig, testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
let tenant: TestTenant;
let sql: Sql;

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' }, warmConnections: false });
  tenant = await newTenant(t, 'active');
  sql = openPool(t.db.url, { max: 1, name: 'activity-test' });
});
afterAll(async () => {
  await sql?.end();
  await t?.close();
});
beforeEach(async () => {
  await t.su`update platform.tenants set last_request_at = null where id = ${tenant.id}`;
});

const lastRequestAt = async () => {
  const [row] = await t.su<
    { at: Date | null }[]
  >`select last_request_at as at from platform.tenants where id = ${tenant.id}`;
  return row!.at;
};

describe('tenant activity', () => {
  it('notices a first request once, and writes nothing before a flush', async () => {
    const activity = new TenantActivity(sql);
    const first: string[] = [];
    activity.onFirstRequest((seen) => first.push(seen.id));
    activity.seen(tenant.context);
    activity.seen(tenant.context);
    expect(first).toEqual([tenant.id]);
    expect(await lastRequestAt()).toBeNull();
    expect(await activity.flush()).toEqual({ written: 1, retained: 0 });
    expect(await lastRequestAt()).not.toBeNull();
  });

  it('keeps a sighting whose row is locked for the next flush, without waiting long', async () => {
    const activity = new TenantActivity(sql);
    activity.seen(tenant.context);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const holder = t.su.begin(async (tx) => {
      await tx`select 1 from platform.tenants where id = ${tenant.id} for update`;
      locked();
      await held;
    });
    await isLocked;
    const started = Date.now();
    expect(await activity.flush()).toEqual({ written: 0, retained: 1 });
    expect(Date.now() - started).toBeLessThan(5_000);
    release();
    await holder;
    expect(await lastRequestAt()).toBeNull();
    expect(await activity.flush()).toEqual({ written: 1, retained: 0 });
    expect(await lastRequestAt()).not.toBeNull();
  });

  it('keeps what a flush cut off by the database had to write, and the next flush writes it', async () => {
    const activity = new TenantActivity(sql);
    activity.seen(tenant.context);
    // What a restart does to the connection: the backend is ended under it.
    const [backend] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
    await t.su`select pg_terminate_backend(${backend!.pid})`;
    await expect(activity.flush()).rejects.toMatchObject({
      code: expect.stringMatching(/^(57P01|ECONNRESET|CONNECTION_CLOSED)$/),
    });
    expect(await lastRequestAt()).toBeNull();
    expect(await activity.flush()).toEqual({ written: 1, retained: 0 });
    expect(await lastRequestAt()).not.toBeNull();
  });

  it('is recorded for a request through the API, and written when the service shuts down', async () => {
    const { key } = await t.keys.issue(tenant.id, {}, { actor: 'test' });
    const instance = await startPlatform(
      testConfig(t.db.url, { TENANTFORGE_VALIDATOR_INTERVAL: 'off' }),
      createLogger('silent'),
      {
        runPurgeSweeper: false,
        warmConnections: false,
      },
    );
    try {
      const response = await createApp(instance).request('/v1/portfolios', {
        headers: { authorization: `Bearer ${key}` },
      });
      expect(response.status).toBe(200);
      // Within its first minute nothing is written yet.
      expect(await lastRequestAt()).toBeNull();
      expect((await (await t.http(`/v1/tenants/${tenant.id}`)).json()).lastRequestAt).toBeNull();
    } finally {
      await instance.close();
    }
    const shown = (await (await t.http(`/v1/tenants/${tenant.id}`)).json()).lastRequestAt;
    expect(Date.now() - Date.parse(shown)).toBeLessThan(60_000);
  });
});
