/**
 * Trades (fills): record one, record a batch of up to 10,000, list. Recording moves the
 * portfolio's positions and the orders' fill state in the same transaction (fills.ts).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { withTenant, type Runtime } from '../db/with-tenant.ts';
import { afterCursor, cursorMicros, decodeCursor, pageOf, toPage } from '../http/cursor.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { batchOf, pageQuery, positionView, side, symbol, timestamp, uuid } from './common.ts';
import { decimalString } from './decimal.ts';
import { assertChunkBudget, assertTimeWindow, type ChunkLimits } from './chunk-budget.ts';
import { recordFills } from './fills.ts';

export const TRADE_BATCH_LIMIT = 10_000;

const trade = z.strictObject({
  portfolioId: uuid,
  orderId: uuid.optional(),
  symbol,
  side,
  quantity: decimalString({ positive: true }),
  price: decimalString(),
  fee: decimalString().optional(),
  executedAt: timestamp,
});
const batch = z.strictObject({ trades: z.array(trade).min(1, 'must hold at least one trade') });
const listQuery = z.strictObject({
  ...pageQuery,
  portfolioId: uuid.optional(),
  symbol: symbol.optional(),
  from: timestamp.optional(),
  to: timestamp.optional(),
});

const tradeView = z.object({
  id: z.string(),
  portfolioId: z.string(),
  orderId: z.string().nullable(),
  symbol: z.string(),
  side,
  quantity: z.string(),
  price: z.string(),
  fee: z.string(),
  executedAt: z.string(),
});

type Row = Record<string, string | null> & { executed_at: Date; executed_us?: string };
const view = (r: Row) => ({
  id: r.id!,
  portfolioId: r.portfolio_id!,
  orderId: r.order_id ?? null,
  symbol: r.symbol!,
  side: r.side as 'buy' | 'sell',
  quantity: r.quantity!,
  price: r.price!,
  fee: r.fee!,
  executedAt: r.executed_at.toISOString(),
});
const COLUMNS = `id, portfolio_id, order_id, symbol, side, trim_scale(quantity)::text as quantity, trim_scale(price)::text as price,
  trim_scale(fee)::text as fee, executed_at`;

export function tradeRoutes(app: Runtime, docs: OpenApi, limits: ChunkLimits): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'trades';
  const auth = 'tenant';

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/trades',
      tag,
      auth,
      summary: 'Record a fill; updates the position and the order',
      body: trade,
      responses: { 201: z.object({ trade: tradeView, position: positionView }) },
    },
    async (c, { body: input }, reply) => {
      assertTimeWindow([input.executedAt], limits, () => 'executedAt');
      const tenant = c.get('tenant');
      const { row, position } = await withTenant(app, tenant, async (tx) => {
        await assertChunkBudget(tx, tenant, ['trades'], [input.executedAt], limits);
        const { ids, positions } = await recordFills(tx, [input], '');
        const [row] = await tx<Row[]>`select ${tx.unsafe(COLUMNS)} from trades where id = ${ids[0]!}`;
        return { row: row!, position: positions[0]! };
      });
      return reply(201, { trade: view(row), position });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/trades:batch',
      tag,
      auth,
      summary: `Record up to ${TRADE_BATCH_LIMIT} fills at once (all or nothing)`,
      body: batch,
      readBody: batchOf('trades', TRADE_BATCH_LIMIT),
      responses: { 201: z.object({ count: z.number(), ids: z.array(z.string()), positions: z.array(positionView) }) },
    },
    async (c, { body: input }, reply) => {
      const times = input.trades.map((t) => t.executedAt);
      assertTimeWindow(times, limits, (i) => `trades.${i}.executedAt`);
      const tenant = c.get('tenant');
      const { ids, positions } = await withTenant(app, tenant, async (tx) => {
        await assertChunkBudget(tx, tenant, ['trades'], times, limits);
        return recordFills(tx, input.trades, 'trades');
      });
      return reply(201, { count: ids.length, ids, positions });
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/trades',
      tag,
      auth,
      summary: 'List fills (oldest first), by portfolio, symbol and time range',
      query: listQuery,
      responses: { 200: pageOf(tradeView) },
    },
    async (c, { query: q }, reply) => {
      const after = decodeCursor(q.cursor);
      const rows = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`
        select ${tx.unsafe(COLUMNS)}, ${tx.unsafe(cursorMicros('executed_at'))} as executed_us from trades
        where true
          ${q.portfolioId ? tx`and portfolio_id = ${q.portfolioId}` : tx``}
          ${q.symbol ? tx`and symbol = ${q.symbol}` : tx``}
          ${q.from ? tx`and executed_at >= ${q.from}` : tx``}
          ${q.to ? tx`and executed_at < ${q.to}` : tx``}
          ${afterCursor(tx, 'executed_at', after)}
        order by executed_at, id limit ${q.limit + 1}`,
        { readOnly: true },
      );
      return reply(
        200,
        toPage(rows, q.limit, (r) => [r.executed_us!, r.id!], view),
      );
    },
  );

  return routes;
}
