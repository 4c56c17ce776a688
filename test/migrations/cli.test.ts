/**
 * `tenantforge migrate` in a child process, as an operator runs it: killed with SIGKILL
 * mid-run it leaves every tenant on exactly one version and a rerun finishes; exit 0
 * when all are current, 1 naming the tenants that failed, 2 when it could not run.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RUN_LOCK_KEY } from '../../src/migrations/runner.ts';
import { runCli, startCli } from '../support/cli.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { addMigration, sqlCopy, tenantWithChunks, type SeededTenant } from './support.ts';

let t: TestPlatform;
let dir: string;
let env: Record<string, string>;
const tenants: SeededTenant[] = [];
const TENANTS = 24;

beforeAll(async () => {
  dir = sqlCopy();
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off', TENANTFORGE_SQL_DIR: dir } });
  for (let i = 0; i < TENANTS; i++) tenants.push(await tenantWithChunks(t, `cli-mig-${i}`, i % 4 === 0 ? 3 : 0));
  env = {
    DATABASE_URL: t.db.url,
    TENANTFORGE_APP_PASSWORD: inject('appPassword'),
    TENANTFORGE_DATA_DIR: t.config.dataDir,
    TENANTFORGE_SCHEMA_SECRET: t.config.schemaSecret!,
    TENANTFORGE_ADMIN_TOKEN: t.adminToken,
    TENANTFORGE_VALIDATOR_INTERVAL: 'off',
    TENANTFORGE_SQL_DIR: dir,
    TENANTFORGE_MIGRATE_CONCURRENCY: '2',
    TENANTFORGE_MIGRATE_LOCK_TIMEOUT: '100ms',
    TENANTFORGE_MIGRATE_RETRIES: '1',
  };
}, 120_000);
afterAll(() => t?.close());

/** Each tenant's version, ledger and whether it has `column` on trades: the three must agree. */
async function states(migration: string, column: string) {
  return t.su<{ slug: string; at_new: boolean; in_ledger: boolean; has_column: boolean }[]>`
    select t.slug, t.template_version like ${migration + '@%'} as at_new,
           exists (select 1 from platform.tenant_migrations m where m.tenant_id = t.id and m.name = ${migration}) as in_ledger,
           exists (select 1 from pg_attribute a where a.attrelid = format('%I.trades', t.schema_name)::regclass
                   and a.attname = ${column} and not a.attisdropped) as has_column
    from platform.tenants t where t.status <> 'purged' order by t.slug`;
}

describe('tenantforge migrate (command line)', () => {
  it('SIGKILLed mid-run leaves every tenant on exactly one version; a rerun finishes', async () => {
    // The per-tenant sleep makes the run last long enough to be killed in the middle.
    addMigration(
      dir,
      '0002_trade_venue',
      'alter table trades add column venue text;\n-- tenantforge:per-tenant\nselect pg_sleep(0.15);\n',
    );
    const child = startCli(['migrate'], env);
    let migrated = 0;
    for (let i = 0; i < 400 && migrated < 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
      migrated = (await states('0002_trade_venue', 'venue')).filter((s) => s.at_new).length;
    }
    expect(migrated).toBeGreaterThanOrEqual(4);
    child.child.kill('SIGKILL');
    await child.exited;

    const after = await states('0002_trade_venue', 'venue');
    const done = after.filter((s) => s.at_new).length;
    expect(done).toBeLessThan(TENANTS);
    for (const s of after) expect([s.slug, s.in_ledger, s.has_column]).toEqual([s.slug, s.at_new, s.at_new]);
    const [run] = await t.su`select status from platform.migration_runs order by id desc limit 1`;
    expect(run!.status).toBe('running');

    const rerun = await runCli(['migrate', '--json'], env, 60_000);
    expect(rerun.code, rerun.stderr).toBe(0);
    const summary = JSON.parse(rerun.stdout);
    expect(summary).toMatchObject({ status: 'succeeded', failed: 0 });
    expect(summary.migrated).toBe(TENANTS - done);
    expect((await states('0002_trade_venue', 'venue')).every((s) => s.at_new && s.in_ledger && s.has_column)).toBe(
      true,
    );
    const runs = await t.su`select status from platform.migration_runs order by id`;
    expect(runs.map((r) => r.status)).toEqual(['interrupted', 'succeeded']);
    // Not a terminal: plain progress lines on stderr.
    expect(rerun.stderr).toMatch(/migrate: \d+\/\d+ tenants, 0 failed, [\d.]+ tenants\/s, ETA/);

    const noop = await runCli(['migrate'], env);
    expect(noop.code).toBe(0);
    expect(noop.stdout).toMatch(/every tenant is at 0002_trade_venue@\w+/);
  });

  it('exits 1 naming the tenant that failed, which the next run retries alone', async () => {
    addMigration(dir, '0003_order_venue', 'alter table orders add column venue text;\n');
    const busy = tenants[5]!;
    const holder = await t.su.reserve();
    let failed;
    try {
      await holder`begin`;
      await holder.unsafe(`lock table "${busy.schema}".orders in access share mode`);
      failed = await runCli(['migrate'], env, 60_000);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stdout).toContain(`failed: ${busy.id} ${busy.schema} 0003_order_venue after 2 attempt(s)`);
    expect(failed.stdout).toMatch(/1 failed/);
    const retried = await runCli(['migrate', '--json'], env, 60_000);
    expect(retried.code).toBe(0);
    expect(JSON.parse(retried.stdout)).toMatchObject({ status: 'succeeded', total: 1, migrated: 1 });
  });

  it('exits 2 when another run is in progress', async () => {
    const holder = await t.su.reserve();
    try {
      await holder`select pg_advisory_lock(hashtext(${RUN_LOCK_KEY}))`;
      const res = await runCli(['migrate'], env);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(/another tenant migration run is in progress/);
    } finally {
      await holder`select pg_advisory_unlock(hashtext(${RUN_LOCK_KEY}))`;
      holder.release();
    }
  });

  it('exits 2, touching nothing, for an edited applied file or a file that does not run', async () => {
    const path = `${dir}/0003_order_venue.sql`;
    const original = readFileSync(path, 'utf8');
    const versions = await t.su`select id, template_version from platform.tenants order by id`;
    writeFileSync(path, original + '-- edited\n');
    try {
      const res = await runCli(['migrate'], env);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        /0003_order_venue\.sql was edited after it was applied; revert it and add a new file instead/,
      );
    } finally {
      writeFileSync(path, original);
    }
    const broken = addMigration(
      dir,
      '0004_broken',
      'alter table trades add column ok text;\nalter table nosuch add column x text;\n',
    );
    try {
      const res = await runCli(['migrate'], env);
      expect(res.code).toBe(2);
      expect(res.stderr).toMatch(
        /0004_broken\.sql failed on the template: relation "nosuch" does not exist; nothing was applied, no tenant was touched/,
      );
    } finally {
      const { rmSync } = await import('node:fs');
      rmSync(broken);
    }
    expect(await t.su`select id, template_version from platform.tenants order by id`).toEqual(versions);
  });

  it('with --tenant migrates only the named tenants (a canary); an unknown name exits 2 touching nothing', async () => {
    addMigration(dir, '0004_canary_note', 'alter table trades add column canary_note text;\n');
    const versions = await t.su`select id, template_version from platform.tenants order by id`;
    const typo = await runCli(['migrate', '--tenant', tenants[3]!.slug!, '--tenant', 'no-such-desk'], env, 60_000);
    expect(typo.code, typo.stderr).toBe(2);
    expect(typo.stderr).toContain('no such tenant: no-such-desk (give an id or a slug)');
    expect(await t.su`select id, template_version from platform.tenants order by id`).toEqual(versions);

    // One by slug, one by id.
    const canary = await runCli(['migrate', '--json', '--tenant', tenants[3]!.slug!, '--tenant', tenants[8]!.id], env);
    expect(canary.code, canary.stderr).toBe(0);
    expect(JSON.parse(canary.stdout)).toMatchObject({ status: 'succeeded', total: 2, migrated: 2 });
    const after = await states('0004_canary_note', 'canary_note');
    const migrated = after.filter((s) => s.at_new && s.in_ledger && s.has_column).map((s) => s.slug);
    expect(migrated.sort()).toEqual([tenants[3]!.slug!, tenants[8]!.slug].sort());
    expect(after.filter((s) => s.at_new || s.in_ledger || s.has_column)).toHaveLength(2);

    const rest = await runCli(['migrate', '--json'], env, 60_000);
    expect(rest.code, rest.stderr).toBe(0);
    expect(JSON.parse(rest.stdout)).toMatchObject({ status: 'succeeded', total: TENANTS - 2, migrated: TENANTS - 2 });
    expect(
      (await states('0004_canary_note', 'canary_note')).every((s) => s.at_new && s.in_ledger && s.has_column),
    ).toBe(true);
  });

  it('rejects unknown options as a usage error', async () => {
    const res = await runCli(['migrate', '--bogus'], env);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Unknown option '--bogus'/);
  });
});
