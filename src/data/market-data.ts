/**
 * Market data: batch ingest of OHLCV bars (up to 50,000, upserted on symbol and time),
 * candles by symbol, time range and bucket with time_bucket, latest bar per symbol.
 * Each ingest recomputes the hourly rollups (market_data_1h) of the hours it touched, in
 * the same transaction; hourly and daily candles read those instead of the bars.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { withTenant, type Runtime } from '../db/with-tenant.ts';
import { AppError } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { assertChunkBudget, assertTimeWindow, type ChunkLimits } from './chunk-budget.ts';
import { batchOf, symbol, timestamp } from './common.ts';
import { decimalString, isDecimal, parseDecimal } from './decimal.ts';

export const BAR_BATCH_LIMIT = 50_000;
const MAX_CANDLES = 10_000;
const BUCKETS = { '1m': 60, '5m': 300, '15m': 900, '1h': 3600, '1d': 86400 } as const;

const bar = z
  .strictObject({
    symbol,
    time: timestamp,
    open: decimalString(),
    high: decimalString(),
    low: decimalString(),
    close: decimalString(),
    volume: decimalString().default('0'),
  })
  .refine(
    (b) => {
      if (![b.open, b.high, b.low, b.close].every(isDecimal)) return true; // already reported per field
      const [o, h, l, c] = [b.open, b.high, b.low, b.close].map(parseDecimal) as [bigint, bigint, bigint, bigint];
      return l <= h && l <= o && l <= c && h >= o && h >= c;
    },
    { message: 'needs low <= open, close <= high', path: ['low'] },
  );
const batch = z.strictObject({ bars: z.array(bar).min(1, 'must hold at least one bar') });

const candlesQuery = z
  .strictObject({
    symbol,
    from: timestamp,
    to: timestamp,
    bucket: z.enum(Object.keys(BUCKETS) as [keyof typeof BUCKETS]),
  })
  .refine((q) => Date.parse(q.from) < Date.parse(q.to), { message: 'must be after from', path: ['to'] });
const latestQuery = z.strictObject({
  symbols: z
    .string()
    .transform((s) => s.split(',').filter(Boolean))
    .pipe(z.array(symbol).min(1).max(500, 'at most 500 symbols')),
});

const candleView = z.object({
  time: z.string(),
  open: z.string(),
  high: z.string(),
  low: z.string(),
  close: z.string(),
  volume: z.string(),
  bars: z.number(),
});
const latestView = candleView.omit({ bars: true }).extend({ symbol: z.string() });

/**
 * Candles of `seconds` per bucket, as SQL with parameters ($1 bucket interval, $2 symbol,
 * $3 from, $4 to). Buckets of an hour or more aggregate the hourly rollups (whole hours
 * of a range: a range that starts or ends inside an hour takes that whole hour); smaller
 * ones aggregate the bars.
 */
export function candleSql(seconds: number): string {
  const [table, time, bars, from] =
    seconds >= 3600
      ? ['market_data_1h', 'bucket', 'sum(bars)', `time_bucket('1 hour', $3::timestamptz)`]
      : ['market_data', 'bar_time', 'count(*)', '$3'];
  return `
    select time_bucket($1::interval, ${time}) as time,
           trim_scale(first(open, ${time}))::text as open, trim_scale(max(high))::text as high,
           trim_scale(min(low))::text as low, trim_scale(last(close, ${time}))::text as close,
           trim_scale(sum(volume))::text as volume, ${bars}::int as bars
    from ${table}
    where symbol = $2 and ${time} >= ${from} and ${time} < $4
    group by 1 order by 1`;
}

export function marketDataRoutes(app: Runtime, docs: OpenApi, limits: ChunkLimits): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'market data';
  const auth = 'tenant';

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/market-data:batch',
      tag,
      auth,
      summary: `Ingest up to ${BAR_BATCH_LIMIT} OHLCV bars (upsert on symbol and time)`,
      body: batch,
      readBody: batchOf('bars', BAR_BATCH_LIMIT),
      responses: { 201: z.object({ count: z.number() }) },
    },
    async (c, { body: { bars } }, reply) => {
      const seen = new Set<string>();
      bars.forEach((b, i) => {
        const key = `${b.symbol}@${Date.parse(b.time)}`;
        if (seen.has(key))
          throw new AppError(
            400,
            'duplicate_bar',
            'Duplicate bar in batch',
            `bars.${i}: a bar for ${b.symbol} at ${b.time} is already in this batch`,
            { field: `bars.${i}.time`, index: i },
          );
        seen.add(key);
      });
      const times = bars.map((b) => b.time);
      assertTimeWindow(times, limits, (i) => `bars.${i}.time`);
      const tenant = c.get('tenant');
      const count = await withTenant(app, tenant, async (tx) => {
        await assertChunkBudget(tx, tenant, ['market_data', 'market_data_1h'], times, limits);
        const result = await tx`
        insert into market_data (symbol, bar_time, open, high, low, close, volume)
        select symbol, time, open, high, low, close, volume
        from jsonb_to_recordset(${tx.json(bars)}) as x(symbol text, time timestamptz, open numeric, high numeric, low numeric, close numeric, volume numeric)
        on conflict (symbol, bar_time) do update
          set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume`;
        // Recomputed from the bars, not merged: a corrected bar replaces its old values exactly.
        // One range scan over the batch's symbols and hours, kept to the hours it touched.
        const hourOf = (time: string) => Math.floor(Date.parse(time) / 3_600_000) * 3_600_000;
        const touched = new Map(
          bars.map((b) => [
            `${b.symbol}@${hourOf(b.time)}`,
            { symbol: b.symbol, bucket: new Date(hourOf(b.time)).toISOString() },
          ]),
        );
        const hours = bars.map((b) => hourOf(b.time));
        await tx`
        insert into market_data_1h (symbol, bucket, open, high, low, close, volume, bars)
        select m.symbol, time_bucket('1 hour', m.bar_time), first(m.open, m.bar_time), max(m.high), min(m.low),
               last(m.close, m.bar_time), sum(m.volume), count(*)
        from market_data m
        where m.symbol = any(${[...new Set(bars.map((b) => b.symbol))]}::text[])
          and m.bar_time >= ${new Date(Math.min(...hours)).toISOString()} and m.bar_time < ${new Date(Math.max(...hours) + 3_600_000).toISOString()}
          and (m.symbol, time_bucket('1 hour', m.bar_time)) in (
            select symbol, bucket from jsonb_to_recordset(${tx.json([...touched.values()])}) as h(symbol text, bucket timestamptz))
        group by 1, 2
        on conflict (symbol, bucket) do update
          set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close, volume = excluded.volume, bars = excluded.bars`;
        return result.count;
      });
      return reply(201, { count });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/market-data/candles',
      tag,
      auth,
      summary: 'OHLCV candles for a symbol, bucketed with time_bucket',
      query: candlesQuery,
      responses: { 200: z.object({ items: z.array(candleView) }) },
    },
    async (c, { query: q }, reply) => {
      const seconds = BUCKETS[q.bucket];
      const candles = (Date.parse(q.to) - Date.parse(q.from)) / 1000 / seconds;
      if (candles > MAX_CANDLES) {
        throw new AppError(
          400,
          'range_too_large',
          'Range too large',
          `that range holds ${Math.ceil(candles)} ${q.bucket} candles; ask for at most ${MAX_CANDLES}`,
          { field: 'to' },
        );
      }
      const rows = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx.unsafe(candleSql(seconds), [`${seconds} seconds`, q.symbol, q.from, q.to]),
        { readOnly: true },
      );
      const items = rows.map(
        (r) => ({ ...r, time: (r.time as Date).toISOString() }) as unknown as z.input<typeof candleView>,
      );
      return reply(200, { items });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/market-data/latest',
      tag,
      auth,
      summary: 'Latest bar of each symbol (comma-separated symbols)',
      query: latestQuery,
      responses: { 200: z.object({ items: z.array(latestView) }) },
    },
    async (c, { query: { symbols } }, reply) => {
      const rows = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx`
      select s.symbol, m.bar_time, trim_scale(m.open)::text as open, trim_scale(m.high)::text as high,
             trim_scale(m.low)::text as low, trim_scale(m.close)::text as close, trim_scale(m.volume)::text as volume
      from unnest(${symbols}::text[]) as s(symbol)
      cross join lateral (select * from market_data where symbol = s.symbol order by bar_time desc limit 1) m
      order by s.symbol`,
        { readOnly: true },
      );
      const items = rows.map((r) => ({
        symbol: r.symbol,
        time: (r.bar_time as Date).toISOString(),
        open: r.open,
        high: r.high,
        low: r.low,
        close: r.close,
        volume: r.volume,
      }));
      return reply(200, { items });
    },
  );

  return routes;
}
