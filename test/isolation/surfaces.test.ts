/**
 * The validator's three ways in: the CLI (exit codes 0/1/2), the scheduled job (reports
 * kept in the control plane) and the admin API with its metrics.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { CHECK_NAMES } from '../../src/isolation/checks/catalog.ts';
import { startValidatorJob } from '../../src/isolation/job.ts';
import { renderMetrics } from '../../src/isolation/metrics.ts';
import { latestReport, latestSummary, saveReport } from '../../src/isolation/report.ts';
import { validate } from '../../src/isolation/validator.ts';
import { createLogger } from '../../src/log.ts';
import { runCli } from '../support/cli.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { newTenant, type TestTenant } from './support.ts';
import { scratchDir } from '../support/scratch.ts';

let t: TestPlatform;
let tenant: TestTenant;
beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: 'off' } });
  tenant = await newTenant(t, 'surfaces');
});
afterAll(() => t?.close());

const breakRls = () => t.su.unsafe(`alter table "${tenant.schema}".orders no force row level security`);
const repairRls = () => t.su.unsafe(`alter table "${tenant.schema}".orders force row level security`);

describe('configuration', () => {
  it('TENANTFORGE_VALIDATOR_INTERVAL: 1h by default, a duration, or off', () => {
    expect(loadConfig({}).validatorIntervalMs).toBe(3_600_000);
    expect(loadConfig({ TENANTFORGE_VALIDATOR_INTERVAL: '15m' }).validatorIntervalMs).toBe(900_000);
    expect(loadConfig({ TENANTFORGE_VALIDATOR_INTERVAL: 'off' }).validatorIntervalMs).toBe(0);
    expect(loadConfig({ TENANTFORGE_VALIDATOR_INTERVAL: '0' }).validatorIntervalMs).toBe(0);
    expect(() => loadConfig({ TENANTFORGE_VALIDATOR_INTERVAL: 'hourly' })).toThrow(ConfigError);
    expect(() => loadConfig({ TENANTFORGE_VALIDATOR_INTERVAL: 'hourly' })).toThrow(
      /TENANTFORGE_VALIDATOR_INTERVAL="hourly": must be off/,
    );
  });
});

describe('admin API and metrics', () => {
  it('need the admin token', async () => {
    expect((await t.http('/v1/admin/isolation', { token: null })).status).toBe(401);
    expect((await t.http('/metrics', { token: 'wrong-token-0123456789' })).status).toBe(401);
  });

  it('before any run: 404 problem, and metrics without samples', async () => {
    const res = await t.http('/v1/admin/isolation');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect((await res.json()).code).toBe('isolation_report_not_found');
    const metrics = await (await t.http('/metrics')).text();
    expect(metrics).toContain('# TYPE tenantforge_isolation_violations gauge');
    expect(metrics).not.toMatch(/^tenantforge_isolation_/m);
  });

  it('serve the latest stored report, and one gauge per check', async () => {
    await saveReport(t.control, await validate(t.control));
    await breakRls();
    try {
      const stored = await validate(t.control);
      const id = await saveReport(t.control, stored);
      const res = await t.http('/v1/admin/isolation');
      expect(res.status).toBe(200);
      const body = await res.json();
      expect(body).toMatchObject({ id, outcome: 'violations', tenantsChecked: 1, counts: { rls_forced: 1 } });
      expect(body.violations).toEqual([
        expect.objectContaining({
          check: 'rls_forced',
          tenantId: tenant.id,
          tenantSlug: 'surfaces',
          object: `${tenant.schema}.orders`,
        }),
      ]);

      const metrics = await t.http('/metrics');
      expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const text = await metrics.text();
      for (const check of CHECK_NAMES)
        expect(text).toMatch(
          new RegExp(`^tenantforge_isolation_violations\\{check="${check}"\\} ${check === 'rls_forced' ? 1 : 0}$`, 'm'),
        );
      expect(text).toMatch(/^tenantforge_isolation_last_run_ok 1$/m);
      expect(text).toMatch(/^tenantforge_isolation_tenants_checked 1$/m);
      expect(text).toMatch(/^tenantforge_isolation_last_run_timestamp_seconds \d+(\.\d+)?$/m);
    } finally {
      await repairRls();
    }
  });

  it('a run that could not complete shows as last_run_ok 0, without per-check samples', async () => {
    const now = new Date().toISOString();
    await saveReport(t.control, {
      outcome: 'error',
      scope: { tenant: null },
      startedAt: now,
      finishedAt: now,
      durationMs: 1,
      tenantsChecked: 0,
      error: 'boom',
    });
    const text = renderMetrics(await latestSummary(t.control));
    expect(text).toMatch(/^tenantforge_isolation_last_run_ok 0$/m);
    expect(text).not.toMatch(/^tenantforge_isolation_violations\{/m);
    expect(await latestReport(t.control)).toMatchObject({ outcome: 'error', error: 'boom' });
  });
});

describe('a run racing a lock and a purge', () => {
  it('does not wait on a tenant whose table is locked: it names it as not checked, and the purge under it goes through', async () => {
    const doomed = await newTenant(t, 'doomed');
    // A policy shape of its own: had the validator deparsed it, policy_canonical would report it.
    await t.su.unsafe(
      `alter policy tenant_isolation on "${doomed.schema}".orders using (tenant_id = (select nullif(current_setting('app.current_tenant_id', true), '')::uuid) and true)`,
    );
    const purger = await t.su.reserve();
    try {
      await purger`begin`;
      await purger.unsafe(`lock table "${doomed.schema}".orders in access exclusive mode`);
      const pid = (await purger<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;
      const started = performance.now();
      const locked = await validate(t.control);
      expect(performance.now() - started).toBeLessThan(5_000); // the validator's lock_timeout would say 1 s per wait
      expect(locked.violations).toEqual([]);
      expect(locked.tenantsChecked).toBe(2);
      expect(locked.notChecked).toEqual([
        { tenantId: doomed.id, tenantSlug: 'doomed', reason: `policies not checked: a table is locked by pid ${pid}` },
      ]);

      await purger.unsafe(`drop schema "${doomed.schema}" cascade`);
      await purger`update platform.tenants set status = 'purged' where id = ${doomed.id}`;
      await purger`commit`;
      const after = await validate(t.control);
      expect(after.violations).toEqual([]);
      expect(after.tenantsChecked).toBe(1);
      expect(after.notChecked).toEqual([]);
    } finally {
      await purger`rollback`.catch(() => {});
      purger.release();
      const [left] = await t.su`select status from platform.tenants where id = ${doomed.id}`;
      if (left?.status !== 'purged') await t.tenants.delete(doomed.id, { purge: true }, { actor: 'test' });
      else await t.su.unsafe(`drop role if exists "${doomed.role}"`);
    }
  });
});

describe('scheduled job', () => {
  it('runs at once and then every interval, storing each report; stop waits for the run in flight', async () => {
    const newerThan = (id: number) => async () => {
      const latest = await latestSummary(t.control);
      return latest && latest.id > id && latest;
    };
    const before = (await latestSummary(t.control))?.id ?? 0;
    const job = startValidatorJob({ sql: t.control, intervalMs: 300, log: createLogger('silent') });
    try {
      const first = await waitFor(newerThan(before));
      expect(first).toMatchObject({ outcome: 'clean', tenantsChecked: 1 });
      await breakRls();
      const next = await waitFor(newerThan(first.id));
      expect(next).toMatchObject({ outcome: 'violations', counts: expect.objectContaining({ rls_forced: 1 }) });
    } finally {
      await job.stop();
      await repairRls();
    }
    const stoppedAt = (await latestSummary(t.control))!.id;
    await new Promise((r) => setTimeout(r, 700));
    expect((await latestSummary(t.control))!.id).toBe(stoppedAt);
  });

  it('skips a run when another instance finished one within the interval', async () => {
    await saveReport(t.control, await validate(t.control));
    const latest = (await latestSummary(t.control))!.id;
    const job = startValidatorJob({ sql: t.control, intervalMs: 60_000, log: createLogger('silent') });
    await new Promise((r) => setTimeout(r, 500));
    await job.stop();
    expect((await latestSummary(t.control))!.id).toBe(latest);
  });

  it("is started by the service with TENANTFORGE_VALIDATOR_INTERVAL (this file's platform, with off, stored nothing by itself)", async () => {
    const on = await testPlatform({ env: { TENANTFORGE_VALIDATOR_INTERVAL: '1h' } });
    try {
      expect(await waitFor(() => latestSummary(on.control))).toMatchObject({ outcome: 'clean' });
    } finally {
      await on.close();
    }
  });
});

describe('command line', () => {
  const env = () => ({
    DATABASE_URL: t.db.url,
    TENANTFORGE_DATA_DIR: scratchDir('tf-validate-'),
    // Roles are cluster-wide: keep the runtime role's password the one every test file uses.
    TENANTFORGE_APP_PASSWORD: inject('appPassword'),
  });

  it('exits 0 on a clean platform and prints the report as JSON', async () => {
    const result = await runCli(['validate', '--json'], env(), 60_000);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ outcome: 'clean', tenantsChecked: 1, violations: [] });
    expect((await latestReport(t.control))?.startedAt).toBe(report.startedAt);
  });

  it('exits 1 on violations, naming each with its tenant and fix; --fix repairs the safe ones and exits 0', async () => {
    await breakRls();
    try {
      const result = await runCli(['validate'], env(), 60_000);
      expect(result.code).toBe(1);
      expect(result.stdout).toContain('tenant isolation: 1 violation(s) across 1 tenant(s)');
      expect(result.stdout).toContain(`rls_forced: table ${tenant.schema}.orders does not force row level security`);
      expect(result.stdout).toContain(`tenant: surfaces (${tenant.id})`);
      expect(result.stdout).toContain(`fix:    alter table ${tenant.schema}.orders force row level security`);

      const fixed = await runCli(['validate', '--fix', '--tenant', 'surfaces'], env(), 60_000);
      expect(fixed.stdout).toContain('--fix applied 1 of 1 repair(s)');
      expect(fixed.code).toBe(0);
    } finally {
      await repairRls();
    }
  });

  it('exits 2 when it cannot run: no database, unknown tenant, bad option, bad setting', async () => {
    const nowhere = await runCli(['validate'], {
      ...env(),
      DATABASE_URL: `postgres://x:y@127.0.0.1:${await freePort()}/db`,
    });
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('cannot connect to PostgreSQL');
    const unknown = await runCli(['validate', '--tenant', 'nobody'], env(), 60_000);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no tenant "nobody"');
    expect((await runCli(['validate', '--everything'], env())).code).toBe(2);
    expect((await runCli(['validate'], { ...env(), TENANTFORGE_VALIDATOR_INTERVAL: 'sometimes' })).code).toBe(2);
  });
});

async function waitFor<T>(probe: () => Promise<T | false | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 100));
  }
}
