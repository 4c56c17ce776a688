/**
 * Attacks through the HTTP API: another tenant's ids under one's own key, tenant
 * spoofing in headers, paths, query strings and bodies, SQL-ish input in every
 * parameter, and many tenants' requests interleaved on a pool of two connections.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testPlatform, type TestPlatform } from '../support/platform.ts';
import { tenantClient, vector, type TenantClient } from '../support/tenant-client.ts';

let t: TestPlatform;
let a: TenantClient;
let b: TenantClient;
/** Tenant B's objects, which tenant A tries to reach. */
const theirs: Record<string, string> = {};

beforeAll(async () => {
  t = await testPlatform({ env: { TENANTFORGE_POOL_MAX: '2' } });
  a = await tenantClient(t, 'attacker');
  b = await tenantClient(t, 'victim');
  const portfolio = await b.ok('POST', '/v1/portfolios', { name: 'victim book' });
  const order = await b.ok('POST', '/v1/orders', {
    portfolioId: portfolio.id,
    symbol: 'VICT',
    side: 'buy',
    type: 'market',
    quantity: '5',
  });
  const { ids } = await b.ok('POST', '/v1/embeddings:batch', {
    items: [{ externalId: 'secret', content: 'victim secret', embedding: vector(1) }],
  });
  await b.ok('POST', '/v1/trades', {
    portfolioId: portfolio.id,
    orderId: order.id,
    symbol: 'VICT',
    side: 'buy',
    quantity: '1',
    price: '10',
    executedAt: '2026-11-30T10:00:00Z',
  });
  await b.ok('POST', '/v1/market-data:batch', {
    bars: [{ symbol: 'VICT', time: '2026-11-30T10:00:00Z', open: '1', high: '1', low: '1', close: '1' }],
  });
  Object.assign(theirs, { portfolio: portfolio.id, order: order.id, embedding: ids[0] });
});
afterAll(() => t?.close());

const VICTIM_MARKERS = ['victim', 'VICT'];
function expectNothingOfB(body: unknown) {
  const text = JSON.stringify(body);
  for (const marker of [...VICTIM_MARKERS, ...Object.values(theirs), b.id, b.schema])
    expect(text).not.toContain(marker);
}

describe("tenant A's key on tenant B's ids", () => {
  it.each([
    ['GET', () => `/v1/portfolios/${theirs.portfolio}`, undefined],
    ['PATCH', () => `/v1/portfolios/${theirs.portfolio}`, { name: 'pwned' }],
    ['DELETE', () => `/v1/portfolios/${theirs.portfolio}`, undefined],
    ['GET', () => `/v1/portfolios/${theirs.portfolio}/positions`, undefined],
    ['GET', () => `/v1/orders/${theirs.order}`, undefined],
    ['POST', () => `/v1/orders/${theirs.order}/cancel`, undefined],
    ['GET', () => `/v1/embeddings/${theirs.embedding}`, undefined],
    ['DELETE', () => `/v1/embeddings/${theirs.embedding}`, undefined],
  ])('%s answers 404 exactly as for an id that does not exist', async (method, path, json) => {
    const target = path();
    const theirId = Object.values(theirs).find((id) => target.includes(id))!;
    const unknownId = '00000000-0000-4000-8000-000000000000';
    const res = await a.call(method, target, json);
    const unknown = await a.call(method, target.replace(theirId, unknownId), json);
    // Only the id the caller sent is echoed back; everything else is the same.
    const same = (body: Record<string, unknown>, id: string) =>
      JSON.parse(JSON.stringify({ ...body, requestId: null }).replaceAll(id, 'ID'));
    expect(res.status).toBe(404);
    expect(same(res.body, theirId)).toEqual(same(unknown.body, unknownId));
  });

  it("cannot write into B's portfolio or fill B's order", async () => {
    const mine = await a.ok('POST', '/v1/portfolios', { name: 'mine' });
    const order = await a.call('POST', '/v1/orders', {
      portfolioId: theirs.portfolio,
      symbol: 'X',
      side: 'buy',
      type: 'market',
      quantity: '1',
    });
    expect(order.status).toBe(404);
    const fill = await a.call('POST', '/v1/trades', {
      portfolioId: mine.id,
      orderId: theirs.order,
      symbol: 'VICT',
      side: 'buy',
      quantity: '1',
      price: '1',
      executedAt: '2026-11-30T10:00:00Z',
    });
    expect(fill.status).toBe(404);
    expect(fill.body.code).toBe('order_not_found');
  });

  it('lists, filters, candles and searches show none of B', async () => {
    for (const path of [
      '/v1/portfolios',
      '/v1/orders',
      `/v1/orders?portfolioId=${theirs.portfolio}`,
      '/v1/trades?symbol=VICT',
      '/v1/market-data/latest?symbols=VICT',
      '/v1/market-data/candles?symbol=VICT&from=2026-11-30T00:00:00Z&to=2026-12-01T00:00:00Z&bucket=1h',
    ]) {
      expectNothingOfB((await a.ok('GET', path)).items);
    }
    const search = await a.ok('POST', '/v1/embeddings/search', { vector: vector(1), k: 100 });
    expectNothingOfB(search.items);
  });

  it('B still has everything afterwards', async () => {
    expect((await b.ok('GET', `/v1/portfolios/${theirs.portfolio}`)).name).toBe('victim book');
    expect((await b.ok('GET', `/v1/orders/${theirs.order}`)).status).toBe('partially_filled');
    expect((await b.ok('GET', `/v1/embeddings/${theirs.embedding}`)).content).toBe('victim secret');
  });
});

describe('spoofing the tenant', () => {
  it.each([
    ['x-tenant-id', () => b.id],
    ['x-tenant', () => b.schema],
    ['x-forwarded-user', () => b.id],
    ['app.current_tenant_id', () => b.id],
  ])('ignores a %s header', async (header, value) => {
    const mine = await a.ok('POST', '/v1/portfolios', { name: `mine under ${header}` });
    const res = await t.http('/v1/portfolios?limit=500', { token: a.key, headers: { [header]: value() } });
    expect(res.status).toBe(200);
    const { items } = await res.json();
    expectNothingOfB(items);
    // Positive controls: the answer is A's list, and the same list under B's key does show B.
    expect(items.map((p: { id: string }) => p.id)).toContain(mine.id);
    const theirsListed = await t.http('/v1/portfolios?limit=500', { token: b.key, headers: { [header]: value() } });
    expect(theirsListed.status).toBe(200);
    expect((await theirsListed.json()).items.map((p: { id: string }) => p.id)).toContain(theirs.portfolio);
  });

  it('ignores tenant ids in query strings and bodies', async () => {
    expect((await a.call('GET', `/v1/portfolios?tenantId=${b.id}`)).status).toBe(400);
    const body = await a.call('POST', '/v1/portfolios', { name: 'x', tenant_id: b.id });
    expect(body.status).toBe(400);
    expect((await t.su.unsafe(`select count(*)::int as n from "${b.schema}".portfolios where name = 'x'`))[0]!.n).toBe(
      0,
    );
  });

  it('does not route by a tenant in the path', async () => {
    expect((await a.call('GET', `/v1/tenants/${b.id}/portfolios`)).status).toBe(401);
    expect((await a.call('GET', `/v1/${b.schema}/portfolios`)).status).toBe(404);
  });

  it("refuses B's key issued to A's name (keys are bound to their tenant)", async () => {
    const res = await t.http(`/v1/portfolios/${theirs.portfolio}`, { token: b.key });
    expect(res.status).toBe(200);
    const stolen = `${b.key.slice(0, -1)}${b.key.endsWith('A') ? 'B' : 'A'}`;
    expect((await t.http('/v1/portfolios', { token: stolen })).status).toBe(401);
  });
});

describe('SQL-ish input in every parameter', () => {
  const hostile = [
    `'; drop table portfolios; --`,
    `" or 1=1 --`,
    `tenant_0123456789abcdef0123.portfolios`,
    `\\x00`,
    `$$; select 1; $$`,
    `') or ('1'='1`,
  ];

  it.each(hostile)('path ids: %j', async (evil) => {
    for (const path of ['/v1/portfolios/', '/v1/orders/', '/v1/embeddings/']) {
      const res = await a.call('GET', path + encodeURIComponent(evil));
      expect(res.status).toBe(404);
    }
  });

  it.each(hostile)('query strings: %j', async (evil) => {
    const q = encodeURIComponent(evil);
    for (const path of [
      `/v1/orders?symbol=${q}`,
      `/v1/orders?status=${q}`,
      `/v1/orders?portfolioId=${q}`,
      `/v1/portfolios?cursor=${q}`,
      `/v1/trades?from=${q}`,
      `/v1/market-data/latest?symbols=${q}`,
      `/v1/market-data/candles?symbol=${q}&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z&bucket=1h`,
    ]) {
      const res = await a.call('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
    }
  });

  it.each(hostile)('bodies: %j is stored as text or refused, never executed', async (evil) => {
    const p = await a.ok('POST', '/v1/portfolios', { name: evil.slice(0, 200) || 'x' });
    expect((await a.ok('GET', `/v1/portfolios/${p.id}`)).name).toBe(evil.slice(0, 200) || 'x');
    expect(
      (
        await a.call('POST', '/v1/orders', {
          portfolioId: p.id,
          symbol: evil,
          side: 'buy',
          type: 'market',
          quantity: '1',
        })
      ).status,
    ).toBe(400);
    const search = await a.call('POST', '/v1/embeddings/search', { vector: vector(1), k: 5, filter: { [evil]: evil } });
    expect(search.status).toBe(200);
    expect(search.body.items).toEqual([]);
  });

  it('left every table of both tenants in place', async () => {
    for (const tenant of [a, b]) {
      const [row] =
        await t.su`select count(*)::int as n from pg_tables where schemaname = ${tenant.schema} and tablename not like '\\_hyper%'`;
      expect(row!.n).toBe(7);
    }
  });
});

describe('many tenants interleaved on a pool of two connections', () => {
  it("never serves one tenant's rows to another", async () => {
    const tenants = [a, b, ...(await Promise.all([1, 2, 3].map((i) => tenantClient(t, `pool-${i}`))))];
    const names = new Map(tenants.map((c) => [c.id, `only-${c.id}`]));
    for (const c of tenants) await c.ok('POST', '/v1/portfolios', { name: names.get(c.id) });
    const mixed = Array.from({ length: 250 }, (_, i) => tenants[(i * 7) % tenants.length]!);
    const results = await Promise.all(
      mixed.map(async (c) => ({ c, res: await c.call('GET', '/v1/portfolios?limit=500') })),
    );
    for (const { c, res } of results) {
      expect(res.status).toBe(200);
      const foreign = res.body.items.filter(
        (p: { name: string }) => p.name.startsWith('only-') && p.name !== names.get(c.id),
      );
      expect(foreign).toEqual([]);
      expect(res.body.items.some((p: { name: string }) => p.name === names.get(c.id))).toBe(true);
    }
  });
});
