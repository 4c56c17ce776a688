/**
 * Trades (fills): record one, record a batch of up to 10,000, list. Recording moves the
 * portfolio's positions and the orders' fill state in the same transaction (fills.ts).
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db/connect.ts';
import { withTenant } from '../db/with-tenant.ts';
import { afterCursor, cursorMicros, decodeCursor, toPage } from '../http/cursor.ts';
import { jsonBody, queryParams } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { batchBody, pageQuery, timestamp, uuid } from './common.ts';
import { decimalString } from './decimal.ts';
import { assertChunkBudget, assertTimeWindow, type ChunkLimits } from './chunk-budget.ts';
import { recordFills } from './fills.ts';
import { side, symbol } from './orders.ts';

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

const positionView = z.object({
  portfolioId: z.string(),
  symbol: z.string(),
  quantity: z.string(),
  averagePrice: z.string(),
  realizedPnl: z.string(),
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
  orderId: r.order_id,
  symbol: r.symbol!,
  side: r.side as 'buy' | 'sell',
  quantity: r.quantity!,
  price: r.price!,
  fee: r.fee!,
  executedAt: r.executed_at.toISOString(),
});
const COLUMNS = `id, portfolio_id, order_id, symbol, side, trim_scale(quantity)::text as quantity, trim_scale(price)::text as price,
  trim_scale(fee)::text as fee, executed_at`;

export function tradeRoutes(app: Sql, docs: OpenApi, limits: ChunkLimits): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'trades';

  docs.add({
    method: 'post',
    path: '/v1/trades',
    tag,
    auth: 'tenant',
    summary: 'Record a fill; updates the position and the order',
    body: trade,
    status: 201,
    response: z.object({ trade: tradeView, position: positionView }),
  });
  routes.post('/trades', async (c) => {
    const input = await jsonBody(c, trade);
    assertTimeWindow([input.executedAt], limits, () => 'executedAt');
    const tenant = c.get('tenant');
    const { row, position } = await withTenant(app, tenant, async (tx) => {
      await assertChunkBudget(tx, tenant, ['trades'], [input.executedAt], limits);
      const { ids, positions } = await recordFills(tx, [input], '');
      const [row] = await tx<Row[]>`select ${tx.unsafe(COLUMNS)} from trades where id = ${ids[0]!}`;
      return { row: row!, position: positions[0] };
    });
    return c.json({ trade: view(row), position }, 201);
  });

  docs.add({
    method: 'post',
    path: '/v1/trades:batch',
    tag,
    auth: 'tenant',
    summary: `Record up to ${TRADE_BATCH_LIMIT} fills at once (all or nothing)`,
    body: batch,
    status: 201,
    response: z.object({ count: z.number(), ids: z.array(z.string()), positions: z.array(positionView) }),
  });
  routes.post('/trades:batch', async (c) => {
    const input = await batchBody(c, 'trades', TRADE_BATCH_LIMIT, batch);
    const times = input.trades.map((t) => t.executedAt);
    assertTimeWindow(times, limits, (i) => `trades.${i}.executedAt`);
    const tenant = c.get('tenant');
    const { ids, positions } = await withTenant(app, tenant, async (tx) => {
      await assertChunkBudget(tx, tenant, ['trades'], times, limits);
      return recordFills(tx, input.trades, 'trades');
    });
    return c.json({ count: ids.length, ids, positions }, 201);
  });

  docs.add({
    method: 'get',
    path: '/v1/trades',
    tag,
    auth: 'tenant',
    summary: 'List fills (oldest first), by portfolio, symbol and time range',
    query: listQuery,
  });
  routes.get('/trades', async (c) => {
    const q = queryParams(c, listQuery);
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
    return c.json(toPage(rows, q.limit, (r) => [r.executed_us!, r.id!], view));
  });

  return routes;
}
