/**
 * Portfolios: create, list, get, rename, delete; and a portfolio's positions with
 * unrealized P&L against the latest market price.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db/connect.ts';
import { withTenant } from '../db/with-tenant.ts';
import { afterCursor, cursorMicros, decodeCursor, toPage } from '../http/cursor.ts';
import { jsonBody, queryParams } from '../http/body.ts';
import { notFound } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { pageQuery, pathId } from './common.ts';

const createPortfolio = z.strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(200, 'must be at most 200 characters'),
  baseCurrency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be a three-letter ISO 4217 code, e.g. USD')
    .default('USD'),
});
const updatePortfolio = z.strictObject({ name: createPortfolio.shape.name });
const listQuery = z.strictObject(pageQuery);

export const portfolioView = z.object({
  id: z.string(),
  name: z.string(),
  baseCurrency: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export const positionView = z.object({
  symbol: z.string(),
  quantity: z.string(),
  averagePrice: z.string(),
  realizedPnl: z.string(),
  lastPrice: z.string().nullable(),
  marketValue: z.string().nullable(),
  unrealizedPnl: z.string().nullable(),
  updatedAt: z.string(),
});

type Row = { id: string; name: string; base_currency: string; created_at: Date; updated_at: Date; created_us?: string };
const view = (r: Row) => ({
  id: r.id,
  name: r.name,
  baseCurrency: r.base_currency,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function portfolioRoutes(app: Sql, docs: OpenApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'portfolios';

  docs.add({
    method: 'post',
    path: '/v1/portfolios',
    tag,
    auth: 'tenant',
    summary: 'Create a portfolio',
    body: createPortfolio,
    response: portfolioView,
    status: 201,
  });
  routes.post('/portfolios', async (c) => {
    const input = await jsonBody(c, createPortfolio);
    const [row] = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx<Row[]>`
      insert into portfolios (name, base_currency) values (${input.name}, ${input.baseCurrency}) returning *`,
    );
    return c.json(view(row!), 201);
  });

  docs.add({
    method: 'get',
    path: '/v1/portfolios',
    tag,
    auth: 'tenant',
    summary: 'List portfolios (oldest first)',
    query: listQuery,
  });
  routes.get('/portfolios', async (c) => {
    const q = queryParams(c, listQuery);
    const after = decodeCursor(q.cursor);
    const rows = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx<Row[]>`
      select *, ${tx.unsafe(cursorMicros('created_at'))} as created_us from portfolios
      where true ${afterCursor(tx, 'created_at', after)}
      order by created_at, id limit ${q.limit + 1}`,
      { readOnly: true },
    );
    return c.json(toPage(rows, q.limit, (r) => [r.created_us!, r.id], view));
  });

  docs.add({
    method: 'get',
    path: '/v1/portfolios/{id}',
    tag,
    auth: 'tenant',
    summary: 'Get a portfolio',
    response: portfolioView,
  });
  routes.get('/portfolios/:id', async (c) => {
    const id = pathId(c, 'portfolio');
    const [row] = await withTenant(app, c.get('tenant'), (tx) => tx<Row[]>`select * from portfolios where id = ${id}`, {
      readOnly: true,
    });
    if (!row) throw notFound('portfolio', id);
    return c.json(view(row));
  });

  docs.add({
    method: 'patch',
    path: '/v1/portfolios/{id}',
    tag,
    auth: 'tenant',
    summary: 'Rename a portfolio',
    body: updatePortfolio,
    response: portfolioView,
  });
  routes.patch('/portfolios/:id', async (c) => {
    const id = pathId(c, 'portfolio');
    const input = await jsonBody(c, updatePortfolio);
    const [row] = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx<Row[]>`update portfolios set name = ${input.name} where id = ${id} returning *`,
    );
    if (!row) throw notFound('portfolio', id);
    return c.json(view(row));
  });

  docs.add({
    method: 'delete',
    path: '/v1/portfolios/{id}',
    tag,
    auth: 'tenant',
    summary: 'Delete a portfolio with its orders, trades and positions',
    status: 204,
  });
  routes.delete('/portfolios/:id', async (c) => {
    const id = pathId(c, 'portfolio');
    const deleted = await withTenant(
      app,
      c.get('tenant'),
      (tx) => tx`delete from portfolios where id = ${id} returning id`,
    );
    if (deleted.length === 0) throw notFound('portfolio', id);
    return c.body(null, 204);
  });

  docs.add({
    method: 'get',
    path: '/v1/portfolios/{id}/positions',
    tag,
    auth: 'tenant',
    summary: 'Positions with unrealized P&L from the latest bar close',
    response: z.object({ items: z.array(positionView) }),
  });
  routes.get('/portfolios/:id/positions', async (c) => {
    const id = pathId(c, 'portfolio');
    const { exists, rows } = await withTenant(
      app,
      c.get('tenant'),
      async (tx) => {
        const [[portfolio], rows] = await Promise.all([
          tx`select 1 from portfolios where id = ${id}`,
          tx`
          select p.symbol, trim_scale(p.quantity)::text as quantity, trim_scale(p.average_price)::text as average_price,
                 trim_scale(p.realized_pnl)::text as realized_pnl, p.updated_at, trim_scale(m.close)::text as last_price,
                 trim_scale(p.quantity * m.close)::text as market_value,
                 trim_scale(round(p.quantity * (m.close - p.average_price), 10))::text as unrealized_pnl
          from positions p
          left join lateral (select close from market_data where symbol = p.symbol order by bar_time desc limit 1) m on true
          where p.portfolio_id = ${id}
          order by p.symbol`,
        ]);
        return { exists: Boolean(portfolio), rows };
      },
      { readOnly: true },
    );
    if (!exists) throw notFound('portfolio', id);
    return c.json({
      items: rows.map((r) => ({
        symbol: r.symbol,
        quantity: r.quantity,
        averagePrice: r.average_price,
        realizedPnl: r.realized_pnl,
        lastPrice: r.last_price,
        marketValue: r.market_value,
        unrealizedPnl: r.unrealized_pnl,
        updatedAt: (r.updated_at as Date).toISOString(),
      })),
    });
  });

  return routes;
}
