/**
 * What a bench runs against: a fresh database on a throwaway local cluster (or on the
 * server DATABASE_URL names), the platform started on it in this process (for library-
 * level measurements and baselines), and the HTTP service in a child process on a
 * loopback port, exactly as `tenantforge serve` runs it: the load generator and the
 * server must not share one event loop. The throwaway cluster is durable (fsync,
 * synchronous_commit and full_page_writes on, unlike the test clusters): commits cost
 * what they cost in production. `server` records the settings a result depends on.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, SETTING_NAMES } from '../../src/config.ts';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { freePort, startThrowawayCluster, type LocalCluster } from '../../src/runtime/local-cluster.ts';
import { projectRoot } from '../../src/paths.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform, type Platform } from '../../src/platform.ts';

export type BenchEnvironment = {
  platform: Platform;
  /** Superuser pool on the bench database. */
  su: Sql;
  /** The bench database as the superuser, for a pool of a scenario's own (bench/lib/seeding.ts). */
  superuserUrl: string;
  baseUrl: string;
  adminToken: string;
  /**
   * Another `tenantforge serve` on the same database, with settings changed (e.g. a warm
   * pool): for a measurement the main service must not be configured for.
   */
  startService(overrides: Record<string, string>): Promise<{ baseUrl: string; pid: number; stop(): Promise<void> }>;
  /** Server version, extension versions and the durability/memory settings of this run. */
  server: ServerFacts;
  /** Settings the run gives every service it starts (the runner's `--service`). */
  serviceSettings: Record<string, string>;
  close(): Promise<void>;
};

export type ServerFacts = { version: string; extensions: Record<string, string>; settings: Record<string, string> };

const RECORDED_SETTINGS = [
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'shared_buffers',
  'work_mem',
  'max_connections',
  'jit',
  'wal_level',
];

/** What a result needs to be compared with another: versions and the settings that move timings. */
export async function serverFacts(sql: Sql): Promise<ServerFacts> {
  const [{ version }] = (await sql`select current_setting('server_version') as version`) as unknown as [
    { version: string },
  ];
  const extensions = await sql<
    { extname: string; extversion: string }[]
  >`select extname, extversion from pg_extension order by extname`;
  const settings = await sql<{ name: string; setting: string }[]>`
    select name, current_setting(name) as setting from pg_settings where name in ${sql(RECORDED_SETTINGS)} order by name`;
  return {
    version,
    extensions: Object.fromEntries(extensions.map((e) => [e.extname, e.extversion])),
    settings: Object.fromEntries(settings.map((s) => [s.name, s.setting])),
  };
}

/** What the environment sets itself: a run's `--service` may not change them. */
const ENVIRONMENT_SETTINGS = [
  'TENANTFORGE_DATA_DIR',
  'TENANTFORGE_POOL_MAX',
  'TENANTFORGE_ADMIN_TOKEN',
  'TENANTFORGE_SCHEMA_SECRET',
  'TENANTFORGE_APP_PASSWORD',
  'TENANTFORGE_WARM_POOL',
];

/**
 * The runner's `--service NAME=value` arguments as settings, each a service setting the
 * environment does not set itself, and their values valid as the service would read
 * them. Throws a usage message otherwise.
 */
export function serviceSettingsFrom(given: readonly string[]): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const argument of given) {
    const [, name, value] = /^(TENANTFORGE_[A-Z_]+)=(.*)$/.exec(argument) ?? [];
    if (!name || value === undefined || !SETTING_NAMES.includes(name) || ENVIRONMENT_SETTINGS.includes(name))
      throw new Error(
        `--service takes TENANTFORGE_<SETTING>=<value>, a service setting to measure (see the README's settings; not one the bench sets itself: ${ENVIRONMENT_SETTINGS.join(', ')}); got ${JSON.stringify(argument)}`,
      );
    settings[name] = value;
  }
  try {
    loadConfig(settings);
  } catch (err) {
    throw new Error(`--service: ${(err as Error).message}`);
  }
  return settings;
}

export async function startBenchEnvironment(
  options: { poolMax?: number; serviceSettings?: Record<string, string> } = {},
): Promise<BenchEnvironment> {
  const serviceSettings = options.serviceSettings ?? {};
  let cluster: LocalCluster | undefined;
  const serverUrl =
    process.env.DATABASE_URL ?? (cluster = await startThrowawayCluster({ durable: true })).superuserUrl('postgres');
  const database = `tf_bench_${randomBytes(4).toString('hex')}`;
  const maintenance = openPool(serverUrl, { max: 1, name: 'bench-admin' });
  await maintenance.unsafe(`create database ${database}`);
  // Owner baselines run bare statements that call extension functions and operators.
  await maintenance.unsafe(`alter database ${database} set search_path = "$user", public, extensions`);
  await maintenance.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;

  const dataDir = mkdtempSync(join(tmpdir(), 'tf-bench-'));
  const port = await freePort();
  const env = {
    DATABASE_URL: url.toString(),
    TENANTFORGE_DATA_DIR: dataDir,
    TENANTFORGE_POOL_MAX: String(options.poolMax ?? 10),
    TENANTFORGE_ADMIN_TOKEN: randomBytes(24).toString('base64url'),
    TENANTFORGE_SCHEMA_SECRET: randomBytes(24).toString('base64url'),
    // The runtime lane roles belong to the whole cluster: on a shared server, keep the password they have.
    TENANTFORGE_APP_PASSWORD: process.env.TENANTFORGE_APP_PASSWORD ?? randomBytes(24).toString('base64url'),
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // Scenarios measure the cold path; the provisioning scenario fills the pool itself where it measures claims.
    TENANTFORGE_WARM_POOL: '0',
    ...serviceSettings,
  };
  // The bench's own instance seeds and measures library calls: it keeps no tenant's
  // tables open ahead of requests (the services it starts do, as users run them).
  const platform = await startPlatform(loadConfig({ ...env, LOG_LEVEL: 'silent' }), createLogger('silent'), {
    runPurgeSweeper: false,
    warmConnections: false,
  });
  const service = await spawnService(env);
  const su = openPool(url.toString(), { max: 4, name: 'bench-su' });
  const server = await serverFacts(su);

  return {
    platform,
    su,
    superuserUrl: url.toString(),
    baseUrl: `http://127.0.0.1:${port}`,
    adminToken: platform.adminToken,
    server,
    serviceSettings,
    startService: async (overrides) => {
      const extraPort = await freePort();
      const extra = await spawnService({ ...env, PORT: String(extraPort), ...overrides });
      return { baseUrl: `http://127.0.0.1:${extraPort}`, pid: extra.pid!, stop: () => stopService(extra) };
    },
    close: async () => {
      await stopService(service);
      await su.end();
      await platform.close();
      if (cluster) await cluster.destroy();
      else {
        const admin = openPool(serverUrl, { max: 1 });
        await admin.unsafe(`drop database if exists ${database} with (force)`);
        await admin.end();
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function spawnService(env: Record<string, string>): Promise<ChildProcess> {
  const service = spawn(join(projectRoot, 'bin', 'tenantforge'), ['serve'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    // Its log (warnings and errors) goes to the bench's stderr: a failed request says why.
    stdio: ['ignore', process.stderr, 'inherit'],
  });
  await waitUntilReady(`http://127.0.0.1:${env.PORT}/readyz`, service);
  return service;
}

async function stopService(service: ChildProcess): Promise<void> {
  service.kill('SIGTERM');
  await new Promise((r) => (service.exitCode === null ? service.once('exit', r) : r(null)));
}

async function waitUntilReady(url: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null)
      throw new Error(`the service exited with code ${server.exitCode} before it was ready`);
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the service was not ready within 60 s');
}
