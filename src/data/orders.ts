/**
 * Orders: place (market or limit, buy or sell), list with filters, get, cancel. Status
 * follows the order state machine: open -> partially_filled -> filled (by fills), and
 * open | partially_filled -> cancelled. Anything else is a 409.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db/connect.ts';
import { withTenant, type TenantSql } from '../db/with-tenant.ts';
import { AppError, notFound } from '../errors.ts';
import { afterCursor, cursorMicros, decodeCursor, toPage } from '../http/cursor.ts';
import { jsonBody, queryParams } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { pageQuery, pathId, uuid } from './common.ts';
import { decimalString } from './decimal.ts';
import { SQLSTATE } from '../db/sqlstate.ts';

export const ORDER_STATUSES = ['open', 'partially_filled', 'filled', 'cancelled'] as const;
export const symbol = z.string().regex(/^[A-Za-z0-9.\-_/:]{1,32}$/, 'must be 1-32 letters, digits or . - _ / :');
export const side = z.enum(['buy', 'sell']);

const placeOrder = z
  .strictObject({
    portfolioId: uuid,
    symbol,
    side,
    type: z.enum(['market', 'limit']),
    quantity: decimalString({ positive: true }),
    limitPrice: decimalString({ positive: true }).optional(),
    clientOrderId: z.string().min(1).max(64).optional(),
  })
  .refine((o) => (o.type === 'limit') === (o.limitPrice !== undefined), {
    message: 'a limit order needs limitPrice; a market order must not have one',
    path: ['limitPrice'],
  });

const listQuery = z.strictObject({
  ...pageQuery,
  portfolioId: uuid.optional(),
  status: z.enum(ORDER_STATUSES).optional(),
  symbol: symbol.optional(),
  side: side.optional(),
});

export const orderView = z.object({
  id: z.string(),
  portfolioId: z.string(),
  clientOrderId: z.string().nullable(),
  symbol: z.string(),
  side: side,
  type: z.string(),
  quantity: z.string(),
  limitPrice: z.string().nullable(),
  filledQuantity: z.string(),
  averageFillPrice: z.string().nullable(),
  status: z.enum(ORDER_STATUSES),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** Columns of an order as the API shows them (decimals without trailing zeros). */
export const ORDER_COLUMNS = `id, portfolio_id, client_order_id, symbol, side, type, trim_scale(quantity)::text as quantity,
  trim_scale(limit_price)::text as limit_price, trim_scale(filled_quantity)::text as filled_quantity,
  trim_scale(average_fill_price)::text as average_fill_price, status, created_at, updated_at`;

type Row = Record<string, string | null> & { created_at: Date; updated_at: Date; created_us?: string };
export const orderFromRow = (r: Row) => ({
  id: r.id!,
  portfolioId: r.portfolio_id!,
  clientOrderId: r.client_order_id,
  symbol: r.symbol!,
  side: r.side as 'buy' | 'sell',
  type: r.type!,
  quantity: r.quantity!,
  limitPrice: r.limit_price,
  filledQuantity: r.filled_quantity!,
  averageFillPrice: r.average_fill_price,
  status: r.status as (typeof ORDER_STATUSES)[number],
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function orderRoutes(app: Sql, docs: OpenApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'orders';
  const select = (tx: TenantSql) => tx.unsafe(ORDER_COLUMNS);

  docs.add({
    method: 'post',
    path: '/v1/orders',
    tag,
    auth: 'tenant',
    summary: 'Place an order',
    body: placeOrder,
    response: orderView,
    status: 201,
  });
  routes.post('/orders', async (c) => {
    const o = await jsonBody(c, placeOrder);
    try {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`
        insert into orders (portfolio_id, client_order_id, symbol, side, type, quantity, limit_price)
        values (${o.portfolioId}, ${o.clientOrderId ?? null}, ${o.symbol}, ${o.side}, ${o.type}, ${o.quantity}, ${o.limitPrice ?? null})
        returning ${select(tx)}`,
      );
      return c.json(orderFromRow(row!), 201);
    } catch (err) {
      const e = err as { code?: string; constraint_name?: string };
      if (e.code === SQLSTATE.foreignKeyViolation) throw notFound('portfolio', o.portfolioId);
      if (e.code === SQLSTATE.uniqueViolation) {
        throw new AppError(
          409,
          'duplicate_client_order_id',
          'Duplicate client order id',
          `clientOrderId ${JSON.stringify(o.clientOrderId)} is already used in this portfolio`,
          { field: 'clientOrderId' },
        );
      }
      throw err;
    }
  });

  docs.add({
    method: 'get',
    path: '/v1/orders',
    tag,
    auth: 'tenant',
    summary: 'List orders (oldest first), filtered',
    query: listQuery,
  });
  routes.get('/orders', async (c) => {
    const q = queryParams(c, listQuery);
    const after = decodeCursor(q.cursor);
    const rows = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx<Row[]>`
      select ${select(tx)}, ${tx.unsafe(cursorMicros('created_at'))} as created_us from orders
      where true
        ${q.portfolioId ? tx`and portfolio_id = ${q.portfolioId}` : tx``}
        ${q.status ? tx`and status = ${q.status}` : tx``}
        ${q.symbol ? tx`and symbol = ${q.symbol}` : tx``}
        ${q.side ? tx`and side = ${q.side}` : tx``}
        ${afterCursor(tx, 'created_at', after)}
      order by created_at, id limit ${q.limit + 1}`,
      { readOnly: true },
    );
    return c.json(toPage(rows, q.limit, (r) => [r.created_us!, r.id!], orderFromRow));
  });

  docs.add({
    method: 'get',
    path: '/v1/orders/{id}',
    tag,
    auth: 'tenant',
    summary: 'Get an order',
    response: orderView,
  });
  routes.get('/orders/:id', async (c) => {
    const id = pathId(c, 'order');
    const [row] = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx<Row[]>`select ${select(tx)} from orders where id = ${id}`,
      { readOnly: true },
    );
    if (!row) throw notFound('order', id);
    return c.json(orderFromRow(row));
  });

  docs.add({
    method: 'post',
    path: '/v1/orders/{id}/cancel',
    tag,
    auth: 'tenant',
    summary: 'Cancel an open or partially filled order',
    response: orderView,
  });
  routes.post('/orders/:id/cancel', async (c) => {
    const id = pathId(c, 'order');
    const row = await withTenant(app, c.get('tenant'), async (tx) => {
      const [current] = await tx<{ status: string }[]>`select status from orders where id = ${id} for update`;
      if (!current) throw notFound('order', id);
      if (current.status !== 'open' && current.status !== 'partially_filled') {
        throw new AppError(
          409,
          'illegal_transition',
          'Illegal order transition',
          `order is ${current.status}; only open or partially filled orders can be cancelled`,
        );
      }
      const [updated] = await tx<
        Row[]
      >`update orders set status = 'cancelled' where id = ${id} returning ${select(tx)}`;
      return updated!;
    });
    return c.json(orderFromRow(row));
  });

  return routes;
}
