import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { readTenantMigrations } from '../../src/migrations/files.ts';
import { migrateTenants } from '../../src/migrations/runner.ts';
import { currentTemplateVersion, migrateTemplate } from '../../src/migrations/template.ts';
import { startPlatform, type Platform } from '../../src/platform.ts';
import { addMigration, sqlCopy } from '../migrations/support.ts';
import { testConfig, testPlatform, type TestPlatform } from '../support/platform.ts';
import { shape } from '../support/shape.ts';
import { pooledCounts } from '../../src/tenants/warm-pool.ts';

const SIZE = 4;
const REFILL = { intervalMs: 30, quietMs: 150 };

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('background refill, two instances on one database', () => {
  let t: TestPlatform;
  let b: Platform;
  let bApp: ReturnType<typeof createApp>;
  /** The most tenants ever seen pooled at once (sampled every 20 ms). */
  let maxPooled = 0;
  let sampler: NodeJS.Timeout;

  const pooled = async () =>
    (await t.su<{ id: string }[]>`select id::text from platform.tenants where status = 'pooled'`).map((r) => r.id);

  beforeAll(async () => {
    t = await testPlatform({
      env: { TENANTFORGE_WARM_POOL: String(SIZE), TENANTFORGE_VALIDATOR_INTERVAL: 'off' },
      warmPoolRefill: REFILL,
    });
    b = await startPlatform(
      testConfig(t.db.url, {
        TENANTFORGE_WARM_POOL: String(SIZE),
        TENANTFORGE_VALIDATOR_INTERVAL: 'off',
        TENANTFORGE_SCHEMA_SECRET: t.config.schemaSecret!,
      }),
      createLogger('silent'),
      { runPurgeSweeper: false, runBackupWorker: false, runBackupScheduler: false, warmPoolRefill: REFILL },
    );
    bApp = createApp(b);
    sampler = setInterval(() => {
      t.su<{ n: number }[]>`select count(*)::int as n from platform.tenants where status = 'pooled'`.then(
        ([row]) => (maxPooled = Math.max(maxPooled, row!.n)),
        () => {},
      );
    }, 20);
  });
  afterAll(async () => {
    clearInterval(sampler);
    await b?.close();
    await t?.close();
  });

  const create = (slug: string, via: 'a' | 'b') =>
    via === 'a'
      ? t.http('/v1/tenants', { method: 'POST', json: { slug, name: slug } })
      : Promise.resolve(
          bApp.request('/v1/tenants', {
            method: 'POST',
            headers: { authorization: `Bearer ${b.adminToken}`, 'content-type': 'application/json' },
            body: JSON.stringify({ slug, name: slug }),
          }),
        );

  it('fills the pool to its size from both instances, never past it', async () => {
    await until(`${SIZE} tenants are pooled`, async () => (await pooled()).length === SIZE);
    await new Promise((r) => setTimeout(r, 500));
    expect(await pooled()).toHaveLength(SIZE);
    expect(maxPooled).toBe(SIZE);
    // Both instances took part or one did all: either way, one at a time, under the lock.
    const made = await t.su<
      { n: number }[]
    >`select count(*)::int as n from platform.audit_log where action = 'tenant.pool'`;
    expect(made[0]!.n).toBe(SIZE);
  });

  it('refills after a burst of creates on both instances', async () => {
    const before = await pooled();
    const responses = await Promise.all(Array.from({ length: 10 }, (_, i) => create(`burst-${i}`, i % 2 ? 'b' : 'a')));
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(201));
    const ids = await Promise.all(responses.map(async (r) => (await r.json()).id as string));
    // The pooled tenants went to callers first; the rest of the burst was cloned.
    for (const id of before) expect(ids).toContain(id);
    await until(`the pool is back at ${SIZE}`, async () => (await pooled()).length === SIZE);
    expect(maxPooled).toBe(SIZE);
    expect((await pooled()).filter((id) => before.includes(id))).toEqual([]);
  });

  it('gives way while other sessions are running statements, and refills once they stop', async () => {
    await until(`${SIZE} tenants are pooled`, async () => (await pooled()).length === SIZE);
    // Drain the pool through instance A, then keep a statement running on the database:
    // instance B saw none of the requests, so only the database's own activity holds it back.
    for (let i = 0; i < SIZE; i++) expect((await create(`drain-${i}`, 'a')).status).toBe(201);
    const busy = t.su`select pg_sleep(3)`.execute();
    // A refill round that began before the sleep may still finish; after that, nothing.
    await new Promise((r) => setTimeout(r, 700));
    const held = (await pooled()).length;
    expect(held).toBeLessThan(SIZE);
    const seen: number[] = [];
    for (let i = 0; i < 15; i++) {
      seen.push((await pooled()).length);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(Math.max(...seen)).toBe(held);
    await busy;
    await until(`the pool is back at ${SIZE}`, async () => (await pooled()).length === SIZE);
  });

  it('/metrics: the pool, how each instance created its tenants, and its refill rounds', async () => {
    const metrics = async (via: 'a' | 'b') => {
      const res =
        via === 'a'
          ? await t.http('/metrics')
          : await bApp.request('/metrics', { headers: { authorization: `Bearer ${b.adminToken}` } });
      const values = new Map<string, number>();
      for (const line of (await res.text()).split('\n'))
        if (line.startsWith('tenantforge_')) values.set(line.split(' ')[0]!, Number(line.split(' ')[1]));
      return values;
    };
    await until(`the pool is back at ${SIZE}`, async () => (await pooled()).length === SIZE);
    const [a, bm] = [await metrics('a'), await metrics('b')];
    const both = (name: string) => (a.get(name) ?? 0) + (bm.get(name) ?? 0);
    expect(a.get('tenantforge_warm_pool_target_tenants')).toBe(SIZE);
    expect(a.get('tenantforge_warm_pool_tenants{state="claimable"}')).toBe(SIZE);
    expect(a.get('tenantforge_warm_pool_tenants{state="behind"}')).toBe(0);
    // The burst's 10 and the drain's SIZE creates: the burst claimed at least the SIZE
    // tenants pooled before it (a refill may slip in one more) and cloned the rest; the
    // drain found the pool full.
    const claimed = both('tenantforge_tenants_created_total{path="warm_pool"}');
    expect(claimed + both('tenantforge_tenants_created_total{path="clone"}')).toBe(10 + SIZE);
    expect(claimed).toBeGreaterThanOrEqual(2 * SIZE);
    const [made] = await t.su<
      { n: number }[]
    >`select count(*)::int as n from platform.audit_log where action = 'tenant.pool'`;
    expect(both('tenantforge_warm_pool_refill_rounds_total{outcome="made"}')).toBe(made!.n);
    expect(both('tenantforge_warm_pool_refill_rounds_total{outcome="skipped_busy"}')).toBeGreaterThan(0);
  });
});

describe('template migrations and the pool', () => {
  let t: TestPlatform;
  let dir: string;
  const admin = { actor: 'test' };

  beforeAll(async () => {
    dir = sqlCopy();
    t = await testPlatform({
      env: { TENANTFORGE_WARM_POOL: '2', TENANTFORGE_VALIDATOR_INTERVAL: 'off', TENANTFORGE_SQL_DIR: dir },
      runWarmPoolRefill: false,
    });
  });
  afterAll(() => t?.close());

  it('hands out only tenants at the template version; the runner brings pooled ones forward like any other', async () => {
    while ((await t.warmPool.topUpOne()) !== 'full');
    const oldVersion = await currentTemplateVersion(t.control);
    addMigration(dir, '0099_pool_note', 'alter table trades add column pool_note text;');
    await migrateTemplate(t.control, readTenantMigrations(dir));
    const newVersion = await currentTemplateVersion(t.control);
    expect(newVersion).not.toBe(oldVersion);

    // The two pooled tenants are behind: a create clones at the new version instead.
    const stale = await t.su<{ id: string }[]>`select id::text from platform.tenants where status = 'pooled'`;
    expect(stale).toHaveLength(2);
    const { tenant: cloned } = await t.tenants.create({ slug: 'fresh', name: 'f', plan: 'free' }, admin);
    expect(stale.map((s) => s.id)).not.toContain(cloned.id);
    expect((await pooledCounts(t.control, newVersion)).claimable).toBe(0);

    const summary = await migrateTenants(t.control, {
      concurrency: 2,
      lockTimeoutMs: 2_000,
      retries: 1,
      actor: 'test',
    });
    expect(summary).toMatchObject({ status: 'succeeded', migrated: 2, failed: 0 });
    const versions = await t.su`select distinct template_version from platform.tenants where status = 'pooled'`;
    expect(versions.map((v) => v.template_version)).toEqual([newVersion]);

    const { tenant: claimed } = await t.tenants.create({ slug: 'from-pool', name: 'p', plan: 'free' }, admin);
    expect(stale.map((s) => s.id)).toContain(claimed.id);
    const ledger = async (id: string) =>
      (await t.su`select name from platform.tenant_migrations where tenant_id = ${id} order by name`).map(
        (r) => r.name,
      );
    expect(await ledger(claimed.id)).toEqual(await ledger(cloned.id));
    expect(await ledger(claimed.id)).toContain('0099_pool_note');
    expect(await shape(t.su, claimed.schema)).toEqual(await shape(t.su, cloned.schema));
    expect(await shape(t.su, claimed.schema)).toEqual(await shape(t.su, 'tf_template'));
  });
});
