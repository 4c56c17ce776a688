/**
 * Warming: a tenant's tables opened on its home seat ahead of its requests, at the lowest
 * priority, never renewing a seat, and never leaving a transaction behind when it fails.
 * The seats here log in as the superuser, so a test can read a backend's own caches
 * (pg_backend_memory_contexts: an index's entry and a table's row-security policies each
 * get a context named after the relation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import { LaneWarming } from '../../src/db/lane-warming.ts';
import { RUNTIME_ROLES } from '../../src/db/roles.ts';
import { Lane, RuntimeLanes } from '../../src/db/runtime-lanes.ts';
import { withTenant } from '../../src/db/with-tenant.ts';
import { createLogger } from '../../src/log.ts';
import { newTenant, purge, type TestTenant } from '../isolation/support.ts';
import { createApp } from '../../src/app.ts';
import { startPlatform } from '../../src/platform.ts';
import { testConfig, testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
let tenant: TestTenant;
const log = createLogger('silent');

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off', TENANTFORGE_WARM_POOL: '0' } });
  tenant = await newTenant(t, 'warmed');
});
afterAll(async () => {
  await t?.close();
});

/** One lane of `seats` superuser connections standing in for every runtime role. */
function superuserLanes(seats: number, renewal?: { maxTenants: number }) {
  const open = (seat: number) => openPool(t.db.url, { max: 1, name: `warming-${seat}` });
  const lane = new Lane(
    Array.from({ length: seats }, (_, seat) => open(seat)),
    5,
    renewal && { ...renewal, open },
  );
  return {
    lane,
    lanes: new RuntimeLanes(
      RUNTIME_ROLES.map(() => lane),
      RUNTIME_ROLES.map(() => t.db.url),
    ),
  };
}

/** Contexts in the home seat's backend named after these relations. */
async function cached(lane: Lane, names: string[]): Promise<string[]> {
  const taken = await lane.reserve(tenant.role);
  try {
    const rows = await taken.conn<{ ident: string }[]>`
      select distinct ident from pg_backend_memory_contexts
      where name in ('index info', 'row security descriptor') and ident = any(${names})`;
    return rows.map((r) => r.ident).sort();
  } finally {
    taken.release();
  }
}

/** One more service instance on the test platform's database. */
const anotherInstance = (env: Record<string, string>) =>
  startPlatform(testConfig(t.db.url, { TENANTFORGE_VALIDATOR_INTERVAL: 'off', ...env }), log, {
    runPurgeSweeper: false,
    runBackupWorker: false,
    runBackupScheduler: false,
  });

const tables = async () => (await t.provisioner.plan()).tables;

describe('warming a tenant on its home seat', () => {
  it("opens each of the tenant's tables, their indexes and policies, in that seat's backend", async () => {
    const { lane, lanes } = superuserLanes(1);
    try {
      const watched = ['orders', 'orders_portfolio_created_idx', 'trades_portfolio_executed_idx', 'embeddings'];
      expect(await cached(lane, watched)).toEqual([]);
      const warming = new LaneWarming(lanes, tables, log);
      warming.add([tenant.context]);
      await warming.idle();
      expect(warming.stats()).toEqual({ pending: 0, warmed: 1, skipped: 0, failed: 0 });
      expect(await cached(lane, watched)).toEqual([...watched].sort());
    } finally {
      await lane.end({ timeout: 1 });
    }
  });

  it('waits while a request holds the seat, and lets requests waiting for it go first', async () => {
    const { lane, lanes } = superuserLanes(1);
    try {
      const order: string[] = [];
      const held = await lane.reserve(tenant.role);
      const warming = new LaneWarming(lanes, tables, log);
      warming.add([tenant.context]);
      const request = lane.reserve('tenant_0000000ab_role').then((taken) => {
        order.push('request');
        return taken;
      });
      const warmed = warming.idle().then(() => order.push('warming'));
      await new Promise((r) => setTimeout(r, 100));
      expect(order).toEqual([]);
      expect(warming.stats().pending).toBe(1);
      held.release();
      const taken = await request;
      await new Promise((r) => setTimeout(r, 50));
      expect(order).toEqual(['request']);
      taken.release();
      await warmed;
      expect(order).toEqual(['request', 'warming']);
      expect(lane.stats()).toMatchObject({ busy: 0, waiting: 0 });
    } finally {
      await lane.end({ timeout: 1 });
    }
  });

  it('skips a seat that may serve no more tenants instead of renewing it', async () => {
    const { lane, lanes } = superuserLanes(1, { maxTenants: 1 });
    try {
      (await lane.reserve('tenant_0000000ab_role')).release();
      const warming = new LaneWarming(lanes, tables, log);
      warming.add([tenant.context]);
      await warming.idle();
      expect(warming.stats()).toMatchObject({ warmed: 0, skipped: 1 });
      expect(lane.stats().renewed).toBe(0);
      expect(await cached(lane, ['orders'])).toEqual([]);
    } finally {
      await lane.end({ timeout: 1 });
    }
  });

  it('counts a failure, and leaves the seat with no transaction open', async () => {
    const { lane, lanes } = superuserLanes(1);
    try {
      const warming = new LaneWarming(lanes, async () => ['portfolios', 'no_such_table'], log);
      warming.add([tenant.context]);
      await warming.idle();
      expect(warming.stats()).toMatchObject({ warmed: 0, failed: 1 });
      // Not warmed again on a replaced connection: it may be suspended or gone.
      warming.again([tenant.role]);
      expect(warming.stats()).toMatchObject({ pending: 0, failed: 1 });
      const [row] = await withTenant(
        lanes,
        tenant.context,
        (tx) => tx<{ n: number }[]>`select count(*)::int as n from portfolios`,
      );
      expect(row!.n).toBe(0);
    } finally {
      await lane.end({ timeout: 1 });
    }
  });

  it('gives up on a table its tenant keeps locked after a tenth of a second, holding the seat no longer', async () => {
    const { lane, lanes } = superuserLanes(1);
    const locker = openPool(t.db.url, { max: 1, name: 'warming-locker' });
    try {
      const warming = new LaneWarming(lanes, tables, log);
      let waited = 0;
      await locker.begin(async (tx) => {
        await tx.unsafe(`lock table "${tenant.schema}".orders in access exclusive mode`);
        const started = performance.now();
        warming.add([tenant.context]);
        await warming.idle();
        waited = performance.now() - started;
      });
      expect(warming.stats()).toMatchObject({ warmed: 0, failed: 1 });
      expect(waited).toBeLessThan(2_000);
      expect(lane.stats()).toMatchObject({ busy: 0 });
    } finally {
      await locker.end({ timeout: 1 });
      await lane.end({ timeout: 1 });
    }
  });
});

describe('the service warms', () => {
  it('each tenant it creates, and every active tenant when it starts', async () => {
    await t.warming!.idle();
    const before = t.warming!.stats();
    const made = await newTenant(t, 'warmed-on-create');
    await t.warming!.idle();
    expect(t.warming!.stats().warmed).toBe(before.warmed + 1);
    expect(await t.http('/metrics').then((r) => r.text())).toMatch(
      new RegExp(`^tenantforge_runtime_warmed_tenants_total\\{outcome="warmed"\\} ${before.warmed + 1}$`, 'm'),
    );

    // A second instance on the same database: it warms both tenants at start.
    const second = await anotherInstance({});
    try {
      await expect.poll(() => second.warming!.stats().warmed, { timeout: 10_000 }).toBe(2);
      expect(second.warming!.stats()).toMatchObject({ pending: 0, failed: 0 });
      expect(made.id).toBeDefined();
    } finally {
      await second.close();
    }
  });

  it('the tenants a connection served on its successor, when it is replaced for its age', async () => {
    const aging = await anotherInstance({ TENANTFORGE_POOL_MAX_LIFETIME: '300ms' });
    try {
      await expect.poll(() => aging.warming!.stats(), { timeout: 10_000 }).toMatchObject({ pending: 0, warmed: 2 });
      const lane = aging.app.laneOf(tenant.role);
      const before = { renewed: lane.stats().renewed, warmed: aging.warming!.stats().warmed };
      // Older than its 300-450 ms: the request gets a new connection, and the warming follows it.
      await new Promise((r) => setTimeout(r, 500));
      await withTenant(aging.app, tenant.context, (tx) => tx`select 1 from portfolios`);
      expect(lane.stats().renewed).toBe(before.renewed + 1);
      // Its seat's tenants: this one, and the other if both happen to share the seat.
      await expect
        .poll(() => aging.warming!.stats().warmed - before.warmed, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(1);
      expect(aging.warming!.stats().failed).toBe(0);
    } finally {
      await aging.close();
    }
  });

  it('at start only the tenants recently created or active, and any other at its first request', async () => {
    const idle = await newTenant(t, 'warmed-when-back');
    const { key } = await t.keys.issue(idle.id, {}, { actor: 'test' });
    await t.su`update platform.tenants set created_at = now() - interval '30 days' where id = ${idle.id}`;
    const [counted] = await t.su<{ recent: number }[]>`
      select count(*)::int as recent from platform.tenants where status = 'active' and created_at > now() - interval '7 days'`;
    const recent = counted!.recent;

    const second = await anotherInstance({});
    try {
      await expect
        .poll(() => second.warming!.stats(), { timeout: 10_000 })
        .toMatchObject({ pending: 0, warmed: recent });
      const app = createApp(second);
      const read = () => app.request('/v1/portfolios', { headers: { authorization: `Bearer ${key}` } });
      expect((await read()).status).toBe(200);
      await expect.poll(() => second.warming!.stats().warmed, { timeout: 10_000 }).toBe(recent + 1);
      // Its first request only: the next ones find it warmed.
      expect((await read()).status).toBe(200);
      await second.warming!.idle();
      expect(second.warming!.stats()).toMatchObject({ warmed: recent + 1, failed: 0 });

      // The request is its activity: written once, and not again within the quarter hour.
      expect(await second.activity.flush()).toEqual({ written: 1, retained: 0 });
      expect((await read()).status).toBe(200);
      expect(await second.activity.flush()).toEqual({ written: 0, retained: 0 });
      const shown = await (await t.http(`/v1/tenants/${idle.id}`)).json();
      expect(Date.now() - Date.parse(shown.lastRequestAt)).toBeLessThan(60_000);
    } finally {
      await second.close();
    }

    /** Starts another instance and waits until its start's warming is done: `warmed` tenants. */
    const warmsAtStart = async (env: Record<string, string>, warmed: number) => {
      const instance = await anotherInstance(env);
      try {
        await expect.poll(() => instance.warming!.stats(), { timeout: 10_000 }).toMatchObject({ pending: 0, warmed });
      } finally {
        await instance.close();
      }
    };
    try {
      // Active within the window now: the next instance warms it at start.
      await warmsAtStart({}, recent + 1);
      // With the window off, every active tenant, however long idle.
      await t.su`update platform.tenants set last_request_at = now() - interval '30 days' where id = ${idle.id}`;
      await warmsAtStart({ TENANTFORGE_WARM_WITHIN: 'off' }, recent + 1);
    } finally {
      await purge(t, idle);
    }
  });

  it('nothing when TENANTFORGE_WARM_CONNECTIONS is false', async () => {
    const cold = await anotherInstance({ TENANTFORGE_WARM_CONNECTIONS: 'false' });
    try {
      expect(cold.warming).toBeUndefined();
      const metrics = await createApp(cold).request('/metrics', {
        headers: { authorization: `Bearer ${cold.adminToken}` },
      });
      expect(await metrics.text()).not.toMatch(/tenantforge_runtime_warm/);
    } finally {
      await cold.close();
    }
  });
});
