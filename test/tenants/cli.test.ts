import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { freshDatabase, type TestDatabase } from '../support/platform.ts';
import { scratchDir } from '../support/scratch.ts';

let db: TestDatabase;
let env: Record<string, string>;
beforeAll(async () => {
  db = await freshDatabase();
  env = {
    DATABASE_URL: db.url,
    TENANTFORGE_APP_PASSWORD: inject('appPassword'),
    TENANTFORGE_DATA_DIR: scratchDir('tf-cli-'),
    TENANTFORGE_SCHEMA_SECRET: 'cli-test-schema-secret-0123',
    TENANTFORGE_VALIDATOR_INTERVAL: 'off',
  };
});
afterAll(() => db?.drop());

describe('tenantforge tenants (command line)', () => {
  it('creates, shows, lists, suspends and purges a tenant', async () => {
    const created = await runCli(
      ['tenants', 'create', '--slug', 'cli-desk', '--name', 'CLI Desk', '--plan', 'pro', '--json'],
      env,
    );
    expect(created.code, created.stderr).toBe(0);
    const tenant = JSON.parse(created.stdout);
    expect(tenant).toMatchObject({ slug: 'cli-desk', plan: 'pro', status: 'active' });

    const shown = await runCli(['tenants', 'show', 'cli-desk'], env);
    expect(shown.stdout).toContain(tenant.id);
    const listed = await runCli(['tenants', 'list', '--json'], env);
    expect(JSON.parse(listed.stdout).items.map((t: { id: string }) => t.id)).toContain(tenant.id);

    const suspended = await runCli(['tenants', 'update', 'cli-desk', '--status', 'suspended', '--json'], env);
    expect(JSON.parse(suspended.stdout).status).toBe('suspended');
    const purged = await runCli(['tenants', 'delete', tenant.id, '--purge', '--json'], env);
    expect(JSON.parse(purged.stdout).status).toBe('purged');
  });

  it.each([
    [['tenants', 'create', '--slug', 'admin', '--name', 'X'], /--slug: is reserved/],
    [['tenants', 'create', '--slug', 'Bad_Slug', '--name', 'X'], /--slug: must be lowercase letters/],
    [['tenants', 'create', '--slug', 'no-name'], /--name: /],
    [
      ['tenants', 'create', '--slug', 'plan-x', '--name', 'X', '--plan', 'gold'],
      /--plan: must be one of: free, pro, enterprise/,
    ],
    [['tenants', 'show', 'nobody-here'], /no tenant "nobody-here" \[tenant_not_found\]/],
  ])('refuses %j with one line that says what to do, exit 1', async (args, message) => {
    const result = await runCli(args, env);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('answers a taken slug with 409-style code and an unknown subcommand with usage (exit 2)', async () => {
    await runCli(['tenants', 'create', '--slug', 'twice', '--name', 'X'], env);
    const again = await runCli(['tenants', 'create', '--slug', 'TWICE', '--name', 'X'], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[slug_taken]');
    const unknown = await runCli(['tenants', 'frobnicate'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('usage: tenantforge');
  });
});
