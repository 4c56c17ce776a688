import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { ROLE_DDL_LOCK } from '../../src/db/locks.ts';
import { startCli } from '../support/cli.ts';
import { freshDatabase } from '../support/platform.ts';

/** Readiness; with the admin token (from the data dir's generated secrets) it has the details. */
async function readyz(port: number, dataDir?: string) {
  const token = dataDir && JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).adminToken;
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, body: await res.json() };
}

describe('the service with an external DATABASE_URL', () => {
  it('serves, reports ready, and on SIGTERM finishes the request in flight, then exits 0', async () => {
    const db = await freshDatabase();
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'tf-data-'));
    const server = startCli(['serve'], {
      DATABASE_URL: db.url,
      PORT: String(port),
      TENANTFORGE_DATA_DIR: dataDir,
      TENANTFORGE_APP_PASSWORD: inject('appPassword'),
    });
    const holder = openPool(db.url, { max: 2, name: 'test-lock-holder' });
    let release = () => {};
    try {
      await server.waitForLog(/tenantforge is serving/);
      const ready = await readyz(port, dataDir);
      expect(ready.status).toBe(200);
      expect(ready.body.extensions).toMatchObject({ timescaledb: expect.any(String), vector: expect.any(String) });

      // A slow request: provisioning waits for the tenant-role lock, which this test holds.
      let locked = () => {};
      const lockHeld = new Promise<void>((r) => (locked = r));
      const holding = holder.begin(async (tx) => {
        await tx.unsafe(ROLE_DDL_LOCK);
        locked();
        await new Promise<void>((r) => (release = r));
      });
      await lockHeld;
      const token = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).adminToken;
      const inFlight = fetch(`http://127.0.0.1:${port}/v1/tenants`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ slug: 'in-flight', name: 'In flight' }),
      });
      // It has reached the server and is waiting on the lock.
      let waiting = 0;
      for (let i = 0; i < 200 && waiting === 0; i++) {
        [{ n: waiting }] =
          (await holder`select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`) as unknown as [
            { n: number },
          ];
        if (waiting === 0) await new Promise((r) => setTimeout(r, 50));
      }
      expect(waiting).toBe(1);
      server.child.kill('SIGTERM');
      await server.waitForLog(/shutting down: draining requests/);
      // Draining: still running while the request is unanswered.
      await new Promise((r) => setTimeout(r, 500));
      expect(server.child.exitCode).toBeNull();
      release();
      await holding;
      const res = await inFlight;
      expect(res.status).toBe(201);
      expect((await res.json()).slug).toBe('in-flight');
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/"msg":"stopped"/);
      // It was committed, not cut off: the registry has it.
      const [row] = await holder`select status from platform.tenants where slug = 'in-flight'`;
      expect(row?.status).toBe('active');
    } finally {
      release();
      server.child.kill('SIGKILL');
      await holder.end();
      await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the service on its embedded cluster', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tf-embedded-'));
  chmodSync(dataDir, 0o755); // so the postgres user can reach the cluster under it
  afterAll(() => {
    // Stop whatever a failed assertion left running, then remove the cluster.
    try {
      execFileSync(
        'runuser',
        [
          '-u',
          'postgres',
          '--',
          '/usr/lib/postgresql/15/bin/pg_ctl',
          'stop',
          '-m',
          'immediate',
          '-D',
          join(dataDir, 'pg'),
        ],
        { stdio: 'ignore' },
      );
    } catch {}
    rmSync(dataDir, { recursive: true, force: true });
  });

  const env = async () => ({
    PORT: String(await freePort()),
    TENANTFORGE_DATA_DIR: dataDir,
    TENANTFORGE_LOCAL_PG_PORT: String(pgPort),
  });
  let pgPort: number;

  it('creates the cluster, serves, stops it on Ctrl-C, reuses it next time, and survives a crash', async () => {
    pgPort = await freePort();
    // First start: initdb, roles, extensions, migrations.
    let e = await env();
    let server = startCli(['serve'], e);
    await server.waitForLog(/tenantforge is serving/);
    expect((await readyz(Number(e.PORT))).status).toBe(200);
    const token = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).adminToken;
    const created = await fetch(`http://127.0.0.1:${e.PORT}/v1/tenants`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ slug: 'survivor', name: 'Survivor' }),
    });
    expect(created.status).toBe(201);
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
    const pidFile = join(dataDir, 'pg', 'postmaster.pid');
    expect(() => readFileSync(pidFile)).toThrow(); // the cluster it started is stopped

    // Second start: same cluster and data, no initdb.
    e = await env();
    server = startCli(['serve'], e);
    await server.waitForLog(/tenantforge is serving/);
    const listed = await (
      await fetch(`http://127.0.0.1:${e.PORT}/v1/tenants/survivor`, { headers: { authorization: `Bearer ${token}` } })
    ).json();
    expect(listed.status).toBe('active');

    // A crash: the service and the postmaster die without cleaning up (stale pid file).
    const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    server.child.kill('SIGKILL');
    process.kill(postmaster, 'SIGKILL');
    await server.exited;
    await new Promise((r) => setTimeout(r, 500));
    expect(readFileSync(pidFile, 'utf8')).toContain(String(postmaster));

    e = await env();
    server = startCli(['serve'], e);
    await server.waitForLog(/tenantforge is serving/);
    expect((await readyz(Number(e.PORT))).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // initdb, three start-ups and a crash recovery: about 40 s alone, over 60 s while the
    // whole suite (and other runs) share the two cores.
  }, 150_000);
});
