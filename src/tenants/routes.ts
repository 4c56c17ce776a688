/**
 * The registry API under /v1/tenants (admin token). Thin: parse, call TenantService, shape.
 *
 * @example
 * app.route('/v1/tenants', tenantRoutes(service));
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { jsonBody, queryParams } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';
import { createTenantInput, listTenantsQuery, updateTenantInput } from './schemas.ts';
import type { TenantService } from './service.ts';

const idempotencyKey = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const deleteQuery = z.strictObject({ purge: z.enum(['true', 'false']).default('false') });

export function tenantRoutes(tenants: TenantService): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const who = (c: { get(k: 'actor' | 'requestId'): string }) => ({ actor: c.get('actor'), requestId: c.get('requestId') });

  app.post('/', async (c) => {
    const rawKey = c.req.header('idempotency-key');
    const key = rawKey === undefined ? undefined : idempotencyKey.safeParse(rawKey);
    if (key && !key.success) {
      throw new AppError(400, 'invalid_idempotency_key', 'Invalid Idempotency-Key', `Idempotency-Key ${key.error.issues[0]!.message}`, { field: 'Idempotency-Key' });
    }
    const input = await jsonBody(c, createTenantInput);
    const { tenant, replayed } = await tenants.create(input, who(c), key?.data);
    c.header('location', `/v1/tenants/${tenant.id}`);
    if (replayed) c.header('idempotent-replayed', 'true');
    return c.json(tenant, 201);
  });

  app.get('/', async (c) => c.json(await tenants.list(queryParams(c, listTenantsQuery))));

  app.get('/:idOrSlug', async (c) => c.json(await tenants.get(c.req.param('idOrSlug'))));

  app.patch('/:idOrSlug', async (c) => {
    const patch = await jsonBody(c, updateTenantInput);
    return c.json(await tenants.update(c.req.param('idOrSlug'), patch, who(c)));
  });

  app.delete('/:idOrSlug', async (c) => {
    const { purge } = queryParams(c, deleteQuery);
    return c.json(await tenants.delete(c.req.param('idOrSlug'), { purge: purge === 'true' }, who(c)));
  });

  return app;
}
