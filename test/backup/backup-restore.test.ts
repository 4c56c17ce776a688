import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantClient, vector, type TenantClient } from '../support/tenant-client.ts';
import type { TestPlatform } from '../support/platform.ts';
import { backupPlatform, runBackup, seedBulk, tableDigests, testPrefix, testStore } from './support.ts';
import { tableLayout } from '../../src/backup/snapshot.ts';

// One database backs up, another (same cluster, its own control plane) restores: the
// way a tenant moves between servers.
let source: TestPlatform;
let target: TestPlatform;
let acme: TenantClient;
let portfolio: string;
const prefix = testPrefix('equality');

beforeAll(async () => {
  // Errors are logged: none is expected here, and an unexpected 500 then shows its cause in the run's output.
  const logged = { env: { LOG_LEVEL: 'error' } };
  [source, target] = await Promise.all([backupPlatform(prefix, logged), backupPlatform(prefix, logged)]);
  acme = await tenantClient(source, 'acme');
  // Through the API: portfolios, orders and fills that move positions.
  const portfolios = [];
  for (const name of ['Main', 'Hedge', 'Research'])
    portfolios.push((await acme.ok('POST', '/v1/portfolios', { name })).id as string);
  portfolio = portfolios[0]!;
  const orders = [];
  for (const [i, symbol] of ['AAPL', 'MSFT', 'NVDA'].entries()) {
    const order = await acme.ok('POST', '/v1/orders', {
      portfolioId: portfolio,
      symbol,
      side: 'buy',
      type: 'limit',
      quantity: '10',
      limitPrice: `${100 + i}`,
    });
    orders.push(order.id as string);
    await acme.ok('POST', '/v1/trades', {
      portfolioId: portfolio,
      orderId: order.id,
      symbol,
      side: 'buy',
      quantity: '4',
      price: `${99 + i}.5`,
      executedAt: '2026-02-01T10:00:00Z',
    });
  }
  // In bulk, as the owner: 100,000 trades, 100,000 bars (and their hourly rollups), 10,000 embeddings.
  await seedBulk(source.su, acme, { portfolios, orders }, { trades: 100_000, bars: 100_000, embeddings: 10_000 });
}, 240_000);

afterAll(async () => {
  await Promise.all([source?.close(), target?.close()]);
});

describe('backup and restore of a tenant', () => {
  it('restores into a new tenant on another database, equal table by table, through the API and in vector search', async () => {
    const backup = await runBackup(source, acme.id);
    expect(backup).toMatchObject({ status: 'succeeded', tenantId: acme.id, attempts: 1 });
    expect(backup.tables).toMatchObject({
      trades: 100_003,
      market_data: 100_000,
      embeddings: 10_000,
      portfolios: 3,
      orders: 3,
      positions: 3,
    });
    expect(backup.sizeBytes).toBeGreaterThan(0);
    expect(backup.durationMs).toBeGreaterThan(0);

    // What is in the store: one object per table, the manifest, the index entry.
    const keys = await testStore(prefix).list('');
    expect(keys).toContain(`${prefix}/tenants/${acme.id}/${backup.id}/manifest.json`);
    expect(keys).toContain(`${prefix}/tenants/${acme.id}/${backup.id}/trades.bin.zst`);
    expect(keys).toContain(`${prefix}/index/${backup.id}.json`);
    expect(keys.filter((k) => k.includes('_hyper_'))).toEqual([]);
    // zstd: rows of numbers and text shrink severalfold; float vectors barely, and never grow
    // by more than zstd's block headers.
    const manifest = (await testStore(prefix).getJson(`${prefix}/tenants/${acme.id}/${backup.id}/manifest.json`)) as {
      formatVersion: number;
      encoding: { compression: string };
      tables: { name: string; bytes: number; rawBytes: number }[];
    };
    expect(manifest).toMatchObject({ formatVersion: 2, encoding: { compression: 'zstd' } });
    // Read largest table first, listed in creation order: a restore loads foreign-key targets first.
    expect(manifest.tables.map((t) => t.name)).toEqual((await tableLayout(source.su, acme.schema)).map((t) => t.name));
    const stored = Object.fromEntries(manifest.tables.map((t) => [t.name, t]));
    expect(stored.trades!.bytes).toBeLessThan(stored.trades!.rawBytes / 3);
    expect(stored.embeddings!.bytes).toBeLessThan(stored.embeddings!.rawBytes * 1.01);

    const res = await target.http('/v1/tenants', {
      method: 'POST',
      json: { slug: 'acme-moved', name: 'Acme (moved)', plan: 'pro', restoreFrom: { backupId: backup.id } },
    });
    const restored = await res.json();
    expect(res.status, JSON.stringify(restored)).toBe(201);
    expect(restored.id).not.toBe(acme.id);

    // Rows and checksums per table, every column but tenant_id.
    const before = await tableDigests(source.su, acme.schema);
    const after = await tableDigests(target.su, restored.schema);
    expect(after).toEqual(before);
    expect(before.trades!.rows).toBe(100_003);
    // Every restored row carries the new tenant's id (else RLS would hide it).
    for (const table of Object.keys(before)) {
      const [row] = await target.su.unsafe(
        `select count(*) filter (where tenant_id <> $1) as foreign from "${restored.schema}"."${table}"`,
        [restored.id],
      );
      expect(Number(row!.foreign), table).toBe(0);
    }
    // Hypertables are hypertables again, with chunks in the tenant's schema.
    const [chunks] = await target.su`
      select count(*) as n from timescaledb_information.chunks where hypertable_schema = ${restored.schema} and chunk_schema = ${restored.schema}`;
    expect(Number(chunks!.n)).toBeGreaterThan(10);

    // Through the API: the same positions, candles and search answers.
    const issued = await (
      await target.http(`/v1/tenants/${restored.id}/keys`, { method: 'POST', json: { name: 'tests' } })
    ).json();
    const call = async (path: string, init: { method?: string; json?: unknown } = {}) => {
      const r = await target.http(path, { ...init, token: issued.key });
      expect(r.status, path).toBeLessThan(300);
      return r.json();
    };
    expect(await call(`/v1/portfolios/${portfolio}/positions`)).toEqual(
      await acme.ok('GET', `/v1/portfolios/${portfolio}/positions`),
    );
    const candles = '/v1/market-data/candles?symbol=AAPL&from=2026-03-01T00:00:00Z&to=2026-03-20T00:00:00Z&bucket=1d';
    const sourceCandles = await acme.ok('GET', candles);
    expect(sourceCandles.items.length).toBeGreaterThan(10);
    expect(await call(candles)).toEqual(sourceCandles);
    const hourly = candles.replace('bucket=1d', 'bucket=1h');
    expect(await call(hourly)).toEqual(await acme.ok('GET', hourly));

    // The HNSW index answers: an exact stored vector comes back first, k results.
    const [doc] = await target.su.unsafe(
      `select id, embedding::text as v from "${restored.schema}".embeddings where external_id = 'doc-777'`,
    );
    const search = await call('/v1/embeddings/search', { method: 'POST', json: { vector: JSON.parse(doc!.v), k: 10 } });
    expect(search.items).toHaveLength(10);
    expect(search.items.map((i: { id: string }) => i.id)).toContain(doc!.id);
    const plan = await target.su.begin(async (tx) => {
      await tx.unsafe(`set local search_path = "${restored.schema}", extensions`);
      return tx.unsafe(
        `explain select id from embeddings order by embedding <=> '${JSON.stringify(vector(3))}' limit 10`,
      );
    });
    expect(plan.map((p) => p['QUERY PLAN']).join('\n')).toMatch(/embeddings_embedding_hnsw_idx/);

    // The restored tenant passes the isolation validator like any other (RLS forced again, grants, owners).
    const { validate } = await import('../../src/isolation/validator.ts');
    const report = await validate(target.control, { tenant: restored.id });
    expect(report.outcome, JSON.stringify(report)).toBe('clean');
  }, 300_000);
});
