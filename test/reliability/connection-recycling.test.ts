/**
 * Pools recycle their connections (`max_lifetime`: a backend's catalog cache grows with
 * every tenant it serves). A connection recycled while a request holds it, or while
 * another request waits for it, must cost nothing: here every connection lives about a
 * second while tenant transactions run back to back, and each one must be answered, in
 * time, with every acknowledged write stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { tenantRoleName } from '../../src/db/names.ts';
import { withTenant, type TenantContext } from '../../src/db/with-tenant.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let t: TestPlatform;
let pool: Sql;
let tenant: TenantContext;

beforeAll(async () => {
  t = await testPlatform();
  const { tenant: created } = await t.tenants.create(
    { slug: 'recycled', name: 'Recycled', plan: 'pro' },
    { actor: 'test' },
  );
  tenant = {
    id: created.id,
    schema: created.schema,
    role: tenantRoleName(created.schema),
    statementTimeoutMs: 5_000,
    chunkQuota: 100,
  };
  // Two connections, each recycled after 1-1.5 s: six workers always have one waiting.
  pool = openPool(t.db.url, { max: 2, maxLifetimeSeconds: 1, name: 'recycling' });
}, 60_000);
afterAll(async () => {
  await pool?.end({ timeout: 1 });
  await t?.close();
});

describe('connections recycled under load', () => {
  it('answers every tenant transaction, reads and writes, while each connection lives about a second', async () => {
    const pids = new Set<number>();
    const acknowledged: string[] = [];
    const failures: string[] = [];
    const until = Date.now() + 6_000;
    const worker = async (n: number) => {
      for (let i = 0; Date.now() < until; i++) {
        const write = (n + i) % 2 === 0;
        const name = `w${n}-${i}`;
        const work = withTenant(
          pool,
          tenant,
          async (tx) => {
            const [row] = await tx<{ pid: number }[]>`select pg_backend_pid() as pid`;
            pids.add(row!.pid);
            await sleep(Math.random() * 30);
            if (write) await tx`insert into portfolios (name) values (${name})`;
            else await tx`select count(*) from portfolios`;
          },
          { readOnly: !write },
        );
        const answered = await Promise.race([
          work.then(() => 'ok'),
          sleep(10_000).then(() => 'no answer in 10 s'),
        ]).catch((err: Error) => err.message);
        if (answered !== 'ok') failures.push(`${name}: ${answered}`);
        else if (write) acknowledged.push(name);
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, n) => worker(n)));

    expect(failures).toEqual([]);
    // The connections were recycled several times over: 2 at a time, many backends in all.
    expect(pids.size).toBeGreaterThanOrEqual(6);
    const stored = await t.su.unsafe(`select name from "${tenant.schema}".portfolios`);
    expect(stored.map((r) => r.name).sort()).toEqual([...acknowledged].sort());
    expect(acknowledged.length).toBeGreaterThan(20);
  }, 60_000);
});
