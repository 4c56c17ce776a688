import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { freePort } from '../../src/db/local-cluster.ts';
import { startCli } from '../support/cli.ts';
import { freshDatabase } from '../support/platform.ts';

/** Readiness; with the admin token (from the data dir's generated secrets) it has the details. */
async function readyz(port: number, dataDir?: string) {
  const token = dataDir && JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).adminToken;
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.json() };
}

describe('the service with an external DATABASE_URL', () => {
  it('serves, reports ready, and drains and exits 0 on SIGTERM', async () => {
    const db = await freshDatabase();
    const port = await freePort();
    const dataDir = mkdtempSync(join(tmpdir(), 'tf-data-'));
    const server = startCli(['serve'], { DATABASE_URL: db.url, PORT: String(port), TENANTFORGE_DATA_DIR: dataDir, TENANTFORGE_APP_PASSWORD: inject('appPassword') });
    try {
      await server.waitForLog(/tenantforge is serving/);
      const ready = await readyz(port, dataDir);
      expect(ready.status).toBe(200);
      expect(ready.body.extensions).toMatchObject({ timescaledb: expect.any(String), vector: expect.any(String) });
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      expect(server.output()).toMatch(/"msg":"stopped"/);
    } finally {
      server.child.kill('SIGKILL');
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
      execFileSync('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-m', 'immediate', '-D', join(dataDir, 'pg')], { stdio: 'ignore' });
    } catch {}
    rmSync(dataDir, { recursive: true, force: true });
  });

  const env = async () => ({ PORT: String(await freePort()), TENANTFORGE_DATA_DIR: dataDir, TENANTFORGE_LOCAL_PG_PORT: String(pgPort) });
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
    const listed = await (await fetch(`http://127.0.0.1:${e.PORT}/v1/tenants/survivor`, { headers: { authorization: `Bearer ${token}` } })).json();
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
  });
});
