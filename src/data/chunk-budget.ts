/**
 * Bounds on what one write can do to a tenant's hypertables. Every distinct time range
 * a write reaches is a chunk: a table with its indexes and constraints, a dozen locks
 * while the transaction lasts, and catalog rows that stay forever (TimescaleDB scans
 * those rows on every `create_hypertable`, so they slow provisioning for everyone).
 * One request of 500 bars on 500 different days made 500 chunks and held 6,000 locks;
 * a few at once exhaust the server's shared lock table for every database. So:
 *
 * - times must fall in a window (from `earliestTime`, to `maxAhead` past now);
 * - one request may touch at most `maxChunksPerRequest` chunks;
 * - a tenant may own at most its plan's `chunkQuota` chunks in all.
 *
 * Chunks are counted from TimescaleDB's catalog inside the request's own transaction.
 * Two concurrent requests of one tenant may each pass the quota check: the overshoot is
 * bounded by the tenant's concurrency cap times the per-request limit.
 *
 * @example
 * assertTimeWindow(bars.map((b) => b.time), limits, (i) => `bars.${i}.time`);
 * await withTenant(app, tenant, async (tx) => { await assertChunkBudget(tx, tenant, ['market_data'], times, limits); ... });
 */
import type { TenantContext, TenantSql } from '../db/with-tenant.ts';
import { AppError } from '../errors.ts';

export type ChunkLimits = { earliestTime: Date; maxAheadMs: number; maxChunksPerRequest: number };

const HOUR_MS = 3_600_000;

/** A 400 naming the first time outside [earliestTime, now + maxAhead]. */
export function assertTimeWindow(times: string[], limits: ChunkLimits, field: (index: number) => string): void {
  const earliest = limits.earliestTime.getTime();
  const latest = Date.now() + limits.maxAheadMs;
  const index = times.findIndex((t) => {
    const ms = Date.parse(t);
    return ms < earliest || ms > latest;
  });
  if (index < 0) return;
  const name = field(index);
  throw new AppError(
    400,
    'time_out_of_range',
    'Time out of range',
    `${name}: ${times[index]} is outside the accepted range, ${limits.earliestTime.toISOString()} to ${new Date(latest).toISOString()}`,
    { field: name, ...(name.includes('.') ? { index: Number(name.split('.')[1]) } : {}) },
  );
}

/**
 * Refuses, before any row is written, a write to `tables` at `times` that would touch
 * more chunks than one request may, or bring the tenant past its chunk quota.
 * Chunk intervals are whole hours (days, in the template), so hours stand in for times.
 */
export async function assertChunkBudget(
  tx: TenantSql,
  tenant: TenantContext,
  tables: string[],
  times: string[],
  limits: ChunkLimits,
): Promise<void> {
  const hours = [...new Set(times.map((t) => Math.floor(Date.parse(t) / HOUR_MS) * HOUR_MS))].map((ms) =>
    String(ms * 1000),
  );
  const [budget] = await tx<{ touched: number; created: number; existing: number }[]>`
    with h as materialized (
      select h.id, h.table_name, d.id as dim, d.interval_length as len
      from _timescaledb_catalog.hypertable h join _timescaledb_catalog.dimension d on d.hypertable_id = h.id
      where h.schema_name = ${tenant.schema}
    ), touched as materialized (
      select distinct h.id, h.dim, t - (((t % h.len) + h.len) % h.len) as start
      from h cross join unnest(${hours}::bigint[]) t
      where h.table_name = any(${tables}::text[])
    )
    select (select count(*) from touched)::int as touched,
           (select count(*) from touched x where not exists (
              select 1 from _timescaledb_catalog.dimension_slice s where s.dimension_id = x.dim and s.range_start = x.start))::int as created,
           (select count(*) from _timescaledb_catalog.chunk c where c.hypertable_id in (select id from h) and not c.dropped)::int as existing`;
  const { touched, created, existing } = budget!;
  if (touched > limits.maxChunksPerRequest) {
    throw new AppError(
      422,
      'too_many_chunks',
      'Request spans too many chunks',
      `this write reaches ${touched} chunks (time partitions of ${tables.join(', ')}); one request may reach at most ${limits.maxChunksPerRequest}: split it by time`,
      { limit: limits.maxChunksPerRequest, chunks: touched },
    );
  }
  if (created > 0 && existing + created > tenant.chunkQuota) {
    throw new AppError(
      409,
      'chunk_quota_exceeded',
      'Chunk quota exceeded',
      `this write would add ${created} chunks to the tenant's ${existing}; its plan allows ${tenant.chunkQuota}. Delete old data or change plan`,
      { quota: tenant.chunkQuota, chunks: existing, adding: created },
    );
  }
}
