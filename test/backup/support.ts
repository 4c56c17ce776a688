/**
 * Helpers for the backup tests: a platform wired to the run's S3 store under a prefix
 * of the test file's own, bulk seeding of a tenant (as the superuser, straight into its
 * schema), and a per-table digest that ignores tenant_id and row order.
 *
 * @example
 * const t = await backupPlatform('equality');
 * await seedTenant(t, acme, { trades: 100_000 });
 * expect(await tableDigests(t.su, restored.schema)).toEqual(await tableDigests(t.su, acme.schema));
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { inject } from 'vitest';
import { decompress } from 'zstd-napi';
import { BackupStore } from '../../src/backup/store.ts';
import { tableLayout, type TableLayout } from '../../src/backup/snapshot.ts';
import type { Sql } from '../../src/db/connect.ts';
import { backupEnv } from '../support/object-store.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import type { StartOptions } from '../../src/platform.ts';

/** A unique prefix for one test file's backups. */
export const testPrefix = (name: string) => `${name}-${randomBytes(4).toString('hex')}`;

export async function backupPlatform(
  prefix: string,
  options: StartOptions & { env?: Record<string, string>; endpoint?: string } = {},
): Promise<TestPlatform> {
  const s3 = inject('s3');
  return testPlatform({
    backupJobs: { retryDelayMs: 0, leaseMs: 30_000 },
    ...options,
    env: {
      ...backupEnv(s3, prefix, options.endpoint),
      TENANTFORGE_BACKUP_SSE: s3.source === 's3rver' ? 'off' : 'AES256',
      ...options.env,
    },
  });
}

/** A store client of the test's own (to look at, or damage, what a backup wrote). */
export function testStore(prefix: string): BackupStore {
  const s3 = inject('s3');
  return new BackupStore({
    bucket: s3.bucket,
    prefix,
    region: s3.region,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    sse: 'off',
    scheduleIntervalMs: 0,
    workers: 0,
  });
}

export type Seed = { portfolios: string[]; orders: string[] };

/**
 * Bulk rows as the superuser (RLS does not apply to it): trades spread over the given
 * portfolios and orders, one-minute bars with their hourly rollups, and clustered
 * embeddings (so the HNSW index has neighbourhoods to find). Each embedding varies
 * around its topic along three directions: with one (a single phase), every 100th
 * document of a topic was a near-copy of the others, chains of 100 near-identical
 * vectors in which HNSW missed the exact stored vector in 179 of 200 probes.
 */
export async function seedBulk(
  su: Sql,
  tenant: { id: string; schema: string },
  seed: Seed,
  counts: { trades: number; bars: number; embeddings: number },
): Promise<void> {
  const s = `"${tenant.schema}"`;
  await su.begin(async (tx) => {
    await tx.unsafe(`set local search_path = ${s}, extensions`);
    await tx.unsafe(
      `insert into trades (tenant_id, portfolio_id, order_id, symbol, side, quantity, price, fee, executed_at)
       select $1, (($2::uuid[])[1 + i % array_length($2::uuid[], 1)]), case when i % 3 = 0 then ($3::uuid[])[1 + i % array_length($3::uuid[], 1)] end,
              (array['AAPL','MSFT','NVDA','TSLA'])[1 + i % 4], case when i % 2 = 0 then 'buy' else 'sell' end,
              1 + (i % 50), round((100 + (i % 1000) / 7.0)::numeric, 4), round(((i % 10) / 100.0)::numeric, 2),
              timestamptz '2026-01-01' + i * interval '37 seconds'
       from generate_series(1, $4::int) i`,
      [tenant.id, seed.portfolios, seed.orders, counts.trades],
    );
    await tx.unsafe(
      `insert into market_data (tenant_id, symbol, bar_time, open, high, low, close, volume)
       select $1, (array['AAPL','MSFT','NVDA','TSLA'])[1 + i % 4], timestamptz '2026-03-01' + (i / 4) * interval '1 minute',
              p, p + 1, p - 1, p + 0.5, 100 + i % 977
       from generate_series(0, $2::int - 1) i, lateral (select round((150 + sin(i / 500.0) * 20)::numeric, 6) as p) x`,
      [tenant.id, counts.bars],
    );
    await tx.unsafe(
      `insert into market_data_1h (tenant_id, symbol, bucket, open, high, low, close, volume, bars)
       select $1, symbol, time_bucket('1 hour', bar_time) as b,
              (array_agg(open order by bar_time))[1], max(high), min(low), (array_agg(close order by bar_time desc))[1], sum(volume), count(*)
       from market_data group by symbol, b`,
      [tenant.id],
    );
    // The HNSW index is built once after the rows are in (as a restore does): much faster than row by row.
    const [hnsw] = await tx.unsafe(`select pg_get_indexdef('embeddings_embedding_hnsw_idx'::regclass) as def`);
    await tx.unsafe('drop index embeddings_embedding_hnsw_idx');
    await tx.unsafe(
      `insert into embeddings (tenant_id, external_id, content, metadata, embedding)
       select $1, 'doc-' || i, 'document ' || i, jsonb_build_object('topic', i % 50),
              (select array_agg(sin((i % 50) * 12.9898 + d * 78.233)
                                + (sin(i * 7.1 + d) + sin(i * 3.3 + d * 2.1) + sin(i * 0.77 + d * 0.53)) * 0.05)::vector(384)
               from generate_series(1, 384) d)
       from generate_series(1, $2::int) i`,
      [tenant.id, counts.embeddings],
    );
    await tx.unsafe(`set local maintenance_work_mem = '256MB'`);
    await tx.unsafe(hnsw!.def);
  });
}

export type TableDigest = { rows: number; digest: string };

/**
 * Per table: row count and an order-independent digest of every column but tenant_id
 * (or of the tables and columns of `layout`: a schema's layout at an older version).
 */
export async function tableDigests(
  su: Sql,
  schema: string,
  layout?: TableLayout[],
): Promise<Record<string, TableDigest>> {
  layout ??= await tableLayout(su, schema);
  const out: Record<string, TableDigest> = {};
  for (const t of layout) {
    const cols = t.columns.map((c) => `"${c.name}"`).join(', ');
    const [row] = await su.unsafe<{ rows: string; digest: string | null }[]>(
      `select count(*) as rows, md5(string_agg(h, ',' order by h)) as digest
       from (select md5(row(${cols})::text) as h from "${schema}"."${t.name}") x`,
    );
    out[t.name] = { rows: Number(row!.rows), digest: row!.digest ?? '' };
  }
  return out;
}

/** Polls until the backup is finished (status succeeded or failed). */
export async function runBackup(t: TestPlatform, tenantId: string): Promise<any> {
  const res = await t.http(`/v1/tenants/${tenantId}/backups`, { method: 'POST' });
  const body = await res.json();
  if (res.status !== 202) throw new Error(`backup not started: ${res.status} ${JSON.stringify(body)}`);
  await t.backups.runAndWait(body.id);
  return (await t.http(`/v1/tenants/${tenantId}/backups/${body.id}`)).json();
}

/**
 * A copy of a backup's objects under a new backup id (found through the store's index,
 * as a backup made elsewhere is), after `damage` edits them: how tests corrupt a backup.
 */
export async function damagedCopy(
  prefix: string,
  tenantId: string,
  backupId: string,
  damage: (objects: Map<string, Buffer>) => void,
): Promise<string> {
  const store = testStore(prefix);
  const id = randomUUID();
  const from = `${prefix}/tenants/${tenantId}/${backupId}/`;
  const objects = new Map<string, Buffer>();
  for (const key of await store.list(from)) {
    const res = await store.client.send(new GetObjectCommand({ Bucket: store.config.bucket, Key: key }));
    objects.set(key.slice(from.length), Buffer.from(await res.Body!.transformToByteArray()));
  }
  const manifest = JSON.parse(objects.get('manifest.json')!.toString());
  manifest.backupId = id;
  objects.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
  damage(objects);
  for (const [name, body] of objects) {
    await store.client.send(
      new PutObjectCommand({
        Bucket: store.config.bucket,
        Key: `${prefix}/tenants/${tenantId}/${id}/${name}`,
        Body: body,
      }),
    );
  }
  await store.client.send(
    new PutObjectCommand({
      Bucket: store.config.bucket,
      Key: `${prefix}/index/${id}.json`,
      Body: JSON.stringify({ backupId: id, tenantId }),
    }),
  );
  return id;
}

/** Flips one byte in the middle of an object (its checksum no longer matches). */
export const flipByte = (object: string) => (objects: Map<string, Buffer>) => {
  const body = objects.get(object)!;
  body[Math.floor(body.length / 2)]! ^= 0x01;
};

/** Rewrites a backup as builds before zstd wrote it: format 1, gzip objects. */
export const asFormat1 = (objects: Map<string, Buffer>) => {
  const manifest = JSON.parse(objects.get('manifest.json')!.toString());
  for (const table of manifest.tables) {
    const gzip = gzipSync(decompress(objects.get(table.object)!), { level: 1 });
    objects.delete(table.object);
    table.object = table.object.replace(/\.bin\.zst$/, '.bin.gz');
    table.bytes = gzip.length;
    table.sha256 = createHash('sha256').update(gzip).digest('hex');
    objects.set(table.object, gzip);
  }
  manifest.formatVersion = 1;
  manifest.encoding.compression = 'gzip';
  objects.set('manifest.json', Buffer.from(JSON.stringify(manifest)));
};
