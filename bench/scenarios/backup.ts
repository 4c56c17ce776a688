/**
 * Backup and restore of one tenant with portfolios, orders, 100,000 trades, 100,000 bars
 * (and their hourly rollups) and 10,000 embeddings (a fifth of each with `--ci`), through
 * the HTTP service running in its own process with an S3 store (s3rver on loopback, or
 * the `S3` URL when set: `http://KEY:SECRET@host:port/bucket`).
 *
 * Baselines, measured in the same run on the same tables:
 * - backup: psql's plain `\copy (select <the same columns>) TO '<file>' (FORMAT binary)` of
 *   every table into a local file, in one repeatable-read read-only transaction (the
 *   backup's snapshot kind), without batching, compression, hashing or upload;
 * - restore: an empty tenant provisioned, then psql's plain `\copy ... FROM '<file>'
 *   (FORMAT binary)` of those files into its tables (indexes and hypertables as
 *   provisioned), in one transaction, without download, decompression, checksums or
 *   row checks.
 * Each backup round runs right after its baseline's, seven times after one warm-up round
 * that is not counted; the ratio compares their p50s.
 * Targets (slo.json `backup`): the backup's own duration within 1.25x of its baseline,
 * the restore (`POST /v1/tenants` with `restoreFrom`, end to end) within 1.5x of its
 * baseline, and the service's peak RSS during a backup under 200 MB (VmHWM, reset just
 * before each backup through /proc/<pid>/clear_refs), with the service built and run on
 * plain Node as in production. Each round also records the CPU each party spent
 * (`cpuMs`: the service, the database server, psql, and the bench's own process, which
 * holds s3rver when that is the store): on a 2-core machine a wall-time ratio alone does
 * not say whose work did not fit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Check } from '../lib/checks.ts';
import { cpuWindow, serverCpu, waitedChildrenCpuMs } from '../lib/cpu.ts';
import { ratio, summarize, timed } from '../lib/stats.ts';
import type { Scenario } from '../run.ts';
import { tableLayout, type TableLayout } from '../../src/backup/snapshot.ts';
import type { Sql } from '../../src/db/connect.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { buildService, type ServiceBuild } from '../../test/support/build.ts';
import { backupEnv, startObjectStore } from '../../test/support/object-store.ts';

/** Timed backup rounds, each next to its baseline (interleaved), after the warm-up. */
const ROUNDS = 7;
const WARM_UP_ROUNDS = 1;
/** A restore round takes seconds (a provisioning, the load and the index builds, and its baseline's). */
const RESTORE_ROUNDS = 2;

export const backup: Scenario = {
  name: 'backup',
  async run({ startEnvironment, slo, options, progress }) {
    const limits = {
      backup: slo.backup?.seed?.backupVsBaseline ?? 1.25,
      restore: slo.backup?.seed?.restoreVsBaseline ?? 1.5,
      rssMb: slo.backup?.seed?.peakRssMb ?? 200,
    };
    const full = {
      trades: slo.backup?.trades ?? 100_000,
      bars: slo.backup?.bars ?? 100_000,
      embeddings: slo.backup?.embeddings ?? 10_000,
    };
    const fraction = options.ci ? (slo.backup?.ciFraction ?? 0.2) : 1;
    const counts = {
      trades: Math.round(full.trades * fraction),
      bars: Math.round(full.bars * fraction),
      embeddings: Math.round(full.embeddings * fraction),
    };

    const env = await startEnvironment();
    const store = await startObjectStore(process.env, false);
    const files = mkdtempSync(join(tmpdir(), 'tf-bench-backup-'));
    let service: ChildProcess | undefined;
    let build: ServiceBuild | undefined;
    try {
      // The service with backups configured, in its own process (the environment's own one has none).
      const { config } = env.platform;
      const port = await freePort();
      const baseUrl = `http://127.0.0.1:${port}`;
      // Built and run with plain Node, as `npm start` does: the peak RSS is the service's.
      build = await buildService();
      service = spawn(process.execPath, [build.main, 'serve'], {
        env: {
          PATH: process.env.PATH,
          HOME: process.env.HOME,
          PORT: String(port),
          LOG_LEVEL: 'warn',
          DATABASE_URL: config.databaseUrl,
          TENANTFORGE_DATA_DIR: config.dataDir,
          TENANTFORGE_ADMIN_TOKEN: env.adminToken,
          TENANTFORGE_SCHEMA_SECRET: config.schemaSecret,
          TENANTFORGE_APP_PASSWORD: config.appPassword,
          TENANTFORGE_VALIDATOR_INTERVAL: 'off',
          TENANTFORGE_BACKUP_SCHEDULE_INTERVAL: 'off',
          TENANTFORGE_BACKUP_SSE: 'off',
          ...backupEnv(store.settings, `bench-${randomBytes(4).toString('hex')}`),
          ...env.serviceSettings,
        } as Record<string, string>,
        // Its log (warnings and errors) goes to the bench's stderr: a failed request says why.
        stdio: ['ignore', process.stderr, 'inherit'],
      });
      await waitUntilReady(`${baseUrl}/readyz`, service);
      const admin = async (method: string, path: string, json?: unknown) => {
        const res = await fetch(`${baseUrl}${path}`, {
          method,
          headers: { authorization: `Bearer ${env.adminToken}`, 'content-type': 'application/json' },
          body: json === undefined ? undefined : JSON.stringify(json),
        });
        const body = await res.json();
        if (res.status >= 300)
          throw new Error(`${method} ${path} answered ${res.status}: ${JSON.stringify(body).slice(0, 300)}`);
        return body;
      };

      progress(`seeding a tenant: ${counts.trades} trades, ${counts.bars} bars, ${counts.embeddings} embeddings`);
      const source = await admin('POST', '/v1/tenants', {
        slug: 'bench-source',
        name: 'Bench source',
        plan: 'enterprise',
      });
      await seed(env.su, source, counts);
      const layout = await tableLayout(env.su, source.schema);
      // Read every table once, so neither side pays for setting hint bits on fresh rows.
      for (const t of layout) await env.su.unsafe(`select count(*) from "${source.schema}"."${t.name}"`);

      const backups: { ms: number; wallMs: number; peakKb: number; sampledKb: number; id: string; bytes: number }[] =
        [];
      const copyTo: number[] = [];
      // CPU per party and round: where the time goes on the machine's cores (bench/lib/cpu.ts).
      const database = await serverCpu(env.su);
      const cpu = {
        copyTo: { database: [] as number[], psql: [] as number[] },
        backup: { service: [] as number[], database: [] as number[], benchProcess: [] as number[] },
      };
      // One untimed round first: the service's first backup compiles its code paths (JIT),
      // which a long-running service pays once, and psql has no such cost.
      for (let round = -WARM_UP_ROUNDS; round < ROUNDS; round++) {
        const db = database?.sample();
        const psqlCpu = waitedChildrenCpuMs();
        const [baseMs] = await timed(() => copyOut(config.databaseUrl!, source, layout, files));
        const baseDbCpu = database && db ? database.since(db) : undefined;
        const basePsqlCpu = waitedChildrenCpuMs() - psqlCpu;
        writeFileSync(`/proc/${service.pid}/clear_refs`, '5');
        const sampler = sampleRss(service.pid!);
        const backupCpu = cpuWindow(service.pid!, database);
        const [wallMs, done] = await timed(async () => {
          const started = await admin('POST', `/v1/tenants/${source.id}/backups`);
          const deadline = Date.now() + 10 * 60_000;
          for (;;) {
            const b = await admin('GET', `/v1/tenants/${source.id}/backups/${started.id}`);
            if (b.status === 'succeeded' || b.status === 'failed') return b;
            if (Date.now() > deadline) throw new Error(`backup ${started.id} still ${b.status} after 10 minutes`);
            await new Promise((r) => setTimeout(r, 25));
          }
        });
        const sampledKb = sampler.stop();
        const spent = backupCpu();
        if (done.status !== 'succeeded') throw new Error(`backup failed: ${done.error}`);
        const peakKb = statusKb(service.pid!, 'VmHWM');
        const line = `COPY TO ${Math.round(baseMs)} ms, backup ${done.durationMs} ms (${Math.round(wallMs)} ms end to end), ${done.sizeBytes} bytes, peak RSS ${Math.round(peakKb / 1024)} MB; CPU ms: service ${spent.service}, database ${spent.database ?? '?'}, bench process ${spent.benchProcess}`;
        if (round < 0) {
          progress(`  warm-up (not counted): ${line}`);
          continue;
        }
        copyTo.push(baseMs);
        if (baseDbCpu !== undefined) cpu.copyTo.database.push(baseDbCpu);
        cpu.copyTo.psql.push(basePsqlCpu);
        for (const party of ['service', 'database', 'benchProcess'] as const) {
          const ms = spent[party];
          if (ms !== undefined) cpu.backup[party].push(ms);
        }
        backups.push({
          ms: done.durationMs,
          wallMs,
          peakKb,
          sampledKb,
          id: done.id,
          bytes: done.sizeBytes,
        });
        progress(`  round ${round + 1}: ${line}`);
      }

      const restores: number[] = [];
      const copyFrom: number[] = [];
      let restoredRows: Record<string, number> = {};
      for (let round = 0; round < RESTORE_ROUNDS; round++) {
        const [baseMs] = await timed(async () => {
          const empty = await admin('POST', '/v1/tenants', {
            slug: `bench-baseline-${round}`,
            name: 'Baseline',
            plan: 'enterprise',
          });
          await copyIn(config.databaseUrl!, empty, layout, files);
        });
        copyFrom.push(baseMs);
        const [ms, restored] = await timed(() =>
          admin('POST', '/v1/tenants', {
            slug: `bench-restored-${round}`,
            name: 'Restored',
            plan: 'enterprise',
            restoreFrom: { backupId: backups[0]!.id },
          }),
        );
        restores.push(ms);
        restoredRows = Object.fromEntries(
          await Promise.all(
            layout.map(
              async (t) =>
                [
                  t.name,
                  Number((await env.su.unsafe(`select count(*) as n from "${restored.schema}"."${t.name}"`))[0]!.n),
                ] as const,
            ),
          ),
        );
        progress(`  round ${round + 1}: provision + COPY FROM ${Math.round(baseMs)} ms, restore ${Math.round(ms)} ms`);
      }

      const backupRatio = ratio(summarize(backups.map((b) => b.ms)).p50, summarize(copyTo).p50);
      const restoreRatio = ratio(summarize(restores).p50, summarize(copyFrom).p50);
      const peakMb = Math.round((Math.max(...backups.map((b) => b.peakKb)) / 1024) * 10) / 10;
      const checks: Check[] = [
        {
          name: 'backup p50 vs plain COPY TO a local file',
          kind: 'seed',
          value: backupRatio,
          limit: limits.backup,
          op: '<=',
          unit: 'x',
        },
        {
          name: 'restore p50 vs provisioning + plain COPY FROM the files',
          kind: 'seed',
          value: restoreRatio,
          limit: limits.restore,
          op: '<=',
          unit: 'x',
        },
        {
          name: "service's peak RSS during a backup",
          kind: 'seed',
          value: peakMb,
          limit: limits.rssMb,
          op: '<=',
          unit: 'MB',
        },
        {
          name: 'restored trades rows',
          kind: 'seed',
          value: restoredRows.trades ?? 0,
          limit: counts.trades,
          op: '>=',
          unit: 'rows',
        },
      ];
      return {
        metrics: {
          rows: counts,
          rounds: ROUNDS,
          backupBytes: backups[0]!.bytes,
          backupMs: summarize(backups.map((b) => b.ms)),
          backupWallMs: summarize(backups.map((b) => b.wallMs)),
          copyToMs: summarize(copyTo),
          restoreMs: summarize(restores),
          copyFromMs: summarize(copyFrom),
          backupRatio,
          restoreRatio,
          peakRssMb: peakMb,
          sampledPeakRssMb: Math.round((Math.max(...backups.map((b) => b.sampledKb)) / 1024) * 10) / 10,
          restoredRows,
          store: store.settings.source,
          // CPU ms per round (p50 of the rounds), per party: the database server (when local),
          // psql, the service, and the bench's own process, which holds s3rver when that is the
          // store (and polls the backup's status every 25 ms).
          cpuMs: {
            copyTo: medians(cpu.copyTo),
            backup: medians(cpu.backup),
          },
        },
        checks,
      };
    } finally {
      if (service && service.exitCode === null) {
        service.kill('SIGTERM');
        await new Promise((r) => service!.once('exit', r));
      }
      await store.stop();
      await env.close();
      rmSync(files, { recursive: true, force: true });
      build?.remove();
    }
  },
};

type Names = { id: string; schema: string };

/** Portfolios and orders, trades spread over them, one-minute bars with hourly rollups, clustered embeddings (HNSW built once after). */
async function seed(
  su: Sql,
  tenant: Names,
  counts: { trades: number; bars: number; embeddings: number },
): Promise<void> {
  await su.begin(async (tx) => {
    await tx.unsafe(`set local search_path = "${tenant.schema}", extensions`);
    await tx.unsafe(`select set_config('app.current_tenant_id', $1, true)`, [tenant.id]);
    await tx.unsafe(`insert into portfolios (name) select 'Portfolio ' || i from generate_series(1, 5) i`);
    await tx.unsafe(
      `insert into orders (portfolio_id, symbol, side, type, quantity, limit_price)
       select (select id from portfolios order by name offset i % 5 limit 1), (array['AAPL','MSFT','NVDA','TSLA'])[1 + i % 4],
              case when i % 2 = 0 then 'buy' else 'sell' end, 'limit', 10 + i % 90, 100 + i % 50
       from generate_series(1, 200) i`,
    );
    await tx.unsafe(
      `insert into trades (portfolio_id, order_id, symbol, side, quantity, price, fee, executed_at)
       select p.ids[1 + i % 5], case when i % 3 = 0 then o.ids[1 + i % 200] end, (array['AAPL','MSFT','NVDA','TSLA'])[1 + i % 4],
              case when i % 2 = 0 then 'buy' else 'sell' end, 1 + (i % 50), round((100 + (i % 1000) / 7.0)::numeric, 4),
              round(((i % 10) / 100.0)::numeric, 2), timestamptz '2026-01-01' + i * interval '37 seconds'
       from generate_series(1, $1::int) i, (select array_agg(id) as ids from portfolios) p, (select array_agg(id) as ids from orders) o`,
      [counts.trades],
    );
    await tx.unsafe(
      `insert into market_data (symbol, bar_time, open, high, low, close, volume)
       select (array['AAPL','MSFT','NVDA','TSLA'])[1 + i % 4], timestamptz '2026-03-01' + (i / 4) * interval '1 minute', p, p + 1, p - 1, p + 0.5, 100 + i % 977
       from generate_series(0, $1::int - 1) i, lateral (select round((150 + sin(i / 500.0) * 20)::numeric, 6) as p) x`,
      [counts.bars],
    );
    await tx.unsafe(
      `insert into market_data_1h (symbol, bucket, open, high, low, close, volume, bars)
       select symbol, time_bucket('1 hour', bar_time) as b, (array_agg(open order by bar_time))[1], max(high), min(low),
              (array_agg(close order by bar_time desc))[1], sum(volume), count(*)
       from market_data group by symbol, b`,
    );
    const [hnsw] = await tx.unsafe(`select pg_get_indexdef('embeddings_embedding_hnsw_idx'::regclass) as def`);
    await tx.unsafe('drop index embeddings_embedding_hnsw_idx');
    await tx.unsafe(
      `insert into embeddings (external_id, content, metadata, embedding)
       select 'doc-' || i, 'document ' || i, jsonb_build_object('topic', i % 50),
              (select array_agg(sin((i % 50) * 12.9898 + d * 78.233) + sin(i * 7.1 + d) * 0.05)::vector(384) from generate_series(1, 384) d)
       from generate_series(1, $1::int) i`,
      [counts.embeddings],
    );
    await tx.unsafe(`set local maintenance_work_mem = '256MB'`);
    await tx.unsafe(hnsw!.def);
  });
}

/**
 * The backup baseline: psql's `\copy` of each table's columns (as a backup stores them)
 * to a local file, all in one repeatable-read read-only transaction.
 */
async function copyOut(url: string, tenant: Names, layout: TableLayout[], dir: string): Promise<void> {
  await psql(url, [
    'begin isolation level repeatable read read only;',
    ...layout.map(
      (t) =>
        `\\copy (select ${columnList(t)} from "${tenant.schema}"."${t.name}" where tenant_id = '${tenant.id}') to '${join(dir, `${t.name}.bin`)}' with (format binary)`,
    ),
    'commit;',
  ]);
}

/** The restore baseline: psql's `\copy` of the files into an empty tenant's tables, in one transaction. */
async function copyIn(url: string, tenant: Names, layout: TableLayout[], dir: string): Promise<void> {
  await psql(url, [
    'begin;',
    `select set_config('app.current_tenant_id', '${tenant.id}', true);`,
    ...layout.map(
      (t) =>
        `\\copy "${tenant.schema}"."${t.name}" (${columnList(t)}) from '${join(dir, `${t.name}.bin`)}' with (format binary)`,
    ),
    'commit;',
  ]);
}

/** The p50 of each non-empty list, rounded to whole ms. */
const medians = (lists: Record<string, number[]>) =>
  Object.fromEntries(
    Object.entries(lists)
      .filter(([, values]) => values.length > 0)
      .map(([name, values]) => [name, Math.round(summarize(values).p50)]),
  );

const columnList = (t: TableLayout) => t.columns.map((c) => `"${c.name}"`).join(', ');

/** Runs a psql script (the plain client every operator has), failing on the first error. */
async function psql(url: string, lines: string[]): Promise<void> {
  const child = spawn('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', url], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  child.stdin!.end(lines.join('\n') + '\n');
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`psql exited with ${code}: ${stderr.trim()}`);
}

/** A field of /proc/<pid>/status, in kB. */
function statusKb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : 0;
}

/** Samples VmRSS every 20 ms (a cross-check of VmHWM); `stop` returns the highest seen, in kB. */
function sampleRss(pid: number): { stop(): number } {
  let peak = statusKb(pid, 'VmRSS');
  const timer = setInterval(() => (peak = Math.max(peak, statusKb(pid, 'VmRSS'))), 20);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, statusKb(pid, 'VmRSS'));
    },
  };
}

async function waitUntilReady(url: string, server: ChildProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null)
      throw new Error(`the service exited with code ${server.exitCode} before it was ready`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the service was not ready within 60 s');
}
