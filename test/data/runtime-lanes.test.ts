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

  it('sends a request whose home seat is busy to a free seat at once, and waits for its home when every seat is busy', async () => {
    const held = await lane.reserve(named(0));
    const heldPid = await pidOf(held);
    const spilled = await lane.reserve(named(0, 1));
    expect(await pidOf(spilled)).not.toBe(heldPid);
    const third = await lane.reserve(named(0, 2));
    // Every seat is taken now: the next request waits for its home seat.
    let answered = false;
    const waiting = lane.reserve(named(0, 3)).then((taken) => {
      answered = true;
      return taken;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    held.release();
    const served = await waiting;
    expect(await pidOf(served)).toBe(heldPid);
    for (const taken of [spilled, third, served]) taken.release();
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
