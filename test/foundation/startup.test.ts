import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readMigrationFiles } from 'drizzle-orm/migrator';
import { openPool } from '../../src/db/connect.ts';
import { CONTROL_PLANE_FOLDER } from '../../src/migrations/control-plane.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { checkReadiness } from '../../src/health.ts';
import { createLogger } from '../../src/log.ts';
import { startPlatform } from '../../src/platform.ts';
import { runCli } from '../support/cli.ts';
import { databaseUrlFor, freshDatabase, testConfig, testPlatform, type TestDatabase } from '../support/platform.ts';

const noStack = (text: string) => expect(text).not.toMatch(/^\s+at /m);

// These go through `migrate`, whose exit code 2 means "could not run".
describe('start-up failures', () => {
  it('names the host and the cause when nothing listens, within 10 s, without a stack trace', async () => {
    const port = await freePort();
    const result = await runCli(['migrate'], { DATABASE_URL: `postgres://someone:pw@127.0.0.1:${port}/db` });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`cannot connect to PostgreSQL at someone@127.0.0.1:${port}/db: connection refused`);
    expect(result.ms).toBeLessThan(10_000);
    noStack(result.stderr);
  });

  it('says the password is wrong, and does not print it', async () => {
    const db = await freshDatabase();
    try {
      const url = new URL(db.url);
      url.password = 'definitely-wrong-password';
      const result = await runCli(['migrate'], { DATABASE_URL: url.toString() });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(
        /cannot connect to PostgreSQL at postgres@127\.0\.0\.1:\d+\/tf_test_\w+: password authentication failed/,
      );
      expect(result.stderr).not.toContain('definitely-wrong-password');
      noStack(result.stderr);
    } finally {
      await db.drop();
    }
  });

  it('names the variable, the problem and the accepted form for an invalid setting', async () => {
    const result = await runCli(['migrate'], { PORT: 'eighty' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/PORT="eighty": .*number/i);
    noStack(result.stderr);
  });

  it('refuses a database without the extensions, naming each and how to get it', async () => {
    const db = await freshDatabase();
    const role = `tf_test_plain_${randomBytes(4).toString('hex')}`;
    const su = openPool(db.url, { max: 1 });
    await su.unsafe(`create role ${role} login password 'plain-password-123'`);
    try {
      const url = new URL(db.url);
      url.username = role;
      url.password = 'plain-password-123';
      const result = await runCli(['migrate'], {
        DATABASE_URL: url.toString(),
        TENANTFORGE_APP_PASSWORD: 'x'.repeat(16),
      });
      expect(result.code).toBe(2);
      for (const ext of ['timescaledb', 'vector', 'pgcrypto']) {
        expect(result.stderr).toContain(
          `extension ${ext} is missing (a superuser runs: create schema if not exists extensions; create extension ${ext}`,
        );
      }
      noStack(result.stderr);
    } finally {
      await su.end();
      await db.drop();
      const server = openPool(databaseUrlFor('postgres'), { max: 1 });
      await server.unsafe(`drop role if exists ${role}`);
      await server.end();
    }
  });
});

describe('readiness', () => {
  it('reports the extension versions and current migrations to the admin, then a missing extension as 503', async () => {
    const t = await testPlatform();
    try {
      const anonymous = await t.http('/readyz', { token: null });
      expect(anonymous.status).toBe(200);
      // Versions tell an attacker which known bug to aim at: an anonymous probe gets the verdict only.
      expect(await anonymous.json()).toEqual({ status: 'ready' });
      expect(await (await t.http('/readyz', { token: 'not-the-admin-token-at-all' })).json()).toEqual({
        status: 'ready',
      });

      const ready = await t.http('/readyz');
      const body = await ready.json();
      expect(ready.status).toBe(200);
      expect(body.status).toBe('ready');
      expect(body.extensions.timescaledb).toMatch(/^2\.\d+\.\d+/);
      expect(body.extensions.vector).toMatch(/^0\.\d+\.\d+/);
      expect(body.migrations.controlPlanePending).toEqual([]);
      expect(body.migrations.templateVersion).toBe(body.migrations.templateExpected);

      await t.su`drop extension pgcrypto`;
      expect(await (await t.http('/readyz', { token: null })).json()).toEqual({ status: 'unready' });
      const unready = await t.http('/readyz');
      expect(unready.status).toBe(503);
      const problems = (await unready.json()).problems;
      expect(problems).toEqual(['extension pgcrypto is not installed']);
    } finally {
      await t.close();
    }
  });

  it('reports an unreachable database as not ready, quickly', async () => {
    const sql = openPool(`postgres://x:y@127.0.0.1:${await freePort()}/none`, { max: 1 });
    const readiness = await checkReadiness({ control: sql });
    expect(readiness.status).toBe('unready');
    expect(readiness.database.reachable).toBe(false);
    expect(readiness.problems[0]).toMatch(/^database: /);
    await sql.end();
  });
});

describe('concurrent start-up', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(() => db?.drop());

  it('applies every migration exactly once when four instances start together', async () => {
    const config = testConfig(db.url);
    const log = createLogger('silent');
    const platforms = await Promise.all(
      Array.from({ length: 4 }, () => startPlatform(config, log, { runPurgeSweeper: false })),
    );
    try {
      const su = platforms[0]!.control;
      const files = readMigrationFiles({ migrationsFolder: CONTROL_PLANE_FOLDER }).length;
      const [control] =
        await su`select count(*)::int as n, count(distinct created_at)::int as distinct from drizzle.__drizzle_migrations`;
      expect(control).toEqual({ n: files, distinct: files });
      const template = await su`select name from platform.template_migrations`;
      expect(template.map((r) => r.name)).toEqual(['0001_trading_and_vectors']);
      const [tables] = await su`select count(*)::int as n from pg_tables where schemaname = 'tf_template'`;
      expect(tables!.n).toBe(7);
    } finally {
      await Promise.all(platforms.map((p) => p.close()));
    }
  });
});
