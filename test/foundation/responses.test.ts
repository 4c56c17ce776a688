/**
 * Every documented response validates: a real service (database, object store) is driven
 * through every route it documents, and each success body is parsed with the schema
 * declared for its path, method and status. A body must parse and hold no field the
 * schema does not declare. The run fails when a documented route or status was never
 * answered, so a route added without being exercised here is caught.
 *
 * @example
 * npx vitest run test/foundation/responses.test.ts
 */
import type { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { composeApp } from '../../src/app.ts';
import type { AppEnv } from '../../src/http/env.ts';
import type { OpenApi, RouteDoc } from '../../src/http/openapi.ts';
import { saveReport } from '../../src/isolation/report.ts';
import { validate } from '../../src/isolation/validator.ts';
import { backupPlatform, testPrefix } from '../backup/support.ts';
import type { TestPlatform } from '../support/platform.ts';
import { vector } from '../support/tenant-client.ts';

let t: TestPlatform;
let app: Hono<AppEnv>;
let docs: OpenApi;
/** `METHOD path status` of every success answered, with what was wrong with its body. */
const answered = new Map<string, string[]>();

beforeAll(async () => {
  t = await backupPlatform(testPrefix('responses'));
  ({ app, docs } = composeApp(t));
}, 120_000);

afterAll(async () => {
  await t?.close();
});

/** The documented route a request path matches: literal paths win over parameterised ones. */
function routeFor(method: string, path: string): RouteDoc | undefined {
  const candidates = docs.routes().filter((r) => {
    if (r.method !== method.toLowerCase()) return false;
    const pattern = r.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{\w+\}/g, '[^/]+');
    return new RegExp(`^${pattern}$`).test(path);
  });
  return candidates.sort((a, b) => (a.path.match(/\{/g)?.length ?? 0) - (b.path.match(/\{/g)?.length ?? 0))[0];
}

/** What a body breaks of its declared schema: empty when it parses and declares every field. */
function problemsOf(schema: z.ZodType | null, body: unknown): string[] {
  if (schema === null) return body === '' ? [] : [`expected no body, got ${JSON.stringify(body).slice(0, 200)}`];
  const parsed = schema.safeParse(body);
  if (!parsed.success) return parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
  // Object schemas drop undeclared keys: a difference means the body has fields the document hides.
  try {
    expect(parsed.data).toEqual(body);
  } catch {
    return [`holds fields its schema does not declare: ${JSON.stringify(body).slice(0, 300)}`];
  }
  return [];
}

async function call(
  method: string,
  path: string,
  options: { json?: unknown; token?: string | null } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (options.token !== null) headers.authorization = `Bearer ${options.token ?? t.adminToken}`;
  if (options.json !== undefined) headers['content-type'] = 'application/json';
  const res = await app.request(path, {
    method,
    headers,
    body: options.json === undefined ? undefined : JSON.stringify(options.json),
  });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('json');
  const body = json && text ? JSON.parse(text) : text;
  const route = routeFor(method, new URL(path, 'http://x').pathname);
  expect(route, `${method} ${path} is not documented`).toBeDefined();
  const declared = route!.responses[res.status];
  // Errors are problem+json (checked elsewhere); a declared status (503 of /readyz) is checked here.
  if (res.status < 400 || declared !== undefined) {
    const key = `${method} ${route!.path} ${res.status}`;
    const problems = declared === undefined ? [`status ${res.status} is not declared`] : problemsOf(declared, body);
    answered.set(key, [...(answered.get(key) ?? []), ...problems]);
  }
  return { status: res.status, body };
}

/** Calls and expects a success. */
async function ok(method: string, path: string, options: { json?: unknown; token?: string | null } = {}) {
  const res = await call(method, path, options);
  expect(res.status, `${method} ${path}: ${JSON.stringify(res.body).slice(0, 300)}`).toBeLessThan(300);
  return res.body;
}

describe('every documented response validates against its schema', () => {
  it('drives every route and checks each success body', async () => {
    await ok('GET', '/healthz', { token: null });
    await ok('GET', '/readyz');
    await ok('GET', '/readyz', { token: null });
    await ok('GET', '/openapi.json', { token: null });

    // The registry.
    const tenant = await ok('POST', '/v1/tenants', { json: { slug: 'acme', name: 'Acme', plan: 'pro' } });
    await ok('GET', '/v1/tenants?limit=10');
    await ok('GET', '/v1/tenants/acme');
    await ok('PATCH', '/v1/tenants/acme', { json: { name: 'Acme Capital' } });
    const { key } = await ok('POST', `/v1/tenants/${tenant.id}/keys`, { json: { name: 'app' } });
    const spare = await ok('POST', `/v1/tenants/${tenant.id}/keys`);
    await ok('GET', `/v1/tenants/${tenant.id}/keys`);
    await ok('DELETE', `/v1/tenants/${tenant.id}/keys/${spare.id}`);
    await ok('POST', `/v1/tenants/${tenant.id}/credentials`);

    // The data plane, as the tenant.
    const as = { token: key as string };
    const portfolio = await ok('POST', '/v1/portfolios', { ...as, json: { name: 'Main' } });
    const other = await ok('POST', '/v1/portfolios', { ...as, json: { name: 'Other' } });
    await ok('GET', '/v1/portfolios?limit=1', as);
    await ok('GET', `/v1/portfolios/${portfolio.id}`, as);
    await ok('PATCH', `/v1/portfolios/${portfolio.id}`, { ...as, json: { name: 'Primary' } });
    const base = { portfolioId: portfolio.id, symbol: 'AAPL', side: 'buy' };
    const limit = await ok('POST', '/v1/orders', {
      ...as,
      json: { ...base, type: 'limit', quantity: '10', limitPrice: '190.5', clientOrderId: 'c-1' },
    });
    const market = await ok('POST', '/v1/orders', { ...as, json: { ...base, type: 'market', quantity: '1' } });
    await ok('GET', `/v1/orders?portfolioId=${portfolio.id}&limit=1`, as);
    await ok('GET', `/v1/orders/${limit.id}`, as);
    await ok('POST', `/v1/orders/${market.id}/cancel`, as);
    const executedAt = new Date(Date.now() - 3_600_000).toISOString();
    await ok('POST', '/v1/trades', {
      ...as,
      json: { ...base, orderId: limit.id, quantity: '4', price: '190', executedAt },
    });
    await ok('POST', '/v1/trades:batch', {
      ...as,
      json: {
        trades: [
          { ...base, quantity: '2', price: '191', fee: '0.5', executedAt },
          { ...base, side: 'sell', quantity: '1', price: '192', executedAt },
        ],
      },
    });
    await ok('GET', `/v1/trades?portfolioId=${portfolio.id}&limit=2`, as);
    const hour = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
    const bar = (minute: number) => ({
      symbol: 'AAPL',
      time: new Date(hour + minute * 60_000).toISOString(),
      open: '190',
      high: '193',
      low: '189',
      close: '192.25',
      volume: '1000',
    });
    await ok('POST', '/v1/market-data:batch', { ...as, json: { bars: [bar(0), bar(1), bar(2)] } });
    const from = new Date(hour).toISOString();
    const to = new Date(hour + 3_600_000).toISOString();
    await ok('GET', `/v1/market-data/candles?symbol=AAPL&from=${from}&to=${to}&bucket=1m`, as);
    await ok('GET', `/v1/market-data/candles?symbol=AAPL&from=${from}&to=${to}&bucket=1h`, as);
    await ok('GET', '/v1/market-data/latest?symbols=AAPL,MSFT', as);
    await ok('GET', `/v1/portfolios/${portfolio.id}/positions`, as);
    const { ids } = await ok('POST', '/v1/embeddings:batch', {
      ...as,
      json: {
        items: [
          { externalId: 'doc-1', content: 'one', metadata: { kind: 'note' }, embedding: vector(1) },
          { content: 'two', embedding: vector(2) },
        ],
      },
    });
    await ok('POST', '/v1/embeddings/search', { ...as, json: { vector: vector(1), k: 2 } });
    await ok('POST', '/v1/embeddings/search', { ...as, json: { vector: vector(1), filter: { kind: 'note' } } });
    await ok('GET', `/v1/embeddings/${ids[0]}`, as);
    await ok('DELETE', `/v1/embeddings/${ids[1]}`, as);
    await ok('DELETE', `/v1/portfolios/${other.id}`, as);

    // Operations.
    await ok('GET', '/v1/admin/migrations');
    await saveReport(t.control, await validate(t.control));
    await ok('GET', '/v1/admin/isolation');
    await ok('GET', '/metrics');

    // Backups: start, run, read, restore in place and into a new tenant.
    const backup = await ok('POST', `/v1/tenants/${tenant.id}/backups`);
    await t.backups.runAndWait(backup.id);
    await ok('GET', `/v1/tenants/${tenant.id}/backups?limit=5`);
    await ok('GET', `/v1/tenants/${tenant.id}/backups/${backup.id}`);
    await ok('GET', '/v1/admin/backups');
    await ok('POST', `/v1/tenants/${tenant.id}/restore`, { json: { backupId: backup.id, confirm: 'acme' } });
    const copy = await ok('POST', '/v1/tenants', {
      json: { slug: 'acme-copy', name: 'Acme copy', restoreFrom: { backupId: backup.id } },
    });

    await ok('DELETE', `/v1/tenants/${copy.id}?purge=true`);
    await ok('DELETE', '/v1/tenants/acme');

    // Not ready: an extension is missing (the end of this database's life).
    await t.su`drop extension pgcrypto`;
    expect((await call('GET', '/readyz')).status).toBe(503);
    expect((await call('GET', '/readyz', { token: null })).status).toBe(503);

    const broken = [...answered].filter(([, problems]) => problems.length > 0);
    expect(Object.fromEntries(broken)).toEqual({});
    const documented = docs
      .routes()
      .flatMap((r) => Object.keys(r.responses).map((status) => `${r.method.toUpperCase()} ${r.path} ${status}`));
    expect(
      documented.filter((k) => !answered.has(k)),
      'documented but never answered here',
    ).toEqual([]);
    expect(documented.length).toBeGreaterThan(35);
  }, 240_000);

  it('the check can fail: an undeclared field and a wrong type are both reported', async () => {
    const route = routeFor('GET', '/healthz')!;
    expect(problemsOf(route.responses[200]!, { status: 'ok' })).toEqual([]);
    expect(problemsOf(route.responses[200]!, { status: 'ok', extra: 1 })).toHaveLength(1);
    expect(problemsOf(route.responses[200]!, { status: 1 })).toHaveLength(1);
    expect(routeFor('GET', '/v1/embeddings/x')?.path).toBe('/v1/embeddings/{id}');
    expect(routeFor('POST', '/v1/embeddings:batch')?.path).toBe('/v1/embeddings:batch');
    expect(routeFor('GET', '/v1/nothing')).toBeUndefined();
  });
});
