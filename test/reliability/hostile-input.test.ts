/**
 * Hostile input against every route the service documents: the routes come from
 * `/openapi.json` (so a new route is covered the day it is added), each called through
 * the real Node HTTP server with an admin token and with a tenant API key. Every path
 * parameter, query parameter and body field in turn gets NUL characters, lone
 * surrogates, bad percent-encodings, 100 kB strings, 1e999 (JSON.parse reads Infinity),
 * 1e308 (finite, but not a 4-byte float), year 0000, nesting 10,000 deep and other junk;
 * the rest of the body is a valid request, so the bad value gets as far as it can.
 * No answer may be a 5xx, and every error must be problem+json with a `code`.
 * Raw requests that Node itself refuses (NUL in the request line or a header, an
 * over-long URL) must get problem+json too.
 */
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createHttpServer } from '../../src/http/node-server.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

type Schema = {
  type?: string;
  enum?: unknown[];
  format?: string;
  pattern?: string;
  minItems?: number;
  default?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  anyOf?: Schema[];
};
type Operation = {
  parameters?: { name: string; in: 'path' | 'query' }[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
};

/** JSON text put into a body as it is: what JSON.stringify cannot write (1e999) or overflows on (deep nesting). */
class Raw {
  constructor(readonly text: string) {}
}
const deepText = (n: number) => {
  let text = '"bottom"';
  for (let i = 0; i < n; i++) text = i % 2 ? `{"a":${text}}` : `[${text}]`;
  return text;
};
const deep = (n: number) => new Raw(deepText(n));
/** A body as JSON text, with each Raw value spliced in. */
function bodyText(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const raws: string[] = [];
  const text = JSON.stringify(value, (_, v: unknown) => (v instanceof Raw ? `@@raw${raws.push(v.text) - 1}@@` : v));
  return text.replace(/"@@raw(\d+)@@"/g, (_, i: string) => raws[Number(i)]!);
}
/** What replaces one body field. */
const BODY_VALUES: [string, unknown][] = [
  ['NUL', '\u0000'],
  ['embedded NUL', 'a\u0000b'],
  ['lone high surrogate', '\ud800'],
  ['lone low surrogate', 'tail \udfff'],
  ['100 kB string', 'x'.repeat(100_000)],
  ['1e999', new Raw('1e999')],
  ['1e308', 1e308],
  ['-1e308', -1e308],
  ['5e-324', 5e-324],
  ['year 0000', '0000-01-01T00:00:00Z'],
  ['"1e999" string', '1e999'],
  ['nested 10,000 deep', deep(10_000)],
  ['junk object', { $where: [null, { '\u0000': 1 }], __proto__x: true }],
  ['array', ['a', 1, null]],
  ['null', null],
  ['true', true],
];
/** What replaces one path segment or query value (already percent-encoded). */
const URL_VALUES: [string, string][] = [
  ['%00', '%00'],
  ['a%00b', 'a%00b'],
  ['encoded surrogate', '%ED%A0%80'],
  ['bad escape', '%ZZ'],
  ['lone %', '%'],
  ['truncated UTF-8', '%C3'],
  ['8 kB', 'y'.repeat(8_000)],
  ['1e999', '1e999'],
  ['-1', '-1'],
  ['unicode', '%E2%82%AC%F0%9F%98%80'],
];

type Answer = { status: number; contentType: string; body: string };

describe('hostile input on every documented route', () => {
  let t: TestPlatform;
  let server: Server;
  let base: string;
  let port: number;
  const ids: Record<string, string> = {};

  const send = async (method: string, path: string, token: string, body?: string): Promise<Answer> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body,
    });
    return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: await res.text() };
  };

  /** A raw request on a socket: for what fetch refuses to send. */
  const raw = (request: string | Buffer): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1');
      let data = '';
      socket.on('data', (d) => (data += d));
      socket.on('error', reject);
      socket.on('close', () => {
        const [head = '', ...rest] = data.split('\r\n\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
        const contentType = /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? '';
        resolve({ status, contentType, body: rest.join('\r\n\r\n') });
      });
      socket.end(request);
    });

  beforeAll(async () => {
    t = await testPlatform();
    server = createHttpServer(createApp(t).fetch, { host: '127.0.0.1', log: t.log });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;

    // Real ids, so that a hostile value in one field is the only thing wrong with a request.
    const admin = t.adminToken;
    const post = async (path: string, token: string, json: unknown) => {
      const res = await send('POST', path, token, JSON.stringify(json));
      expect(res.status, `${path}: ${res.body}`).toBe(201);
      return JSON.parse(res.body);
    };
    const tenant = await post('/v1/tenants', admin, { slug: 'hostile-target', name: 'Hostile target' });
    ids.tenant = tenant.id;
    const key = await post(`/v1/tenants/${tenant.id}/keys`, admin, { name: 'hostile' });
    ids.key = key.key;
    ids.keyId = key.id;
    ids.portfolio = (await post('/v1/portfolios', key.key, { name: 'Main' })).id;
    ids.order = (
      await post('/v1/orders', key.key, {
        portfolioId: ids.portfolio,
        symbol: 'AAPL',
        side: 'buy',
        type: 'limit',
        quantity: '10',
        limitPrice: '190',
      })
    ).id;
    const vector = Array.from({ length: 384 }, (_, i) => Math.sin(i));
    ids.embedding = (
      await post('/v1/embeddings:batch', key.key, {
        items: [{ externalId: 'n1', content: 'note', metadata: { symbol: 'AAPL' }, embedding: vector }],
      })
    ).ids[0];
  });
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    await t?.close();
  });

  /** A valid value for a schema (field names that need real ids get them). */
  function sample(schema: Schema, name = ''): unknown {
    if (name === 'portfolioId') return ids.portfolio;
    if (name === 'orderId') return ids.order;
    if (name === 'symbol') return 'AAPL';
    if (schema.anyOf) return sample(schema.anyOf[0]!, name);
    if (schema.enum) return schema.enum[0];
    if (schema.default !== undefined && schema.type !== 'object') return schema.default;
    switch (schema.type) {
      case 'string':
        if (schema.format === 'date-time') return '2026-11-30T14:30:00Z';
        if (schema.pattern?.includes('\\d')) return '1';
        if (schema.pattern?.includes('[A-Z]{3}')) return 'USD';
        return name === 'slug' ? 'hostile-probe' : 'probe';
      case 'number':
        return 0.5;
      case 'integer':
        return 1;
      case 'boolean':
        return true;
      case 'array':
        return Array.from({ length: schema.minItems ?? 1 }, () => sample(schema.items ?? { type: 'string' }));
      case 'object': {
        const out: Record<string, unknown> = {};
        for (const [key, s] of Object.entries(schema.properties ?? {})) out[key] = sample(s, key);
        if (!schema.properties) out.note = 'x';
        return out;
      }
      default:
        return 'probe';
    }
  }

  /** Paths to every field worth replacing: leaves, whole objects and arrays; long number arrays only at index 0. */
  function fieldPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
    if (value === null || typeof value !== 'object') return [path];
    const out: (string | number)[][] = path.length ? [path] : [];
    if (Array.isArray(value)) {
      const indexes = value.length > 3 ? [0] : value.map((_, i) => i);
      for (const i of indexes) out.push(...fieldPaths(value[i], [...path, i]));
    } else for (const [key, v] of Object.entries(value)) out.push(...fieldPaths(v, [...path, key]));
    return out;
  }

  function replaced(value: unknown, path: (string | number)[], by: unknown): unknown {
    const copy = structuredClone(value) as Record<string | number, unknown>;
    let at = copy;
    for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
    at[path[path.length - 1]!] = by;
    return copy;
  }

  const embeddingCount = async () => {
    const [row] = await t.su.unsafe(
      `select count(*)::int as n from "${(await t.tenants.get(ids.tenant!)).schema}".embeddings`,
    );
    return row!.n as number;
  };

  const pathFor = (template: string, overrides: Record<string, string> = {}) =>
    template.replace(/\{(\w+)\}/g, (_, param: string) => {
      if (param in overrides) return overrides[param]!;
      if (param === 'idOrSlug') return ids.tenant!;
      if (param === 'keyId') return ids.keyId!;
      if (template.startsWith('/v1/orders')) return ids.order!;
      if (template.startsWith('/v1/embeddings')) return ids.embedding!;
      return ids.portfolio!;
    });

  it('answers no 5xx and problem+json with a code on every error, for every route, field and kind of key', async () => {
    const doc = JSON.parse((await send('GET', '/openapi.json', t.adminToken)).body) as {
      paths: Record<string, Record<string, Operation>>;
    };
    const failures: string[] = [];
    let requests = 0;
    const check = (what: string, a: Answer) => {
      requests++;
      if (a.status >= 500) failures.push(`${what}: ${a.status} ${a.body.slice(0, 200)}`);
      else if (a.status >= 400) {
        const code = a.contentType.startsWith('application/problem+json')
          ? (JSON.parse(a.body) as { code?: unknown }).code
          : undefined;
        if (typeof code !== 'string')
          failures.push(`${what}: ${a.status} without problem+json code (${a.contentType}) ${a.body.slice(0, 200)}`);
      }
    };

    const routes = Object.entries(doc.paths).flatMap(([template, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ template, method: method.toUpperCase(), op })),
    );
    expect(routes.length).toBeGreaterThan(25);
    for (const { template, method, op } of routes) {
      // Destructive routes would remove the ids the other cases need: they get the hostile values, never the real ids.
      const destructive = method === 'DELETE' || template.endsWith('/credentials');
      for (const token of [t.adminToken, ids.key!]) {
        const kind = token === t.adminToken ? 'admin token' : 'tenant key';
        const schema = op.requestBody?.content['application/json'].schema;
        const valid = schema ? sample(schema) : undefined;
        const basePath = destructive
          ? pathFor(template, {
              idOrSlug: 'hostile-nobody',
              keyId: '00000000-0000-4000-8000-000000000000',
              id: '00000000-0000-4000-8000-000000000000',
            })
          : pathFor(template);

        for (const param of (op.parameters ?? []).filter((p) => p.in === 'path')) {
          for (const [label, value] of URL_VALUES) {
            check(
              `${method} ${template} ${param.name}=${label} (${kind})`,
              await send(method, pathFor(template, { [param.name]: value }), token, bodyText(valid)),
            );
          }
        }
        for (const param of (op.parameters ?? []).filter((p) => p.in === 'query')) {
          for (const [label, value] of URL_VALUES) {
            check(
              `${method} ${template}?${param.name}=${label} (${kind})`,
              await send(method, `${basePath}?${param.name}=${value}`, token, bodyText(valid)),
            );
          }
        }
        check(
          `${method} ${template} with a hostile query name (${kind})`,
          await send(method, `${basePath}?%00=1&a%ED%A0%80=2`, token, bodyText(valid)),
        );
        if (valid !== undefined) {
          for (const path of fieldPaths(valid)) {
            for (const [label, value] of BODY_VALUES) {
              check(
                `${method} ${template} body ${path.join('.')}=${label} (${kind})`,
                await send(method, basePath, token, bodyText(replaced(valid, path, value))),
              );
            }
          }
          for (const [label, text] of [
            ['whole body nested 10,000 deep', deepText(10_000)],
            ['whole body 1e999', '1e999'],
            ['whole body NUL', '"\\u0000"'],
            ['invalid UTF-8 bytes', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]).toString('latin1')],
            ['truncated JSON', '{"a": ['],
          ] as const) {
            const res =
              label === 'invalid UTF-8 bytes'
                ? await fetch(`${base}${basePath}`, {
                    method,
                    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                    body: Buffer.from(text, 'latin1'),
                  })
                : await fetch(`${base}${basePath}`, {
                    method,
                    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
                    body: text,
                  });
            check(`${method} ${template} ${label} (${kind})`, {
              status: res.status,
              contentType: res.headers.get('content-type') ?? '',
              body: await res.text(),
            });
          }
        }
      }
    }
    console.log(`hostile input: ${routes.length} routes, ${requests} requests`);
    expect(failures).toEqual([]);
  }, 600_000);

  it('refuses each input the issue named with a 400 and the code that says why, storing nothing', async () => {
    const key = ids.key!;
    const count = async (path: string) => JSON.parse((await send('GET', path, key)).body).items.length as number;
    const before = { portfolios: await count('/v1/portfolios'), embeddings: await embeddingCount() };
    const vector = (first: unknown) => [first, ...Array.from({ length: 383 }, () => 0.1)];
    const cases: [string, Promise<Answer>, string][] = [
      ['NUL in a tenant id', send('GET', '/v1/tenants/%00', t.adminToken), 'invalid_characters'],
      ['NUL inside a path segment', send('GET', '/v1/tenants/a%00b/keys', t.adminToken), 'invalid_characters'],
      ['NUL on credentials', send('POST', '/v1/tenants/%00/credentials', t.adminToken), 'invalid_characters'],
      ['encoded lone surrogate in a query', send('GET', '/v1/tenants?cursor=%ED%A0%80', t.adminToken), 'malformed_url'],
      [
        'NUL in a portfolio name',
        send('POST', '/v1/portfolios', key, JSON.stringify({ name: 'a\u0000b' })),
        'invalid_characters',
      ],
      [
        'lone surrogate in a portfolio name',
        send('POST', '/v1/portfolios', key, JSON.stringify({ name: 'a\ud800' })),
        'invalid_characters',
      ],
      [
        'NUL in embedding metadata',
        send(
          'POST',
          '/v1/embeddings:batch',
          key,
          JSON.stringify({ items: [{ content: 'c', metadata: { note: '\u0000' }, embedding: vector(0.1) }] }),
        ),
        'invalid_characters',
      ],
      [
        'a vector with 1e308',
        send(
          'POST',
          '/v1/embeddings:batch',
          key,
          JSON.stringify({ items: [{ content: 'c', embedding: vector(1e308) }] }),
        ),
        'validation_failed',
      ],
      [
        'a vector with 1e999',
        send('POST', '/v1/embeddings/search', key, bodyText({ vector: vector(new Raw('1e999')) })),
        'validation_failed',
      ],
      [
        'a bar in year 0000',
        send(
          'POST',
          '/v1/market-data:batch',
          key,
          JSON.stringify({
            bars: [{ symbol: 'AAPL', time: '0000-01-01T00:00:00Z', open: '1', high: '1', low: '1', close: '1' }],
          }),
        ),
        'validation_failed',
      ],
      [
        'metadata nested 10,000 deep',
        send(
          'POST',
          '/v1/embeddings:batch',
          key,
          bodyText({ items: [{ content: 'c', metadata: { deep: deep(10_000) }, embedding: vector(0.1) }] }),
        ),
        'too_deeply_nested',
      ],
    ];
    for (const [what, pending, code] of cases) {
      const a = await pending;
      expect(a.status, `${what}: ${a.body.slice(0, 300)}`).toBe(400);
      expect(a.contentType).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(a.body).code, what).toBe(code);
    }
    expect({ portfolios: await count('/v1/portfolios'), embeddings: await embeddingCount() }).toEqual(before);
  });

  it('answers requests Node refuses before any handler with problem+json', async () => {
    const cases: [string, string | Buffer, number, string][] = [
      [
        'an over-long URL',
        `GET /v1/tenants?q=${'z'.repeat(20_000)} HTTP/1.1\r\nHost: localhost\r\n\r\n`,
        431,
        'request_header_fields_too_large',
      ],
      [
        'over-long headers',
        `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'z'.repeat(20_000)}\r\n\r\n`,
        431,
        'request_header_fields_too_large',
      ],
      [
        'a raw NUL in the URL',
        Buffer.from('GET /v1/tenants/\u0000 HTTP/1.1\r\nHost: localhost\r\n\r\n', 'latin1'),
        400,
        'malformed_url',
      ],
      [
        'a NUL in a header',
        Buffer.from('GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Evil: a\u0000b\r\n\r\n', 'latin1'),
        400,
        'malformed_request',
      ],
      ['a malformed request line', 'GARBAGE\r\n\r\n', 400, 'malformed_request'],
      ['a backslash in the path', 'GET /v1\\tenants HTTP/1.1\r\nHost: localhost\r\n\r\n', 400, 'malformed_request'],
    ];
    for (const [what, request, status, code] of cases) {
      const a = await raw(request);
      expect(a.status, `${what}: ${a.body}`).toBe(status);
      expect(a.contentType, what).toMatch(/^application\/problem\+json/);
      expect(JSON.parse(a.body).code, what).toBe(code);
    }
  });
});
