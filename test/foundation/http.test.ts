import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.ts';
import { createLogger } from '../../src/log.ts';
import { testPlatform, type TestPlatform } from '../support/platform.ts';

let t: TestPlatform;
const lines: string[] = [];
beforeAll(async () => {
  t = await testPlatform();
});
afterAll(() => t?.close());

function appWithCapturedLogs() {
  const sink = new Writable({
    write: (chunk, _, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  return createApp({ ...t, log: createLogger('info', sink) });
}

describe('HTTP skeleton', () => {
  it('answers /healthz without a token', async () => {
    const res = await t.http('/healthz', { token: null });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('gives every response a request id, keeping a plain one the caller sent', async () => {
    const generated = await t.http('/healthz', { token: null });
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const given = await t.http('/healthz', { token: null, headers: { 'x-request-id': 'trace-abc-123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-abc-123');
  });

  it('answers an unknown route with a problem+json 404', async () => {
    const res = await t.http('/v2/nothing', { token: null });
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(await res.json()).toMatchObject({
      status: 404,
      code: 'route_not_found',
      instance: '/v2/nothing',
      requestId: expect.any(String),
    });
  });

  it('logs each request as structured JSON, without the bearer token', async () => {
    const app = appWithCapturedLogs();
    await app.request('/v1/tenants', {
      headers: { authorization: `Bearer ${t.adminToken}`, 'x-request-id': 'log-check-1' },
    });
    const entry = lines.map((l) => JSON.parse(l)).find((l) => l.requestId === 'log-check-1');
    expect(entry).toMatchObject({ msg: 'request', method: 'GET', path: '/v1/tenants', status: 200 });
    expect(lines.join('\n')).not.toContain(t.adminToken);
  });

  it('redacts secrets wherever they are logged', () => {
    const captured: string[] = [];
    const log = createLogger(
      'info',
      new Writable({
        write: (c, _, done) => {
          captured.push(String(c));
          done();
        },
      }),
    );
    log.info(
      {
        password: 'p4ss',
        config: { databaseUrl: 'postgres://u:p4ss@h/db', token: 'tok3n' },
        headers: { authorization: 'Bearer tok3n' },
      },
      'x',
    );
    expect(captured.join('')).not.toMatch(/p4ss|tok3n/);
    expect(captured.join('')).toContain('<redacted>');
  });
});
