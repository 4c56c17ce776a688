/**
 * The admin bearer check: any configured token works (the configuration accepts any 16+
 * characters, where hono's bearer-auth accepts only RFC 6750 token68 characters), and
 * every failure is the same problem+json 401 with code `unauthorized`.
 *
 * @example
 * npx vitest run test/foundation/admin-auth.test.ts
 */
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { describe, expect, it } from 'vitest';
import { adminAuth, adminTokenCheck } from '../../src/http/admin-auth.ts';
import type { AppEnv } from '../../src/http/env.ts';
import { problemHandler } from '../../src/http/problem.ts';
import { createLogger } from '../../src/log.ts';

const TOKEN = 'p@ss!word#0123456789"';

function appWith(middleware: ReturnType<typeof adminAuth>) {
  const app = new Hono<AppEnv>();
  app.onError(problemHandler(createLogger('silent'), { debug: false }));
  app.use(async (c, next) => {
    c.set('requestId', 'test');
    await next();
  });
  app.get('/admin', middleware, (c) => c.json({ actor: c.get('actor') }));
  return app;
}

describe('admin bearer check', () => {
  it('accepts a token with characters outside token68, and refuses everything else alike', async () => {
    const app = appWith(adminAuth(TOKEN));
    const ok = await app.request('/admin', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ actor: 'admin' });
    for (const header of [undefined, 'Bearer', `Basic ${TOKEN}`, `Bearer ${TOKEN}x`, 'Bearer short']) {
      const res = await app.request('/admin', { headers: header ? { authorization: header } : {} });
      expect(res.status, String(header)).toBe(401);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect((await res.json()).code).toBe('unauthorized');
    }
  });

  it('hono/bearer-auth would refuse that token (why the service keeps its own check)', async () => {
    const app = appWith(bearerAuth({ token: TOKEN }) as ReturnType<typeof adminAuth>);
    const res = await app.request('/admin', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(400);
  });

  it('answers yes or no without failing the request (what /readyz needs)', () => {
    const isAdmin = adminTokenCheck(TOKEN);
    expect(isAdmin(`Bearer ${TOKEN}`)).toBe(true);
    expect(isAdmin(`bearer ${TOKEN}`)).toBe(true);
    expect(isAdmin('Bearer nope')).toBe(false);
    expect(isAdmin(undefined)).toBe(false);
  });
});
