/**
 * The route definition on its own: what it registers, how each kind of bad input is
 * answered (the codes every route relies on), and what the types refuse. The `@ts-expect-error`
 * lines are checked by `npm run typecheck`: if a wrong reply compiled, tsc would fail on
 * the unused directive.
 *
 * @example
 * npx vitest run test/foundation/route.test.ts
 */
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { AppEnv } from '../../src/http/env.ts';
import { OpenApi } from '../../src/http/openapi.ts';
import { problemHandler } from '../../src/http/problem.ts';
import { defineRoute, honoPath, pathUuid } from '../../src/http/route.ts';
import { createLogger } from '../../src/log.ts';

const view = z.object({ id: z.string(), limit: z.number(), name: z.string() });

function testApp() {
  const app = new Hono<AppEnv>();
  const docs = new OpenApi();
  app.onError(problemHandler(createLogger('silent'), { debug: false }));
  app.use(async (c, next) => {
    c.set('requestId', 'test');
    await next();
  });
  defineRoute(
    app,
    docs,
    {
      method: 'patch',
      path: '/v1/things/{id}',
      tag: 'things',
      auth: 'tenant',
      summary: 'Rename a thing',
      params: z.object({ id: pathUuid('thing') }),
      query: z.strictObject({ limit: z.coerce.number().int().min(1).default(5) }),
      body: z.strictObject({ name: z.string().min(1) }),
      responses: { 200: view, 204: null },
    },
    async (_c, { params, query, body }, reply) =>
      body.name === 'gone' ? reply(204) : reply(200, { id: params.id, limit: query.limit, name: body.name }),
  );
  return { app, docs };
}

const ID = '0B0E5C1E-3B7A-4C1E-9C1E-0B0E5C1E3B7A';
const patch = (app: Hono<AppEnv>, path: string, body: unknown) =>
  app.request(path, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

describe('defineRoute', () => {
  it('registers the one path in both forms and validates path, query and body into the handler', async () => {
    const { app, docs } = testApp();
    expect(honoPath('/v1/things/{id}/x/{other}')).toBe('/v1/things/:id/x/:other');
    expect(docs.routes().map((r) => `${r.method} ${r.path}`)).toEqual(['patch /v1/things/{id}']);
    const doc = docs.document() as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths['/v1/things/{id}']!.patch!.responses).sort()).toEqual(['200', '204', 'default']);

    const res = await patch(app, `/v1/things/${ID}?limit=7`, { name: 'new' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: ID.toLowerCase(), limit: 7, name: 'new' });
    const gone = await patch(app, `/v1/things/${ID}`, { name: 'gone' });
    expect(gone.status).toBe(204);
    expect(await gone.text()).toBe('');
  });

  it('answers a malformed path id with the resource 404, before reading the body', async () => {
    const { app } = testApp();
    const res = await patch(app, '/v1/things/not-a-uuid', { name: 1 });
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe('thing_not_found');
  });

  it('answers a bad query or body with validation_failed naming the field, and a non-JSON body with 415', async () => {
    const { app } = testApp();
    const query = await patch(app, `/v1/things/${ID}?limit=0`, { name: 'x' });
    expect(query.status).toBe(400);
    expect(await query.json()).toMatchObject({ code: 'validation_failed', field: 'limit' });
    const body = await patch(app, `/v1/things/${ID}`, { name: 'x', extra: true });
    expect(body.status).toBe(400);
    expect((await body.json()).code).toBe('validation_failed');
    const text = await app.request(`/v1/things/${ID}`, { method: 'PATCH', body: 'name=x' });
    expect(text.status).toBe(415);
    expect((await text.json()).code).toBe('unsupported_media_type');
  });

  it('types the reply from the declared responses', () => {
    const app = new Hono<AppEnv>();
    const spec = {
      method: 'get',
      path: '/x',
      tag: 't',
      auth: 'none',
      summary: 's',
      responses: { 200: view },
    } as const;
    // @ts-expect-error 201 is not a declared status
    defineRoute(app, new OpenApi(), spec, async (_c, _i, reply) => reply(201, { id: 'a', limit: 1, name: 'n' }));
    // @ts-expect-error the body misses a declared field
    defineRoute(app, new OpenApi(), spec, async (_c, _i, reply) => reply(200, { id: 'a', limit: 1 }));
    // @ts-expect-error a reply must come from reply(), not be made by hand
    defineRoute(app, new OpenApi(), spec, async () => ({ status: 200, body: { id: 'a', limit: 1, name: 'n' } }));
    defineRoute(app, new OpenApi(), spec, async (_c, _i, reply) => reply(200, { id: 'a', limit: 1, name: 'n' }));
    expect(app.routes.length).toBe(4);
  });
});
