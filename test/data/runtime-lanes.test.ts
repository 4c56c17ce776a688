/**
 * Seats within a lane: a tenant's requests go to the same backend (its home seat) while it
 * is free, so each backend opens only its share of the tenants' tables; a busy home seat
 * sends the request to a free seat of the lane instead of making it wait.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { Lane, type LaneConnection } from '../../src/db/runtime-lanes.ts';
import { withTenant } from '../../src/db/with-tenant.ts';
import { newTenant, type TestTenant } from '../isolation/support.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
let seats: Sql[];
let lane: Lane;
let tenant: TestTenant;

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' } });
  seats = [0, 1, 2].map((i) => openPool(t.db.url, { max: 1, name: `seat-${i}` }));
  lane = new Lane(seats);
  tenant = await newTenant(t, 'seated');
});
afterAll(async () => {
  await Promise.all((seats ?? []).map((s) => s.end({ timeout: 1 })));
  await t?.close();
});

/** A name whose home seat (of three) is `seat`: the digits after the lane's one, modulo 3. */
const named = (seat: number, n = 0) => `tenant_0${(seat + 3 * n).toString(16).padStart(6, '0')}ab_role`;

async function pidOf(taken: LaneConnection): Promise<number> {
  const [row] = await taken.conn<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return row!.pid;
}

describe('seats within a lane', () => {
  it('gives a tenant its home seat every time it is free, and tenants with different homes different backends', async () => {
    const pidsOf = async (name: string) => {
      const pids = new Set<number>();
      for (let i = 0; i < 5; i++) {
        const taken = await lane.reserve(name);
        pids.add(await pidOf(taken));
        taken.release();
      }
      return pids;
    };
    const homes = await Promise.all([0, 1, 2].map((seat) => pidsOf(named(seat))));
    for (const pids of homes) expect(pids.size).toBe(1);
    expect(new Set(homes.map((pids) => [...pids][0])).size).toBe(3);
    // Another tenant with the same home seat shares that backend.
    expect(await pidsOf(named(1, 7))).toEqual(homes[1]);
  });

  it('waits briefly for a busy home seat: gets it when it frees in time, else the first free seat', async () => {
    const patient = new Lane(seats, 300);
    const held = await patient.reserve(named(0));
    const home = await pidOf(held);
    // Freed within the wait: the request gets its home.
    const waiting = patient.reserve(named(0, 1));
    setTimeout(() => held.release(), 50);
    const served = await waiting;
    expect(await pidOf(served)).toBe(home);
    // Not freed: after the wait, another seat.
    const started = performance.now();
    const spilled = await patient.reserve(named(0, 2));
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(await pidOf(spilled)).not.toBe(home);
    for (const taken of [served, spilled]) taken.release();
  });

  it('lets a tenant that already holds a seat take a free one at once, and makes everyone wait when all are busy', async () => {
    const patient = new Lane(seats, 10_000);
    const first = await patient.reserve(named(0));
    const started = performance.now();
    const second = await patient.reserve(named(0));
    const third = await patient.reserve(named(0));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(new Set(await Promise.all([first, second, third].map(pidOf))).size).toBe(3);
    // Every seat is taken: the next request, even of that tenant, waits for one to free.
    let answered = false;
    const waiting = patient.reserve(named(0)).then((taken) => {
      answered = true;
      return taken;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    // What /metrics reads: every seat held, one request waiting, two served away from home.
    expect(patient.stats()).toEqual({ seats: 3, busy: 3, waiting: 1, awayFromHome: 2, renewed: 0 });
    const freed = await pidOf(second);
    second.release();
    expect(await pidOf(await waiting)).toBe(freed);
    for (const taken of [first, third, await waiting]) taken.release();
    expect(patient.stats()).toEqual({ seats: 3, busy: 0, waiting: 0, awayFromHome: 3, renewed: 0 });
  });

  it('serves one tenant through withTenant on one backend while its requests come one after another', async () => {
    const pids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      // A read-only request answers before its COMMIT completes: the next one still waits for that seat.
      const [row] = await withTenant(
        t.app,
        tenant.context,
        (tx) => tx<{ pid: number }[]>`select pg_backend_pid() as pid`,
        {
          readOnly: i % 2 === 0,
        },
      );
      pids.add(row!.pid);
    }
    expect(pids.size).toBe(1);
  });
});

describe('renewing a seat after it has served its share of tenants', () => {
  const connected = async (where: string, value: string | number) => {
    const [row] = await t.su.unsafe<{ n: number }[]>(`select count(*)::int as n from pg_stat_activity where ${where}`, [
      value,
    ]);
    return row!.n;
  };

  it('gives a request of one tenant more than the limit a new connection, and ends the old backend', async () => {
    const open = (seat: number) => openPool(t.db.url, { max: 1, name: `renewing-${seat}` });
    const renewing = new Lane([0, 1, 2].map(open), 5, { maxTenants: 2, open });
    try {
      const served = async (name: string) => {
        const taken = await renewing.reserve(name);
        const pid = await pidOf(taken);
        taken.release();
        return pid;
      };
      // Two tenants at one seat, again and again: the same backend.
      const first = await served(named(0));
      for (const name of [named(0), named(0, 1), named(0), named(0, 1)]) expect(await served(name)).toBe(first);
      expect(renewing.stats().renewed).toBe(0);
      // A third: a new backend, and the old one exits.
      const second = await served(named(0, 2));
      expect(second).not.toBe(first);
      expect(renewing.stats().renewed).toBe(1);
      await expect.poll(() => connected('pid = $1', first), { timeout: 5_000 }).toBe(0);

      // Renewed only while a request holds the seat and before it takes the connection:
      // the request holding the seat keeps its backend, the one waiting for it gets the new one.
      const held = await renewing.reserve(named(0, 3));
      expect(await pidOf(held)).toBe(second);
      const waiting = renewing.reserve(named(0, 4));
      held.release();
      const next = await waiting;
      expect(await pidOf(next)).not.toBe(second);
      next.release();
      expect(renewing.stats()).toMatchObject({ renewed: 2, busy: 0, awayFromHome: 0 });
    } finally {
      await renewing.end({ timeout: 1 });
    }
    // Ending the lane ended every pool it had, replaced ones included.
    expect(await connected("application_name like 'tenantforge:' || $1", 'renewing-%')).toBe(0);
  });

  it('replaces a connection older than its age limit before its next request, and says whom it served', async () => {
    const open = (seat: number) => openPool(t.db.url, { max: 1, name: `aging-${seat}` });
    const told: string[][] = [];
    const aging = new Lane([open(0)], 5, { maxAgeMs: 200, open, onAged: (names) => told.push(names) });
    try {
      const served = async (name: string) => {
        const taken = await aging.reserve(name);
        const pid = await pidOf(taken);
        taken.release();
        return pid;
      };
      const first = await served(named(0));
      expect(await served(named(0, 1))).toBe(first);
      expect(told).toEqual([]);
      // Each connection lives 200-300 ms.
      await new Promise((r) => setTimeout(r, 350));
      const second = await served(named(0));
      expect(second).not.toBe(first);
      expect(told).toEqual([[named(0), named(0, 1)]]);
      expect(aging.stats().renewed).toBe(1);
      await expect.poll(() => connected('pid = $1', first), { timeout: 5_000 }).toBe(0);
      // The new one counts from its own start.
      expect(await served(named(0, 1))).toBe(second);
    } finally {
      await aging.end({ timeout: 1 });
    }
  });

  it('is what the service runs with (TENANTFORGE_POOL_MAX_TENANTS)', async () => {
    const limited = await testPlatform({
      env: {
        TENANTFORGE_VALIDATOR_INTERVAL: 'off',
        TENANTFORGE_WARM_POOL: '0',
        TENANTFORGE_LANE_CONNECTIONS: '1',
        TENANTFORGE_POOL_MAX_TENANTS: '1',
      },
    });
    try {
      // Two tenants of one lane (8 lanes: nine tenants always hold such a pair), so one connection.
      const byLane = new Map<Lane, TestTenant>();
      let pair: [TestTenant, TestTenant] | undefined;
      for (let i = 0; !pair; i++) {
        const tenant = await newTenant(limited, `renewed-${i}`);
        const lane = limited.app.laneOf(tenant.role);
        const other = byLane.get(lane);
        if (other) pair = [other, tenant];
        byLane.set(lane, tenant);
      }
      const pidOfTenant = async (tenant: TestTenant) => {
        const [row] = await withTenant(
          limited.app,
          tenant.context,
          (tx) => tx<{ pid: number }[]>`select pg_backend_pid() as pid`,
        );
        return row!.pid;
      };
      const [a, b] = pair;
      const pids = [await pidOfTenant(a), await pidOfTenant(a), await pidOfTenant(b), await pidOfTenant(a)];
      expect(pids[1]).toBe(pids[0]);
      expect(new Set([pids[0], pids[2], pids[3]]).size).toBe(3);
      expect(limited.app.laneOf(a.role).stats().renewed).toBe(2);
      expect(await limited.http('/metrics').then((r) => r.text())).toMatch(
        /^tenantforge_runtime_connections_renewed_total 2$/m,
      );
    } finally {
      await limited.close();
    }
  });
});
