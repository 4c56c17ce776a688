/**
 * Portfolios: create, list, get, rename, delete; and a portfolio's positions with
 * unrealized P&L against the latest market price.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { withTenant, type Runtime } from '../db/with-tenant.ts';
import { afterCursor, cursorMicros, decodeCursor, pageOf, toPage } from '../http/cursor.ts';
import { notFound } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { idParams, pageQuery, valuedPositionView } from './common.ts';

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

type Row = { id: string; name: string; base_currency: string; created_at: Date; updated_at: Date; created_us?: string };
const view = (r: Row) => ({
  id: r.id,
  name: r.name,
  baseCurrency: r.base_currency,
  createdAt: r.created_at.toISOString(),
  updatedAt: r.updated_at.toISOString(),
});

export function portfolioRoutes(app: Runtime, docs: OpenApi): Hono<AppEnv> {
  const routes = new Hono<AppEnv>();
  const tag = 'portfolios';
  const auth = 'tenant';
  const params = idParams('portfolio');

  defineRoute(
    routes,
    docs,
    {
      method: 'post',
      path: '/v1/portfolios',
      tag,
      auth,
      summary: 'Create a portfolio',
      body: createPortfolio,
      responses: { 201: portfolioView },
    },
    async (c, { body: input }, reply) => {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`
        insert into portfolios (name, base_currency) values (${input.name}, ${input.baseCurrency}) returning *`,
      );
      return reply(201, view(row!));
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/portfolios',
      tag,
      auth,
      summary: 'List portfolios (oldest first)',
      query: listQuery,
      responses: { 200: pageOf(portfolioView) },
    },
    async (c, { query: q }, reply) => {
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
      return reply(
        200,
        toPage(rows, q.limit, (r) => [r.created_us!, r.id], view),
      );
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/portfolios/{id}',
      tag,
      auth,
      summary: 'Get a portfolio',
      params,
      responses: { 200: portfolioView },
    },
    async (c, { params: { id } }, reply) => {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`select * from portfolios where id = ${id}`,
        { readOnly: true },
      );
      if (!row) throw notFound('portfolio', id);
      return reply(200, view(row));
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'patch',
      path: '/v1/portfolios/{id}',
      tag,
      auth,
      summary: 'Rename a portfolio',
      params,
      body: updatePortfolio,
      responses: { 200: portfolioView },
    },
    async (c, { params: { id }, body: input }, reply) => {
      const [row] = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx<Row[]>`update portfolios set name = ${input.name} where id = ${id} returning *`,
      );
      if (!row) throw notFound('portfolio', id);
      return reply(200, view(row));
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'delete',
      path: '/v1/portfolios/{id}',
      tag,
      auth,
      summary: 'Delete a portfolio with its orders, trades and positions',
      params,
      responses: { 204: null },
    },
    async (c, { params: { id } }, reply) => {
      const deleted = await withTenant(
        app,
        c.get('tenant'),
        (tx) => tx`delete from portfolios where id = ${id} returning id`,
      );
      if (deleted.length === 0) throw notFound('portfolio', id);
      return reply(204);
    },
  );

  defineRoute(
    routes,
    docs,
    {
      method: 'get',
      path: '/v1/portfolios/{id}/positions',
      tag,
      auth,
      summary: 'Positions with unrealized P&L from the latest bar close',
      params,
      responses: { 200: z.object({ items: z.array(valuedPositionView) }) },
    },
    async (c, { params: { id } }, reply) => {
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
      const items = rows.map((r) => ({
        symbol: r.symbol,
        quantity: r.quantity,
        averagePrice: r.average_price,
        realizedPnl: r.realized_pnl,
        lastPrice: r.last_price,
        marketValue: r.market_value,
        unrealizedPnl: r.unrealized_pnl,
        updatedAt: (r.updated_at as Date).toISOString(),
      }));
      return reply(200, { items });
    },
  );

  return routes;
}
