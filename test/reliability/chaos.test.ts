/**
 * Chaos: the HTTP service (its own process, as `tenantforge serve` runs) under
 * provisioning and data-plane load while its PostgreSQL (a throwaway cluster of this
 * test's own) is SIGKILLed and restarted, three times. Asserts that the service process
 * lives through it; answers 503 database_unavailable with Retry-After, fast, while the
 * database is down (/healthz 200, /readyz 503); serves again within seconds of the
 * database; loses no acknowledged write (every 201); leaves no half-made tenant (the
 * validator finds registry and catalog in agreement); that an idempotent retry of each
 * provisioning the crash cut off makes exactly one tenant; and that the background jobs
 * back off during the outage and resume after it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import {
  freePort,
  postmasterPid,
  startLocalCluster,
  startThrowawayCluster,
  type LocalCluster,
} from '../../src/runtime/local-cluster.ts';
import { validate } from '../../src/isolation/validator.ts';
import { startCli, type RunningCli } from '../support/cli.ts';

const KILLS = 3;
/** How long one outage may take to be noticed and the service to serve again after the database is back. */
const RECOVERY_LIMIT_MS = 10_000;
/** A request while the database is down must fail within this (connect_timeout is 5 s). */
const FAIL_FAST_LIMIT_MS = 6_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Answer = {
  status: number;
  body: Record<string, unknown> | null;
  contentType: string;
  retryAfter: string | null;
  ms: number;
  error?: string;
};

function client(base: string) {
  return async (
    method: string,
    path: string,
    options: { token?: string; json?: unknown; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const started = performance.now();
    try {
      const res = await fetch(`${base}${path}`, {
        method,
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.json !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
        body: options.json === undefined ? undefined : JSON.stringify(options.json),
        signal: AbortSignal.timeout(15_000),
      });
      const text = await res.text();
      return {
        status: res.status,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : null,
        contentType: res.headers.get('content-type') ?? '',
        retryAfter: res.headers.get('retry-after'),
        ms: performance.now() - started,
      };
    } catch (err) {
      return {
        status: 0,
        body: null,
        contentType: '',
        retryAfter: null,
        ms: performance.now() - started,
        error: (err as Error).message,
      };
    }
  };
}

/** Starts the killed cluster again; the first tries fail while orphaned backends still hold its shared memory. */
async function restart(cluster: LocalCluster): Promise<LocalCluster> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await startLocalCluster({
        dir: cluster.dir,
        port: cluster.port,
        secretFile: join(dirname(cluster.dir), 'superuser.secret'),
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

describe('the service when PostgreSQL is killed under load', () => {
  it(`survives ${KILLS} SIGKILLs of the postmaster: fails fast, recovers alone, loses no acknowledged write, leaves nothing half-made`, async () => {
    const cluster = await startThrowawayCluster();
    const dataDir = mkdtempSync(join(tmpdir(), 'tf-chaos-'));
    let server: RunningCli | undefined;
    const setup = openPool(cluster.superuserUrl('postgres'), { max: 1, name: 'chaos-setup' });
    try {
      // Throwaway clusters acknowledge commits before their WAL is written; this test
      // checks durability of acknowledged writes, so it needs the real setting.
      await setup.unsafe('alter system set synchronous_commit = on');
      await setup`select pg_reload_conf()`;
      await setup.unsafe('create database tenantforge');
      await setup.end();

      const adminToken = randomBytes(18).toString('base64url');
      const port = await freePort();
      server = startCli(['serve'], {
        DATABASE_URL: cluster.superuserUrl('tenantforge'),
        TENANTFORGE_DATA_DIR: dataDir,
        PORT: String(port),
        TENANTFORGE_ADMIN_TOKEN: adminToken,
        TENANTFORGE_SCHEMA_SECRET: randomBytes(18).toString('base64url'),
        TENANTFORGE_APP_PASSWORD: randomBytes(18).toString('base64url'),
        TENANTFORGE_VALIDATOR_INTERVAL: '2s',
        TENANTFORGE_PURGE_INTERVAL: '1s',
        TENANTFORGE_POOL_MAX: '6',
        LOG_LEVEL: 'info',
      });
      await server.waitForLog(/tenantforge is serving/);
      const call = client(`http://127.0.0.1:${port}`);
      const admin = { token: adminToken };

      // Tenants for the data-plane load, made before the first kill.
      const apps: { id: string; key: string }[] = [];
      for (let i = 0; i < 3; i++) {
        const t = await call('POST', '/v1/tenants', { ...admin, json: { slug: `chaos-app-${i}`, name: `App ${i}` } });
        expect(t.status).toBe(201);
        const k = await call('POST', `/v1/tenants/${t.body!.id}/keys`, { ...admin, json: { name: 'load' } });
        expect(k.status).toBe(201);
        apps.push({ id: t.body!.id as string, key: k.body!.key as string });
      }

      const acked = { tenants: [] as { id: string; slug: string }[], portfolios: [] as { key: string; id: string }[] };
      const wrong: string[] = [];
      let cutOffThenRetried = 0;
      const checkFailure = (what: string, a: Answer) => {
        if (a.status === 0) return; // the connection itself was cut: fine, nothing was acknowledged
        if (
          a.status !== 503 ||
          a.body?.code !== 'database_unavailable' ||
          !a.contentType.startsWith('application/problem+json') ||
          !a.retryAfter
        ) {
          wrong.push(`${what}: ${a.status} ${a.contentType} ${JSON.stringify(a.body)}`);
        }
        if (a.ms > FAIL_FAST_LIMIT_MS) wrong.push(`${what}: failed only after ${Math.round(a.ms)} ms`);
      };

      let loading = true;
      // A well-behaved client: a provisioning that fails is retried with the same
      // Idempotency-Key and body until it is acknowledged, whether or not the first
      // try committed before the crash.
      const provisioner = async (worker: number) => {
        for (let i = 0; loading; i++) {
          const slug = `chaos-${worker}-${i}`;
          const key = `${slug}-${randomBytes(4).toString('hex')}`;
          for (let attempt = 1; ; attempt++) {
            const a = await call('POST', '/v1/tenants', {
              ...admin,
              json: { slug, name: `Chaos ${worker}.${i}` },
              headers: { 'idempotency-key': key },
            });
            if (a.status === 201) {
              acked.tenants.push({ id: a.body!.id as string, slug });
              if (attempt > 1) cutOffThenRetried++;
              break;
            }
            checkFailure(`POST /v1/tenants ${slug}`, a);
            await sleep(300);
          }
        }
      };
      const trader = async (worker: number) => {
        for (let i = 0; loading; i++) {
          const app = apps[(worker + i) % apps.length]!;
          const a = await call('POST', '/v1/portfolios', { token: app.key, json: { name: `p-${worker}-${i}` } });
          if (a.status === 201) acked.portfolios.push({ key: app.key, id: a.body!.id as string });
          else {
            checkFailure('POST /v1/portfolios', a);
            await sleep(300);
          }
        }
      };
      const workers = [0, 1, 2].map(provisioner).concat([0, 1, 2].map(trader));

      /** Tenants the service has warmed on its runtime connections (db/lane-warming.ts). */
      const warmedSoFar = async () => {
        const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });
        const line = /^tenantforge_runtime_warmed_tenants_total\{outcome="warmed"\} (\d+)$/m.exec(await res.text());
        return Number(line?.[1] ?? Number.NaN);
      };
      const outages: { downMs: number; restartMs: number; recoveredMs: number }[] = [];
      for (let kill = 1; kill <= KILLS; kill++) {
        // Load is flowing: new acknowledgements since the last recovery.
        const before = acked.tenants.length + acked.portfolios.length;
        const flowing = Date.now() + 20_000;
        while (acked.tenants.length + acked.portfolios.length < before + 15 && Date.now() < flowing) await sleep(50);
        expect(acked.tenants.length + acked.portfolios.length, `load before kill ${kill}`).toBeGreaterThanOrEqual(
          before + 15,
        );

        const activeAtKill = apps.length + acked.tenants.length;
        const warmedAtKill = await warmedSoFar();
        const pid = postmasterPid(cluster.dir)!;
        process.kill(pid, 'SIGKILL');
        const killedAt = Date.now();
        await sleep(1_000);

        // Down: the process answers, says it is not ready, and fails requests fast.
        expect((await call('GET', '/healthz')).status).toBe(200);
        const ready = await call('GET', '/readyz', admin);
        expect(ready.status).toBe(503);
        expect(String((ready.body?.problems as string[])?.[0])).toMatch(/database/);
        const down = await call('GET', '/v1/tenants?limit=1', admin);
        checkFailure(`GET /v1/tenants during outage ${kill}`, down);
        expect(down.status).toBe(503);

        const restartStarted = Date.now();
        await restart(cluster);
        const upAt = Date.now();
        let serving: Answer;
        do serving = await call('GET', '/v1/tenants?limit=1', admin);
        while (serving.status !== 200 && Date.now() - upAt < RECOVERY_LIMIT_MS && (await sleep(100).then(() => true)));
        expect(serving.status, `serving again after kill ${kill}: ${JSON.stringify(serving.body)}`).toBe(200);
        // Every backend is new: the service opens every tenant's tables on them again (each
        // tenant made since is warmed once more, as it was created).
        await expect
          .poll(
            async () => (await warmedSoFar()) - warmedAtKill - (apps.length + acked.tenants.length - activeAtKill),
            { timeout: 20_000, interval: 200 },
          )
          .toBeGreaterThanOrEqual(activeAtKill);
        outages.push({ downMs: upAt - killedAt, restartMs: upAt - restartStarted, recoveredMs: Date.now() - upAt });
        expect(server.child.exitCode, 'the service process is alive').toBeNull();
      }

      // Let the load run once more on the recovered database, then stop it.
      await sleep(1_000);
      loading = false;
      await Promise.all(workers);
      console.log(
        `chaos: ${KILLS} kills, outages ${JSON.stringify(outages)}, acknowledged ${acked.tenants.length} tenants and ${acked.portfolios.length} portfolios, ${cutOffThenRetried} provisionings cut off and retried`,
      );

      expect(server.child.exitCode).toBeNull();
      expect(server.output()).not.toMatch(/TypeError|uncaught|unhandled/i);
      expect(wrong).toEqual([]);
      expect((await call('GET', '/readyz')).status).toBe(200);

      // Every provisioning the crash cut off was retried (same key and body) until it was
      // acknowledged; each slug has exactly one tenant, the one acknowledged.
      expect(cutOffThenRetried).toBeGreaterThan(0);
      const db = openPool(cluster.superuserUrl('tenantforge'), { max: 2, name: 'chaos-check' });
      try {
        const rows = await db<
          { slug: string; id: string }[]
        >`select slug, id from platform.tenants where slug like 'chaos-%' and slug not like 'chaos-app-%'`;
        const bySlug = new Map<string, string[]>();
        for (const r of rows) bySlug.set(r.slug, [...(bySlug.get(r.slug) ?? []), r.id]);
        expect([...bySlug.values()].filter((ids) => ids.length !== 1)).toEqual([]);
        for (const t of acked.tenants) expect(bySlug.get(t.slug), `tenant ${t.slug}`).toEqual([t.id]);
        expect(rows.length).toBe(acked.tenants.length);

        // No acknowledged write was lost.
        const registry = await db<{ id: string }[]>`select id from platform.tenants where status = 'active'`;
        const ids = new Set(registry.map((r) => r.id));
        expect(acked.tenants.filter((t) => !ids.has(t.id))).toEqual([]);
        for (const p of acked.portfolios) {
          const got = await call('GET', `/v1/portfolios/${p.id}`, { token: p.key });
          expect(
            got.status,
            `acknowledged portfolio ${p.id}: ${JSON.stringify(got.body)} ${got.error ?? ''} after ${Math.round(got.ms)} ms`,
          ).toBe(200);
        }

        // Nothing half-made: no tenant schema or role without its registry row, and the validator is clean.
        const orphans = await db<{ nspname: string }[]>`
          select nspname from pg_namespace n where nspname like 'tenant\\_%'
            and not exists (select 1 from platform.tenants t where t.schema_name = n.nspname)`;
        expect(orphans).toEqual([]);
        const report = await validate(db);
        expect(report.violations).toEqual([]);
        expect(report.outcome).toBe('clean');
      } finally {
        await db.end();
      }

      // The background jobs noticed the outage, backed off, and resumed.
      const log = server.output();
      expect(log).toMatch(/retention purge: database unavailable; retrying with backoff/);
      expect(log).toMatch(/retention purge: database is back/);

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    } catch (err) {
      // The service's own account of what happened, for whoever reads the failure.
      if (server)
        console.log(
          `service output (tail):\n${server
            .output()
            .split('\n')
            .filter((l) => !l.includes('"msg":"request"'))
            .slice(-40)
            .join('\n')}`,
        );
      throw err;
    } finally {
      server?.child.kill('SIGKILL');
      await setup.end().catch(() => {});
      await cluster.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
