import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openPool } from '../../src/db/connect.ts';
import { runCli } from '../support/cli.ts';
import { backupEnv } from '../support/object-store.ts';
import { freshDatabase, type TestDatabase } from '../support/platform.ts';
import { testPrefix } from './support.ts';
import { scratchDir } from '../support/scratch.ts';

let db: TestDatabase;
let env: Record<string, string>;
let backupId: string;
beforeAll(async () => {
  db = await freshDatabase();
  const s3 = inject('s3');
  env = {
    DATABASE_URL: db.url,
    TENANTFORGE_APP_PASSWORD: inject('appPassword'),
    TENANTFORGE_DATA_DIR: scratchDir('tf-cli-'),
    TENANTFORGE_SCHEMA_SECRET: 'cli-test-schema-secret-0123',
    TENANTFORGE_VALIDATOR_INTERVAL: 'off',
    TENANTFORGE_BACKUP_SSE: s3.source === 's3rver' ? 'off' : 'AES256',
    ...backupEnv(s3, testPrefix('cli')),
  };
});
afterAll(() => db?.drop());

describe('tenantforge backups and restore (command line)', () => {
  it('backs up with --wait, lists, and restores into a new tenant', async () => {
    expect((await runCli(['tenants', 'create', '--slug', 'desk', '--name', 'Desk', '--plan', 'pro'], env)).code).toBe(
      0,
    );
    const created = await runCli(['backups', 'create', 'desk', '--wait', '--json'], env, 60_000);
    expect(created.code, created.stderr).toBe(0);
    const backup = JSON.parse(created.stdout);
    backupId = backup.id;
    expect(backup).toMatchObject({ status: 'succeeded', tables: { portfolios: 0, trades: 0 } });

    const listed = await runCli(['backups', 'list', 'desk'], env);
    expect(listed.stdout).toContain(backup.id);
    expect(listed.stdout).toContain('succeeded');

    const restored = await runCli(['restore', backup.id, '--into', 'desk-copy', '--json'], env, 60_000);
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({
      slug: 'desk-copy',
      status: 'active',
      restoredRows: { portfolios: 0 },
    });
  });

  it('restores in place only with --confirm <slug>', async () => {
    const missing = await runCli(['restore', backupId, '--in-place', 'desk'], env);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/add --confirm <its slug>/);
    const wrong = await runCli(['restore', backupId, '--in-place', 'desk', '--confirm', 'desk-copy'], env, 60_000);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/--confirm desk.*\[restore_not_confirmed\]/);
    const other = await runCli(['restore', backupId, '--in-place', 'desk-copy', '--confirm', 'desk-copy'], env, 60_000);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/--allow-other-tenant.*\[backup_tenant_mismatch\]/);
    const done = await runCli(['restore', backupId, '--in-place', 'desk', '--confirm', 'desk', '--json'], env, 60_000);
    expect(done.code, done.stderr).toBe(0);
    expect(JSON.parse(done.stdout)).toMatchObject({
      slug: 'desk',
      restoredFrom: backupId,
      restoredRows: { portfolios: 0 },
    });
  });

  it.each([
    [
      ['restore', '5b0c2a3e-9a53-4c1e-9a7e-2b9b6b7e0f11', '--into', 'nope'],
      1,
      /Backup not found|no backup .*\[backup_not_found\]/,
    ],
    [
      ['restore', '5b0c2a3e-9a53-4c1e-9a7e-2b9b6b7e0f11'],
      2,
      /restore needs --into <new-slug> \(a new tenant\) or --in-place <tenant>/,
    ],
    [['backups', 'create'], 2, /needs a <tenant>/],
    [['backups', 'create', 'no-such-tenant'], 1, /\[tenant_not_found\]/],
    [['backups', 'coverage', '--limit', '0'], 2, /--limit must be a whole number of at least 1/],
  ])('%j exits %i with a message that says what to do', async (args, code, message) => {
    const res = await runCli(args, env);
    expect(res.code).toBe(code);
    expect(res.stderr).toMatch(message);
  });

  it('backups coverage: exit 0 with no tenant overdue, 1 naming the overdue ones', async () => {
    const clean = await runCli(['backups', 'coverage'], env);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/tenants on a backup schedule, 0 overdue/);
    expect(
      (await runCli(['tenants', 'create', '--slug', 'late', '--name', 'Late', '--plan', 'enterprise'], env)).code,
    ).toBe(0);
    const su = openPool(db.url, { max: 1, name: 'test-su' });
    try {
      await su`update platform.tenants set created_at = now() - interval '3 hours' where slug = 'late'`;
    } finally {
      await su.end();
    }
    const overdue = await runCli(['backups', 'coverage'], env);
    expect(overdue.code).toBe(1);
    expect(overdue.stdout).toMatch(/1 overdue/);
    expect(overdue.stdout).toMatch(/overdue late \(.*enterprise\): last backup never, 3\.0 h ago/);
    const json = await runCli(['backups', 'coverage', '--json'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({
      overdueTenants: 1,
      overdue: [{ slug: 'late', lastBackupAt: null }],
    });
  });

  it('says how to configure backups when they are not', async () => {
    const { TENANTFORGE_BACKUP_URL: _, ...without } = env;
    const res = await runCli(['backups', 'create', 'desk'], without);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/set TENANTFORGE_BACKUP_URL=s3:\/\/<bucket>.*\[backups_not_configured\]/);
    // A coverage check fails too: nothing is being backed up.
    const coverage = await runCli(['backups', 'coverage'], without);
    expect(coverage.code).toBe(1);
    expect(coverage.stderr).toMatch(
      /backups are not configured, so no tenant is being backed up \(set TENANTFORGE_BACKUP_URL=/,
    );
  });
});
