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
import type { OpenApi } from '../http/openapi.ts';
import { createTenantInput, listTenantsQuery, updateTenantInput, type CreateTenantInput } from './schemas.ts';
import type { CredentialService } from './credentials.ts';
import type { ApiKeyService } from './keys.ts';
import type { Actor, Tenant, TenantService } from './service.ts';

const idempotencyKey = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces');
const deleteQuery = z.strictObject({ purge: z.enum(['true', 'false']).default('false') });

const issueKey = z.strictObject({ name: z.string().trim().min(1).max(100).optional() });

/** Restores a backup into the tenant being created (`restoreFrom` in the body); absent when backups are not part of the build. */
export type RestoreHandler = {
  schema: z.ZodType<{ backupId: string; tenantId?: string }>;
  restore(
    input: CreateTenantInput,
    from: { backupId: string; tenantId?: string },
    who: Actor,
    idempotencyKey?: string,
  ): Promise<{ tenant: Tenant; replayed: boolean }>;
};

export function tenantRoutes(
  tenants: TenantService,
  keys: ApiKeyService,
  credentials: CredentialService,
  docs: OpenApi,
  restore?: RestoreHandler,
): Hono<AppEnv> {
  const createBody = restore ? createTenantInput.extend({ restoreFrom: restore.schema.optional() }) : createTenantInput;
  const app = new Hono<AppEnv>();
  const tag = 'tenants (admin)';
  const auth = 'admin';
  docs.add({
    method: 'post',
    path: '/v1/tenants',
    tag,
    auth,
    summary: 'Provision a tenant (Idempotency-Key supported; restoreFrom: a backup to load into it)',
    body: createBody,
    status: 201,
  });
  docs.add({
    method: 'get',
    path: '/v1/tenants',
    tag,
    auth,
    summary: 'List tenants (oldest first)',
    query: listTenantsQuery,
  });
  docs.add({ method: 'get', path: '/v1/tenants/{idOrSlug}', tag, auth, summary: 'Get a tenant by id or slug' });
  docs.add({
    method: 'patch',
    path: '/v1/tenants/{idOrSlug}',
    tag,
    auth,
    summary: 'Rename, change plan, suspend or reactivate',
    body: updateTenantInput,
  });
  docs.add({
    method: 'delete',
    path: '/v1/tenants/{idOrSlug}',
    tag,
    auth,
    summary: 'Soft delete (or ?purge=true: drop now)',
    query: deleteQuery,
  });
  docs.add({
    method: 'post',
    path: '/v1/tenants/{idOrSlug}/keys',
    tag,
    auth,
    summary: 'Issue a tenant API key (shown once)',
    body: issueKey,
    status: 201,
  });
  docs.add({
    method: 'get',
    path: '/v1/tenants/{idOrSlug}/keys',
    tag,
    auth,
    summary: "List a tenant's API keys (prefixes only)",
  });
  docs.add({
    method: 'delete',
    path: '/v1/tenants/{idOrSlug}/keys/{keyId}',
    tag,
    auth,
    summary: 'Revoke an API key',
    status: 204,
  });
  docs.add({
    method: 'post',
    path: '/v1/tenants/{idOrSlug}/credentials',
    tag,
    auth,
    summary: 'Create or rotate the direct database login (password shown once)',
    status: 201,
  });
  const who = (c: { get(k: 'actor' | 'requestId'): string }) => ({
    actor: c.get('actor'),
    requestId: c.get('requestId'),
  });

  app.post('/', async (c) => {
    const rawKey = c.req.header('idempotency-key');
    const key = rawKey === undefined ? undefined : idempotencyKey.safeParse(rawKey);
    if (key && !key.success) {
      throw new AppError(
        400,
        'invalid_idempotency_key',
        'Invalid Idempotency-Key',
        `Idempotency-Key ${key.error.issues[0]!.message}`,
        { field: 'Idempotency-Key' },
      );
    }
    const { restoreFrom, ...input } = (await jsonBody(c, createBody)) as CreateTenantInput & {
      restoreFrom?: { backupId: string; tenantId?: string };
    };
    const { tenant, replayed } =
      restoreFrom && restore
        ? await restore.restore(input, restoreFrom, who(c), key?.data)
        : await tenants.create(input, who(c), key?.data);
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

  app.post('/:idOrSlug/keys', async (c) => {
    const input =
      c.req.header('content-length') === '0' || !c.req.header('content-type') ? {} : await jsonBody(c, issueKey);
    return c.json(await keys.issue(c.req.param('idOrSlug'), input, who(c)), 201);
  });

  app.get('/:idOrSlug/keys', async (c) => c.json({ items: await keys.list(c.req.param('idOrSlug')) }));

  app.delete('/:idOrSlug/keys/:keyId', async (c) => {
    await keys.revoke(c.req.param('idOrSlug'), c.req.param('keyId'), who(c));
    return c.body(null, 204);
  });

  app.post('/:idOrSlug/credentials', async (c) =>
    c.json(await credentials.rotate(c.req.param('idOrSlug'), who(c)), 201),
  );

  return app;
}
