/**
 * Per-test-file databases and platforms on the run's PostgreSQL server.
 *
 * @example
 * const t = await testPlatform();   // fresh database, migrated, services built
 * const res = await t.http('/v1/tenants', { method: 'POST', json: { slug: 'acme', name: 'Acme' } });
 * await t.close();                  // drops the database and the tenant roles it made
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../../src/config.ts';
import { openPool, type Sql } from '../../src/db/connect.ts';
import { createApp } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform, type Platform, type StartOptions } from '../../src/platform.ts';
import { scratchDir } from './scratch.ts';

export function databaseUrlFor(database: string): string {
  const u = new URL(inject('databaseUrl'));
  u.pathname = `/${database}`;
  return u.toString();
}

export type TestDatabase = { name: string; url: string; drop(): Promise<void> };

/** A new, empty database (extensions not yet created). */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `tf_test_${randomBytes(6).toString('hex')}`;
  const admin = openPool(inject('databaseUrl'), { max: 1, name: 'test-admin' });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = databaseUrlFor(name);
  return {
    name,
    url,
    drop: async () => {
      const db = openPool(url, { max: 1, name: 'test-cleanup' });
      const roles = await db<{ role_name: string }[]>`
        select role_name from platform.tenants where to_regclass('platform.tenants') is not null`.catch(() => []);
      await db.end();
      const server = openPool(inject('databaseUrl'), { max: 1, name: 'test-admin' });
      await server.unsafe(`drop database if exists ${name} with (force)`);
      for (const { role_name } of roles) await server.unsafe(`drop role if exists "${role_name}"`);
      await server.end();
    },
  };
}

export type TestPlatform = Platform & {
  db: TestDatabase;
  /** Superuser pool on the test database, for catalog assertions. */
  su: Sql;
  http(
    path: string,
    init?: { method?: string; json?: unknown; body?: string; headers?: Record<string, string>; token?: string | null },
  ): Promise<Response>;
};

export function testConfig(databaseUrl: string, overrides: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: databaseUrl,
    TENANTFORGE_DATA_DIR: scratchDir('tf-data-'),
    TENANTFORGE_APP_PASSWORD: inject('appPassword'),
    TENANTFORGE_ADMIN_TOKEN: 'test-admin-token-0123456789',
    TENANTFORGE_SCHEMA_SECRET: randomBytes(16).toString('hex'),
    LOG_LEVEL: 'silent',
    // Tests that want a warm pool ask for one: a refill would add tenants behind their counts.
    TENANTFORGE_WARM_POOL: '0',
    ...overrides,
  });
}

export async function testPlatform(
  options: StartOptions & { env?: Record<string, string> } = {},
): Promise<TestPlatform> {
  const db = await freshDatabase();
  const config = testConfig(db.url, options.env);
  // Background backup jobs stay off unless a test turns them on: tests run backups themselves.
  const platform = await startPlatform(config, createLogger(config.logLevel), {
    runPurgeSweeper: false,
    runBackupWorker: false,
    runBackupScheduler: false,
    ...options,
  });
  const app = createApp(platform);
  const su = openPool(db.url, { max: 4, name: 'test-su' });
  return {
    ...platform,
    db,
    su,
    http: (path, init = {}) => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.token !== null) headers.authorization = `Bearer ${init.token ?? platform.adminToken}`;
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers['content-type'] ??= 'application/json';
      }
      return Promise.resolve(app.request(path, { method: init.method ?? 'GET', headers, body }));
    },
    close: async () => {
      await su.end();
      await platform.close();
      await db.drop();
    },
  };
}
