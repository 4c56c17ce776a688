import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validate } from '../../src/isolation/validator.ts';
import { runtimeRole } from '../../src/db/roles.ts';
import { openPool } from '../../src/db/connect.ts';
import { freePort } from '../../src/runtime/local-cluster.ts';
import { AccessWatch } from '../../src/tenants/access-watch.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { tenantClient, vector, type TenantClient } from '../support/tenant-client.ts';

let t: TestPlatform;
let acme: TenantClient;
let other: TenantClient;
beforeAll(async () => {
  t = await testPlatform();
  acme = await tenantClient(t, 'acme');
  other = await tenantClient(t, 'other');
});
afterAll(() => t?.close());

const fill = (portfolioId: string, extra: Record<string, unknown> = {}) => ({
  portfolioId,
  symbol: 'AAPL',
  side: 'buy',
  quantity: '1',
  price: '100',
  executedAt: '2026-11-30T10:00:00Z',
  ...extra,
});

describe('tenant authentication', () => {
  it('refuses a missing, malformed or unknown key with 401', async () => {
    for (const token of [null, 'nonsense', `tf_${'x'.repeat(40)}`]) {
      const res = await t.http('/v1/portfolios', { token });
      expect(res.status).toBe(401);
      expect((await res.json()).code).toBe('invalid_api_key');
    }
  });

  it('does not let an admin token or tenant headers stand in for a key', async () => {
    expect((await t.http('/v1/portfolios')).status).toBe(401);
    const spoof = await t.http('/v1/portfolios', { token: null, headers: { 'x-tenant-id': acme.id } });
    expect(spoof.status).toBe(401);
  });

  it('revokes a key for the very next request', async () => {
    const issued = await (await t.http(`/v1/tenants/${acme.id}/keys`, { method: 'POST', json: {} })).json();
    expect((await t.http('/v1/portfolios', { token: issued.key })).status).toBe(200);
    const listed = await (await t.http(`/v1/tenants/${acme.id}/keys`)).json();
    expect(listed.items.find((k: { id: string }) => k.id === issued.id)).toMatchObject({
      prefix: issued.key.slice(0, 11),
      revokedAt: null,
    });
    expect(JSON.stringify(listed)).not.toContain(issued.key);
    expect((await t.http(`/v1/tenants/${acme.id}/keys/${issued.id}`, { method: 'DELETE' })).status).toBe(204);
    expect((await t.http('/v1/portfolios', { token: issued.key })).status).toBe(401);
  });

  it('honours a revocation made by another instance within 1 s: the access version it bumps drops cached keys everywhere', async () => {
    const issued = await (await t.http(`/v1/tenants/${acme.id}/keys`, { method: 'POST', json: {} })).json();
    expect((await t.http('/v1/portfolios', { token: issued.key })).status).toBe(200);
    // A change written without the access version is not seen: the cached answer outlives the half second.
    await t.su`update platform.api_keys set revoked_at = now() where id = ${issued.id}`;
    await new Promise((r) => setTimeout(r, 700));
    expect((await t.http('/v1/portfolios', { token: issued.key })).status).toBe(200);
    // Another instance revokes as the service does, bumping the version in the same transaction.
    await t.su.begin(async (tx) => {
      await tx`update platform.api_keys set revoked_at = now() where id = ${issued.id}`;
      await tx`update platform.access_version set version = version + 1`;
    });
    const revokedAt = performance.now();
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await t.http('/v1/portfolios', { token: issued.key })).status).toBe(401);
    expect(performance.now() - revokedAt).toBeLessThan(1_500);
  });

  it('confirms cached key answers only while it can read the access version (else they live 0.5 s)', async () => {
    const reachable = new AccessWatch(t.control);
    await reachable.read();
    expect(reachable.confirmedWithin(1_000)).toBe(true);
    expect(reachable.version).toMatch(/^\d+$/);
    // Nothing listens on a fresh free port: every read fails, and nothing is confirmed.
    const url = new URL(t.db.url);
    url.port = String(await freePort());
    const down = openPool(url.toString(), { max: 1, name: 'access-watch-down' });
    try {
      const unreachable = new AccessWatch(down);
      await unreachable.read();
      expect(unreachable.confirmedWithin(1_000)).toBe(false);
      expect(unreachable.version).toBeUndefined();
    } finally {
      await down.end({ timeout: 1 });
    }
  });

  it('answers 403 for a suspended tenant at once, and serves it again when reactivated', async () => {
    const tenant = await tenantClient(t, 'suspendable');
    await tenant.ok('POST', '/v1/portfolios', { name: 'p' });
    await t.http(`/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { status: 'suspended' } });
    const refused = await tenant.call('GET', '/v1/portfolios');
    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('tenant_suspended');
    await t.http(`/v1/tenants/${tenant.id}`, { method: 'PATCH', json: { status: 'active' } });
    expect((await tenant.ok('GET', '/v1/portfolios')).items).toHaveLength(1);
    await t.http(`/v1/tenants/${tenant.id}`, { method: 'DELETE' });
    expect((await tenant.call('GET', '/v1/portfolios')).body.code).toBe('tenant_deleted');
  });
});

describe('portfolios', () => {
  it('creates, lists with a cursor, gets, renames and deletes', async () => {
    const created = [];
    for (let i = 0; i < 5; i++) created.push(await acme.ok('POST', '/v1/portfolios', { name: `P${i}` }));
    expect(created[0]).toMatchObject({ name: 'P0', baseCurrency: 'USD' });
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { items: { id: string }[]; nextCursor: string | null } = await acme.ok(
        'GET',
        `/v1/portfolios?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...page.items.map((p) => p.id));
      cursor = page.nextCursor;
    } while (cursor);
    for (const p of created) expect(seen).toContain(p.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect((await acme.ok('PATCH', `/v1/portfolios/${created[0].id}`, { name: 'Renamed' })).name).toBe('Renamed');
    expect((await acme.call('DELETE', `/v1/portfolios/${created[4].id}`)).status).toBe(204);
    expect((await acme.call('GET', `/v1/portfolios/${created[4].id}`)).status).toBe(404);
  });

  it("answers another tenant's id exactly like an unknown one", async () => {
    const mine = await acme.ok('POST', '/v1/portfolios', { name: 'secret' });
    const theirs = await other.call('GET', `/v1/portfolios/${mine.id}`);
    const unknown = await other.call('GET', '/v1/portfolios/00000000-0000-4000-8000-000000000000');
    const malformed = await other.call('GET', '/v1/portfolios/not-a-uuid');
    expect(theirs.status).toBe(404);
    expect(unknown.status).toBe(404);
    expect(malformed.status).toBe(404);
    const strip = (b: any) => ({ code: b.code, title: b.title });
    expect(strip(theirs.body)).toEqual(strip(unknown.body));
    expect((await other.call('PATCH', `/v1/portfolios/${mine.id}`, { name: 'x' })).status).toBe(404);
    expect((await other.call('DELETE', `/v1/portfolios/${mine.id}`)).status).toBe(404);
    expect((await acme.ok('GET', `/v1/portfolios/${mine.id}`)).name).toBe('secret');
  });

  it('rejects unknown fields, bad currencies and malformed cursors', async () => {
    const extra = await acme.call('POST', '/v1/portfolios', { name: 'x', tenantId: other.id });
    expect(extra.status).toBe(400);
    expect(extra.body.code).toBe('validation_failed');
    expect((await acme.call('POST', '/v1/portfolios', { name: 'x', baseCurrency: 'usd' })).body.field).toBe(
      'baseCurrency',
    );
    expect((await acme.call('GET', '/v1/portfolios?cursor=abc')).body.code).toBe('invalid_cursor');
  });
});

describe('orders', () => {
  let portfolio: { id: string };
  beforeAll(async () => {
    portfolio = await acme.ok('POST', '/v1/portfolios', { name: 'Orders' });
  });

  it('places market and limit orders, filters the list, and cancels', async () => {
    const limit = await acme.ok('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'MSFT',
      side: 'buy',
      type: 'limit',
      quantity: '10.5',
      limitPrice: '410.25',
      clientOrderId: 'c-1',
    });
    expect(limit).toMatchObject({
      status: 'open',
      quantity: '10.5',
      limitPrice: '410.25',
      filledQuantity: '0',
      clientOrderId: 'c-1',
    });
    const market = await acme.ok('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'MSFT',
      side: 'sell',
      type: 'market',
      quantity: '1',
    });
    expect(market.limitPrice).toBeNull();
    const sells = await acme.ok('GET', `/v1/orders?portfolioId=${portfolio.id}&side=sell`);
    expect(sells.items.map((o: { id: string }) => o.id)).toEqual([market.id]);
    const cancelled = await acme.ok('POST', `/v1/orders/${limit.id}/cancel`);
    expect(cancelled.status).toBe('cancelled');
    const again = await acme.call('POST', `/v1/orders/${limit.id}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('illegal_transition');
  });

  it.each([
    ['a negative quantity', { quantity: '-1' }, 'quantity'],
    ['a zero quantity', { quantity: '0' }, 'quantity'],
    ['a float quantity', { quantity: 1.5 }, 'quantity'],
    ['a limit order without a price', { type: 'limit' }, 'limitPrice'],
    ['a market order with a price', { limitPrice: '1' }, 'limitPrice'],
    ['an unknown side', { side: 'short' }, 'side'],
    ['a symbol with SQL in it', { symbol: "AAPL'; drop table orders;--" }, 'symbol'],
    ['too many decimals', { quantity: '1.12345678901' }, 'quantity'],
  ])('rejects %s with 400 naming the field', async (_, change, field) => {
    const res = await acme.call('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
      ...change,
    });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe(field);
  });

  it('404s an unknown portfolio and 409s a reused client order id', async () => {
    const unknown = await acme.call('POST', '/v1/orders', {
      portfolioId: '00000000-0000-4000-8000-000000000000',
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('portfolio_not_found');
    await acme.ok('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
      clientOrderId: 'dup',
    });
    const dup = await acme.call('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
      clientOrderId: 'dup',
    });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('duplicate_client_order_id');
  });

  it("cannot place an order in another tenant's portfolio", async () => {
    const res = await other.call('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
    });
    expect(res.status).toBe(404);
  });
});

describe('trades and positions', () => {
  let portfolio: { id: string };
  beforeAll(async () => {
    portfolio = await acme.ok('POST', '/v1/portfolios', { name: 'Fills' });
  });
  const marketBuy = (symbol: string, quantity: string) =>
    acme.ok('POST', '/v1/orders', { portfolioId: portfolio.id, symbol, side: 'buy', type: 'market', quantity });

  it('moves the order through partially filled to filled and the position with it', async () => {
    const order = await acme.ok('POST', '/v1/orders', {
      portfolioId: portfolio.id,
      symbol: 'NVDA',
      side: 'buy',
      type: 'limit',
      quantity: '10',
      limitPrice: '130',
    });
    const first = await acme.ok(
      'POST',
      '/v1/trades',
      fill(portfolio.id, { orderId: order.id, symbol: 'NVDA', quantity: '4', price: '129.5' }),
    );
    expect(first.trade).toMatchObject({ quantity: '4', price: '129.5', fee: '0', orderId: order.id });
    expect(first.position).toMatchObject({ quantity: '4', averagePrice: '129.5' });
    expect((await acme.ok('GET', `/v1/orders/${order.id}`)).status).toBe('partially_filled');
    await acme.ok('POST', '/v1/trades:batch', {
      trades: [
        fill(portfolio.id, {
          orderId: order.id,
          symbol: 'NVDA',
          quantity: '6',
          price: '130',
          executedAt: '2026-11-30T10:01:00Z',
        }),
      ],
    });
    expect(await acme.ok('GET', `/v1/orders/${order.id}`)).toMatchObject({
      status: 'filled',
      filledQuantity: '10',
      averageFillPrice: '129.8',
    });
    const over = await acme.call('POST', '/v1/trades', fill(portfolio.id, { orderId: order.id, symbol: 'NVDA' }));
    expect(over.status).toBe(409);
    expect(over.body.code).toBe('illegal_transition');
  });

  it('names the exact field that holds unstorable text, deep in a batch', async () => {
    const res = await acme.call('POST', '/v1/trades:batch', {
      trades: [fill(portfolio.id), fill(portfolio.id, { symbol: 'A\u0000B' }), fill(portfolio.id)],
    });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_characters', field: 'trades.1.symbol' });
    const key = await acme.call('POST', '/v1/trades:batch', { trades: [{ ...fill(portfolio.id), 'x\u0000': 1 }] });
    expect(key.body).toMatchObject({ code: 'invalid_characters', field: 'the name of a field in trades.0' });
  });

  it('refuses a fill that would overfill its order, storing nothing', async () => {
    const order = await marketBuy('AMD', '5');
    const res = await acme.call('POST', '/v1/trades:batch', {
      trades: [
        fill(portfolio.id, { orderId: order.id, symbol: 'AMD', quantity: '3' }),
        fill(portfolio.id, { orderId: order.id, symbol: 'AMD', quantity: '3' }),
      ],
    });
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'overfill', index: 1, field: 'trades.1.quantity' });
    expect((await acme.ok('GET', `/v1/trades?portfolioId=${portfolio.id}&symbol=AMD`)).items).toHaveLength(0);
    expect((await acme.ok('GET', `/v1/orders/${order.id}`)).filledQuantity).toBe('0');
  });

  it('answers 503 lock_timeout, not a 500, while the order of a fill stays locked, and stores nothing', async () => {
    const order = await marketBuy('INTC', '5');
    const holder = await t.su.reserve();
    try {
      await holder`begin`;
      await holder.unsafe(`select 1 from "${acme.schema}".orders where id = $1 for update`, [order.id]);
      const res = await acme.call('POST', '/v1/trades:batch', {
        trades: [fill(portfolio.id, { orderId: order.id, symbol: 'INTC', quantity: '2' })],
      });
      expect(res.status).toBe(503);
      expect(res.body).toMatchObject({ code: 'lock_timeout' });
    } finally {
      await holder`rollback`;
      holder.release();
    }
    expect((await acme.ok('GET', `/v1/trades?portfolioId=${portfolio.id}&symbol=INTC`)).items).toHaveLength(0);
    expect((await acme.ok('GET', `/v1/orders/${order.id}`)).filledQuantity).toBe('0');
  });

  it('computes positions with realized and unrealized P&L from the latest bar', async () => {
    const p = await acme.ok('POST', '/v1/portfolios', { name: 'PnL' });
    await acme.ok('POST', '/v1/trades:batch', {
      trades: [
        fill(p.id, { symbol: 'TSLA', quantity: '10', price: '200', executedAt: '2026-11-30T09:00:00Z' }),
        fill(p.id, {
          symbol: 'TSLA',
          side: 'sell',
          quantity: '4',
          price: '250',
          fee: '2',
          executedAt: '2026-11-30T09:30:00Z',
        }),
      ],
    });
    await acme.ok('POST', '/v1/market-data:batch', {
      bars: [{ symbol: 'TSLA', time: '2026-11-30T09:59:00Z', open: '240', high: '262', low: '239', close: '260' }],
    });
    const { items } = await acme.ok('GET', `/v1/portfolios/${p.id}/positions`);
    expect(items).toEqual([
      expect.objectContaining({
        symbol: 'TSLA',
        quantity: '6',
        averagePrice: '200',
        realizedPnl: '198',
        lastPrice: '260',
        marketValue: '1560',
        unrealizedPnl: '360',
      }),
    ]);
  });

  it('rejects a batch with one bad row whole, naming the row', async () => {
    const trades = Array.from({ length: 5 }, (_, i) =>
      fill(portfolio.id, { symbol: 'BATCH', executedAt: `2026-11-30T11:0${i}:00Z` }),
    );
    trades[3] = { ...trades[3]!, price: '-5' };
    const res = await acme.call('POST', '/v1/trades:batch', { trades });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation_failed', index: 3, field: 'trades.3.price' });
    expect((await acme.ok('GET', '/v1/trades?symbol=BATCH')).items).toHaveLength(0);
  });

  it('names the row whose portfolio is unknown (or belongs to another tenant)', async () => {
    const theirs = await other.ok('POST', '/v1/portfolios', { name: 'theirs' });
    const res = await acme.call('POST', '/v1/trades:batch', { trades: [fill(portfolio.id), fill(theirs.id)] });
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ code: 'portfolio_not_found', index: 1 });
  });

  it('answers 413 for a batch over 10,000 trades', async () => {
    const trades = Array.from({ length: 10_001 }, () => fill(portfolio.id));
    const res = await acme.call('POST', '/v1/trades:batch', { trades });
    expect(res.status).toBe(413);
    expect(res.body.code).toBe('batch_too_large');
  });

  it('records 10,000 fills in one request', async () => {
    const p = await acme.ok('POST', '/v1/portfolios', { name: 'Bulk' });
    const trades = Array.from({ length: 10_000 }, (_, i) =>
      fill(p.id, {
        symbol: `S${i % 20}`,
        side: i % 3 ? 'buy' : 'sell',
        executedAt: new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString(),
      }),
    );
    const res = await acme.ok('POST', '/v1/trades:batch', { trades });
    expect(res.count).toBe(10_000);
    const { items } = await acme.ok('GET', `/v1/portfolios/${p.id}/positions`);
    const total = items.reduce((sum: number, i: { quantity: string }) => sum + Number(i.quantity), 0);
    expect(total).toBe(10_000 - 2 * Math.ceil(10_000 / 3));
  });
});

describe('market data', () => {
  const bar = (minute: number, close: string) => ({
    symbol: 'ETH-USD',
    time: new Date(Date.UTC(2026, 10, 30, 12, minute)).toISOString(),
    open: '100',
    high: '200',
    low: '50',
    close,
    volume: '2',
  });

  it('ingests bars, upserts on symbol and time, and serves candles and the latest bar', async () => {
    await acme.ok('POST', '/v1/market-data:batch', {
      bars: Array.from({ length: 30 }, (_, i) => bar(i, String(100 + i))),
    });
    await acme.ok('POST', '/v1/market-data:batch', { bars: [bar(29, '150')] });
    const { items } = await acme.ok(
      'GET',
      '/v1/market-data/candles?symbol=ETH-USD&from=2026-11-30T12:00:00Z&to=2026-11-30T13:00:00Z&bucket=15m',
    );
    expect(items).toEqual([
      { time: '2026-11-30T12:00:00.000Z', open: '100', high: '200', low: '50', close: '114', volume: '30', bars: 15 },
      { time: '2026-11-30T12:15:00.000Z', open: '100', high: '200', low: '50', close: '150', volume: '30', bars: 15 },
    ]);
    const latest = await acme.ok('GET', '/v1/market-data/latest?symbols=ETH-USD,NONE');
    expect(latest.items).toEqual([expect.objectContaining({ symbol: 'ETH-USD', close: '150' })]);
    expect((await other.ok('GET', '/v1/market-data/latest?symbols=ETH-USD')).items).toEqual([]);
  });

  it('serves hourly and daily candles from rollups that follow corrected bars', async () => {
    const hourBars = Array.from({ length: 180 }, (_, i) => ({
      symbol: 'BTC-USD',
      time: new Date(Date.UTC(2026, 10, 29, 22) + i * 60_000).toISOString(),
      open: String(1000 + i),
      high: String(1001 + i),
      low: String(999 + i),
      close: String(1000.5 + i),
      volume: '1',
    }));
    await acme.ok('POST', '/v1/market-data:batch', { bars: hourBars });
    const hourly = await acme.ok(
      'GET',
      '/v1/market-data/candles?symbol=BTC-USD&from=2026-11-29T22:00:00Z&to=2026-11-30T01:00:00Z&bucket=1h',
    );
    expect(hourly.items).toEqual([
      {
        time: '2026-11-29T22:00:00.000Z',
        open: '1000',
        high: '1060',
        low: '999',
        close: '1059.5',
        volume: '60',
        bars: 60,
      },
      {
        time: '2026-11-29T23:00:00.000Z',
        open: '1060',
        high: '1120',
        low: '1059',
        close: '1119.5',
        volume: '60',
        bars: 60,
      },
      {
        time: '2026-11-30T00:00:00.000Z',
        open: '1120',
        high: '1180',
        low: '1119',
        close: '1179.5',
        volume: '60',
        bars: 60,
      },
    ]);
    // A corrected bar replaces its old values in the rollup, it is not added to them.
    await acme.ok('POST', '/v1/market-data:batch', {
      bars: [{ ...hourBars[0]!, high: '5000', close: '4000', volume: '10' }],
    });
    const daily = await acme.ok(
      'GET',
      '/v1/market-data/candles?symbol=BTC-USD&from=2026-11-29T00:00:00Z&to=2026-12-01T00:00:00Z&bucket=1d',
    );
    expect(daily.items).toEqual([
      {
        time: '2026-11-29T00:00:00.000Z',
        open: '1000',
        high: '5000',
        low: '999',
        close: '1119.5',
        volume: '129',
        bars: 120,
      },
      {
        time: '2026-11-30T00:00:00.000Z',
        open: '1120',
        high: '1180',
        low: '1119',
        close: '1179.5',
        volume: '60',
        bars: 60,
      },
    ]);
    const minutes = await acme.ok(
      'GET',
      '/v1/market-data/candles?symbol=BTC-USD&from=2026-11-29T22:30:00Z&to=2026-11-29T22:45:00Z&bucket=5m',
    );
    expect(minutes.items.map((c: { bars: number }) => c.bars)).toEqual([5, 5, 5]);
  });

  it('rejects inconsistent bars, duplicate bars, bad buckets and huge ranges', async () => {
    const bad = await acme.call('POST', '/v1/market-data:batch', {
      bars: [bar(0, '100'), { ...bar(1, '100'), high: '10' }],
    });
    expect(bad.body).toMatchObject({ code: 'validation_failed', index: 1 });
    const dup = await acme.call('POST', '/v1/market-data:batch', { bars: [bar(0, '100'), bar(0, '101')] });
    expect(dup.body).toMatchObject({ code: 'duplicate_bar', index: 1 });
    expect(
      (
        await acme.call(
          'GET',
          '/v1/market-data/candles?symbol=X&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=2m',
        )
      ).body.field,
    ).toBe('bucket');
    expect(
      (
        await acme.call(
          'GET',
          '/v1/market-data/candles?symbol=X&from=2020-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=1m',
        )
      ).body.code,
    ).toBe('range_too_large');
    const over = await acme.call('POST', '/v1/market-data:batch', {
      bars: Array.from({ length: 50_001 }, () => bar(0, '1')),
    });
    expect(over.status).toBe(413);
  });
});

describe('embeddings', () => {
  it('upserts by externalId, searches with and without a metadata filter, gets and deletes', async () => {
    const items = Array.from({ length: 200 }, (_, i) => ({
      externalId: `doc-${i}`,
      content: `document ${i}`,
      metadata: { group: i % 10 === 0 ? 'rare' : 'common' },
      embedding: vector(i),
    }));
    const { ids } = await acme.ok('POST', '/v1/embeddings:batch', { items });
    expect(ids).toHaveLength(200);
    const again = await acme.ok('POST', '/v1/embeddings:batch', { items: [{ ...items[5]!, content: 'updated' }] });
    expect(again.ids).toEqual([ids[5]]);

    const nearest = await acme.ok('POST', '/v1/embeddings/search', { vector: vector(5), k: 3 });
    expect(nearest.items[0]).toMatchObject({ externalId: 'doc-5', content: 'updated' });
    expect(nearest.items[0].distance).toBeLessThan(1e-6);
    expect(nearest.items).toHaveLength(3);

    // 20 of 200 rows match the filter: iterative scans still return k = 15 of them.
    const filtered = await acme.ok('POST', '/v1/embeddings/search', {
      vector: vector(7),
      k: 15,
      filter: { group: 'rare' },
    });
    expect(filtered.items).toHaveLength(15);
    expect(filtered.items.every((r: { metadata: { group: string } }) => r.metadata.group === 'rare')).toBe(true);
    const distances = filtered.items.map((r: { distance: number }) => r.distance);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));

    const one = await acme.ok('GET', `/v1/embeddings/${ids[0]}`);
    expect(one.embedding).toHaveLength(384);
    expect((await other.call('GET', `/v1/embeddings/${ids[0]}`)).status).toBe(404);
    expect((await acme.call('DELETE', `/v1/embeddings/${ids[0]}`)).status).toBe(204);
    expect((await acme.call('GET', `/v1/embeddings/${ids[0]}`)).status).toBe(404);
  });

  it("never returns another tenant's embeddings", async () => {
    const mine = await other.ok('POST', '/v1/embeddings:batch', {
      items: [{ content: 'only other', embedding: vector(5) }],
    });
    const found = await acme.ok('POST', '/v1/embeddings/search', { vector: vector(5), k: 100 });
    expect(found.items.map((r: { id: string }) => r.id)).not.toContain(mine.ids[0]);
  });

  it('answers a selective filter with the exact nearest matches, and a broad one with k matches in order', async () => {
    const tenant = await tenantClient(t, 'vector-filters');
    const rows = 5_200; // 5,160 match the broad filter: past the exact-search cut-off of 5,000
    const few = (i: number) => i % 130 === 0; // 40 rows
    const ids: string[] = [];
    for (let from = 0; from < rows; from += 1_000) {
      const items = Array.from({ length: Math.min(1_000, rows - from) }, (_, j) => ({
        content: `d${from + j}`,
        metadata: { group: few(from + j) ? 'few' : 'many' },
        embedding: vector(from + j),
      }));
      ids.push(...(await tenant.ok('POST', '/v1/embeddings:batch', { items })).ids);
    }
    const query = vector(123_456);
    const cosine = (v: number[]) => {
      let dot = 0,
        a = 0,
        b = 0;
      v.forEach((x, i) => {
        dot += x * query[i]!;
        a += x * x;
        b += query[i]! * query[i]!;
      });
      return 1 - dot / Math.sqrt(a * b);
    };
    const exactFew = ids
      .map((id, i) => ({ id, i, d: cosine(vector(i)) }))
      .filter((r) => few(r.i))
      .sort((x, y) => x.d - y.d)
      .slice(0, 10);

    const selective = await tenant.ok('POST', '/v1/embeddings/search', {
      vector: query,
      k: 10,
      filter: { group: 'few' },
    });
    expect(selective.items.map((r: { id: string }) => r.id)).toEqual(exactFew.map((r) => r.id));

    const broad = await tenant.ok('POST', '/v1/embeddings/search', { vector: query, k: 10, filter: { group: 'many' } });
    expect(broad.items).toHaveLength(10);
    expect(broad.items.every((r: { metadata: { group: string } }) => r.metadata.group === 'many')).toBe(true);
    const distances = broad.items.map((r: { distance: number }) => r.distance);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));
  }, 180_000);

  it('rejects a wrong dimension, a huge k and duplicate external ids', async () => {
    expect(
      (await acme.call('POST', '/v1/embeddings:batch', { items: [{ content: 'x', embedding: vector(1, 3) }] })).body,
    ).toMatchObject({ index: 0, field: 'items.0.embedding' });
    expect((await acme.call('POST', '/v1/embeddings/search', { vector: vector(1, 385) })).body.field).toBe('vector');
    expect((await acme.call('POST', '/v1/embeddings/search', { vector: vector(1), k: 101 })).body.field).toBe('k');
    const dup = await acme.call('POST', '/v1/embeddings:batch', {
      items: [
        { externalId: 'd', content: 'x', embedding: vector(1) },
        { externalId: 'd', content: 'y', embedding: vector(2) },
      ],
    });
    expect(dup.body).toMatchObject({ code: 'duplicate_external_id', index: 1 });
  });
});

describe('the shared pool under interleaved tenants', () => {
  it("never answers one tenant's request with another tenant's rows", async () => {
    const tenants = [acme, other, ...(await Promise.all([1, 2, 3, 4].map((i) => tenantClient(t, `hammer-${i}`))))];
    const owned = new Map<string, Set<string>>();
    for (const tenant of tenants) {
      const ids = new Set<string>();
      for (let i = 0; i < 3; i++)
        ids.add((await tenant.ok('POST', '/v1/portfolios', { name: `h-${tenant.id}-${i}` })).id);
      owned.set(tenant.id, ids);
    }
    const all = new Set([...owned.values()].flatMap((s) => [...s]));
    // 600 requests from 6 tenants at once through one pool of 10 connections.
    const requests = Array.from({ length: 600 }, (_, i) => tenants[i % tenants.length]!);
    const results = await Promise.all(
      requests.map(async (tenant) => ({ tenant, res: await tenant.call('GET', '/v1/portfolios?limit=500') })),
    );
    for (const { tenant, res } of results) {
      expect(res.status).toBe(200);
      const ids = res.body.items.map((p: { id: string }) => p.id).filter((id: string) => all.has(id));
      for (const id of ids) expect(owned.get(tenant.id)!.has(id), `tenant ${tenant.id} saw ${id}`).toBe(true);
      expect(ids.length).toBe(owned.get(tenant.id)!.size);
    }
    // After all that, no pooled connection of any lane carries a tenant context.
    for (const [lane, { seats }] of t.app.lanes.entries()) {
      for (const seat of seats) {
        const leftover =
          await seat`select current_user as role, current_setting('app.current_tenant_id', true) as tenant, current_setting('search_path') as path`;
        expect(leftover[0]).toMatchObject({
          role: runtimeRole(lane),
          tenant: expect.toSatisfy((v: string | null) => !v),
        });
      }
    }
  });
});

describe('after all of the above', () => {
  it('the isolation validator finds nothing wrong', async () => {
    expect((await validate(t.control)).violations).toEqual([]);
  });
});

describe('OpenAPI', () => {
  it('describes every data-plane route, generated from the validation schemas', async () => {
    const res = await t.http('/openapi.json', { token: null });
    const doc = await res.json();
    expect(doc.openapi).toBe('3.1.0');
    for (const path of [
      '/v1/portfolios',
      '/v1/orders/{id}/cancel',
      '/v1/trades:batch',
      '/v1/market-data/candles',
      '/v1/embeddings/search',
      '/v1/tenants/{idOrSlug}/credentials',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    const order = doc.paths['/v1/orders'].post.requestBody.content['application/json'].schema;
    expect(order.properties.side.enum).toEqual(['buy', 'sell']);
    expect(order.additionalProperties).toBe(false);
  });
});
