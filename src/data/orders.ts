/**
 * Orders: place (market or limit, buy or sell), list with filters, get, cancel. Status
 * follows the order state machine: open -> partially_filled -> filled (by fills), and
 * open | partially_filled -> cancelled. Anything else is a 409.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { withTenant, type TenantSql, type Runtime } from '../db/with-tenant.ts';
import { AppError, notFound } from '../errors.ts';
import { afterCursor, cursorMicros, decodeCursor, pageOf, toPage } from '../http/cursor.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { idParams, pageQuery, side, symbol, uuid } from './common.ts';
import { decimalString } from './decimal.ts';
import { SQLSTATE } from '../db/sqlstate.ts';

export const ORDER_STATUSES = ['open', 'partially_filled', 'filled', 'cancelled'] as const;

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
  type: z.enum(['market', 'limit']),
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
  clientOrderId: r.client_order_id ?? null,
  symbol: r.symbol!,
  side: r.side as 'buy' | 'sell',
  type: r.type as 'market' | 'limit',
  quantity: r.quantity!,
  limitPrice: r.limit_price ?? null,
  filledQuantity: r.filled_quantity!,
  averageFillPrice: r.average_fill_price ?? null,
  status: r.status as (typeof ORDER_STATUSES)[number],
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function orderRoutes(app: Runtime, docs: OpenApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'orders';
  const auth = 'tenant';
  const params = idParams('order');
  const select = (tx: TenantSql) => tx.unsafe(ORDER_COLUMNS);

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/orders',
      tag,
      auth,
      summary: 'Place an order',
      body: placeOrder,
      responses: { 201: orderView },
    },
    async (c, { body: o }, reply) => {
      try {
        const [row] = await withTenant(
          app,
          c.get('tenant'),
          (tx) => tx<Row[]>`
          insert into orders (portfolio_id, client_order_id, symbol, side, type, quantity, limit_price)
          values (${o.portfolioId}, ${o.clientOrderId ?? null}, ${o.symbol}, ${o.side}, ${o.type}, ${o.quantity}, ${o.limitPrice ?? null})
          returning ${select(tx)}`,
        );
        return reply(201, orderFromRow(row!));
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
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/orders',
      tag,
      auth,
      summary: 'List orders (oldest first), filtered',
      query: listQuery,
      responses: { 200: pageOf(orderView) },
    },
    async (c, { query: q }, reply) => {
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
      return reply(
        200,
        toPage(rows, q.limit, (r) => [r.created_us!, r.id!], orderFromRow),
      );
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/orders/{id}',
      tag,
      auth,
      summary: 'Get an order',
      params,
      responses: { 200: orderView },
    },
    async (c, { params: { id } }, reply) => {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`select ${select(tx)} from orders where id = ${id}`,
        { readOnly: true },
      );
      if (!row) throw notFound('order', id);
      return reply(200, orderFromRow(row));
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/orders/{id}/cancel',
      tag,
      auth,
      summary: 'Cancel an open or partially filled order',
      params,
      responses: { 200: orderView },
    },
    async (c, { params: { id } }, reply) => {
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
      return reply(200, orderFromRow(row));
    },
  );

  return routes;
}
