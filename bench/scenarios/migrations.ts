/**
 * Tenant migrations: a template file fanned out to every tenant (`--tenants`, 2,000 by
 * default and in the CI configuration), each tenant holding data in both hypertables
 * (bench/lib/seeding.ts). The baseline, measured in the same run over the same tenants,
 * is the same DDL applied by hand: one transaction per schema, no registry lock, no
 * ledger, no version; the two alternate over batches of tenants. Targets: per-tenant
 * p50 within 1.5x of the baseline's, no tenant failing, the validator clean afterwards
 * (no drift), and a run with nothing to do well under a second.
 */
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Check } from '../lib/checks.ts';
import { firstRowsSql, withSeedingPool } from '../lib/seeding.ts';
import { ratio, summarize, timed } from '../lib/stats.ts';
import type { Scenario } from '../run.ts';
import { validate } from '../../src/isolation/validator.ts';
import { readTenantMigrations, TENANT_MIGRATIONS_FOLDER } from '../../src/migrations/files.ts';
import { migrateTenants } from '../../src/migrations/runner.ts';
import { migrateTemplate } from '../../src/migrations/template.ts';

const CONCURRENCY = 4;
/** Tenants per alternation between the runner and the baseline. */
const BATCH = 100;
const NOOP_RUNS = 5;
/** The DDL both sides apply: a nullable column on the trades hypertable and an index on orders. */
const ddl = (suffix: string, on = '') =>
  `alter table ${on}trades add column bench_note_${suffix} text;\ncreate index orders_bench_${suffix}_idx on ${on}orders (symbol, created_at);\n`;

type Tenant = { id: string; schema: string };

/** `work` over every item, CONCURRENCY at a time. */
async function eachConcurrently<T>(items: T[], work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

export const migrations: Scenario = {
  name: 'migrations',
  async run({ startEnvironment, slo, options, progress }) {
    const env = await startEnvironment();
    const { platform } = env;
    const limits = {
      ratio: slo.migrations?.strict?.p50VsBaseline ?? 1.5,
      noopMs: slo.migrations?.strict?.noopMs ?? 500,
      seedNoopMs: slo.migrations?.seed?.noopMs ?? 1000,
    };
    const runner = { concurrency: CONCURRENCY, lockTimeoutMs: 2_000, retries: 3, actor: 'bench' };
    // The template file goes into a copy of sql/: the repository's folder is never written.
    const dir = mkdtempSync(join(tmpdir(), 'tf-bench-sql-'));
    try {
      progress(`provisioning and seeding ${options.tenants} tenants`);
      const seeded: Tenant[] = [];
      await withSeedingPool(env.superuserUrl, CONCURRENCY, (seeding) =>
        eachConcurrently(
          Array.from({ length: options.tenants }, (_, n) => n),
          async (n) => {
            const { tenant } = await platform.tenants.create(
              { slug: `bench-${n}`, name: `Bench ${n}`, plan: 'free' },
              { actor: 'bench' },
            );
            await seeding.begin((tx) => tx.unsafe(firstRowsSql(tenant.schema, tenant.id)));
            seeded.push({ id: tenant.id, schema: tenant.schema });
            if (seeded.length % 500 === 0) progress(`  ${seeded.length} tenants`);
          },
        ),
      );

      cpSync(TENANT_MIGRATIONS_FOLDER, dir, { recursive: true });
      writeFileSync(join(dir, '9001_bench_note.sql'), ddl('a'));
      await migrateTemplate(platform.control, readTenantMigrations(dir));

      // Runner and baseline take the tenants in batches, alternating which goes first: the
      // side going second finds each tenant's catalog pages already read and written since
      // the last checkpoint (the runner always going first measured 1.5-1.6x; alternated, ~1.1x).
      progress(`fan-out through the runner (--tenant batches of ${BATCH}), alternating with the baseline`);
      const perTenant: number[] = [];
      const baseline: number[] = [];
      const summary = { migrated: 0, failed: 0 };
      let fanOutMs = 0;
      const runnerBatch = async (batch: Tenant[]) => {
        const [ms, result] = await timed(() =>
          migrateTenants(platform.control, {
            ...runner,
            tenants: batch.map((t) => t.id),
            onTenant: (t) => perTenant.push(t.ms),
          }),
        );
        fanOutMs += ms;
        summary.migrated += result.migrated;
        summary.failed += result.failed;
      };
      // The same DDL by hand: one transaction per schema, no registry lock, no ledger, no version.
      const baselineBatch = (batch: Tenant[]) =>
        eachConcurrently(batch, async ({ schema }) => {
          const [ms] = await timed(() => env.su.begin((tx) => tx.unsafe(ddl('b', `"${schema}".`))));
          baseline.push(ms);
        });
      for (let i = 0; i * BATCH < seeded.length; i++) {
        const batch = seeded.slice(i * BATCH, (i + 1) * BATCH);
        if (i % 2 === 0) {
          await runnerBatch(batch);
          await baselineBatch(batch);
        } else {
          await baselineBatch(batch);
          await runnerBatch(batch);
        }
      }
      const tenantsPerSecond = Math.round((summary.migrated / fanOutMs) * 10_000) / 10;
      progress(
        `  ${summary.migrated} migrated, ${summary.failed} failed in ${Math.round(fanOutMs)} ms (${tenantsPerSecond} tenants/s)`,
      );

      // The baseline's hand-made column and index are drift by design: gone before the validator looks.
      await eachConcurrently(seeded, ({ schema }) =>
        env.su.unsafe(
          `alter table "${schema}".trades drop column bench_note_b; drop index "${schema}".orders_bench_b_idx`,
        ),
      );
      const report = await validate(platform.control);
      progress(`  validator after the fan-out: ${report.violations.length} violation(s) in ${report.durationMs} ms`);

      progress('runs with nothing to do');
      const noop: number[] = [];
      for (let i = 0; i < NOOP_RUNS; i++) {
        const [ms, result] = await timed(() => migrateTenants(platform.control, runner));
        if (result.status !== 'current')
          throw new Error(`a run with nothing to do found ${result.total} tenants behind`);
        noop.push(ms);
      }
      const runnerStats = summarize(perTenant);
      const baselineStats = summarize(baseline);
      const noopStats = summarize(noop);
      const p50Ratio = ratio(runnerStats.p50, baselineStats.p50);
      progress(
        `  per tenant p50 ${runnerStats.p50} ms vs baseline ${baselineStats.p50} ms (${p50Ratio}x); no-op p50 ${noopStats.p50} ms`,
      );
      const checks: Check[] = [
        {
          name: 'per-tenant p50 / hand-written DDL p50',
          kind: 'strict',
          value: p50Ratio,
          limit: limits.ratio,
          op: '<=',
          unit: 'x',
        },
        { name: 'tenants failed', kind: 'seed', value: summary.failed, limit: 0, op: '<=', unit: '' },
        { name: 'tenants migrated', kind: 'seed', value: summary.migrated, limit: options.tenants, op: '>=', unit: '' },
        {
          name: `no-op run at ${options.tenants} tenants: p50`,
          kind: 'strict',
          value: Math.round(noopStats.p50),
          limit: limits.noopMs,
          op: '<=',
          unit: 'ms',
        },
        {
          name: `no-op run at ${options.tenants} tenants: max`,
          kind: 'seed',
          value: Math.round(noopStats.max),
          limit: limits.seedNoopMs,
          op: '<=',
          unit: 'ms',
        },
        {
          name: 'validator violations after the run (drift included)',
          kind: 'seed',
          value: report.violations.length,
          limit: 0,
          op: '<=',
          unit: '',
        },
      ];
      return {
        metrics: {
          tenants: options.tenants,
          concurrency: CONCURRENCY,
          batch: BATCH,
          fanOut: {
            totalMs: Math.round(fanOutMs),
            tenantsPerSecond,
            migrated: summary.migrated,
            failed: summary.failed,
            perTenant: runnerStats,
          },
          baseline: { perTenant: baselineStats },
          p50Ratio,
          noop: noopStats,
          validatorMsAfterFanOut: report.durationMs,
        },
        checks,
      };
    } finally {
      await env.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
