/**
 * The registry API under /v1/tenants (admin token). Thin: parse, call TenantService, shape.
 *
 * @example
 * app.route('/', tenantRoutes(tenants, keys, credentials, docs, restore));
 */
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import { AppError } from '../errors.ts';
import { jsonBody } from '../http/body.ts';
import { pageOf } from '../http/cursor.ts';
import { type AppEnv, who } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import {
  apiKeyView,
  createTenantInput,
  credentialsView,
  issuedKeyView,
  listTenantsQuery,
  tenantView,
  updateTenantInput,
  type CreateTenantInput,
} from './schemas.ts';
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
const tenantParams = z.object({ idOrSlug: z.string() });
const keyParams = tenantParams.extend({ keyId: z.string() });

/** Checked before the body, so a bad key is reported as such whatever the body holds. */
const idempotencyKeyHeader: MiddlewareHandler<AppEnv> = async (c, next) => {
  const raw = c.req.header('idempotency-key');
  const key = raw === undefined ? undefined : idempotencyKey.safeParse(raw);
  if (key && !key.success) {
    throw new AppError(
      400,
      'invalid_idempotency_key',
      'Invalid Idempotency-Key',
      `Idempotency-Key ${key.error.issues[0]!.message}`,
      { field: 'Idempotency-Key' },
    );
  }
  await next();
};

/** The body of `POST .../keys` is optional: no body at all means no name. */
const optionalJson = async <S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> =>
  c.req.header('content-length') === '0' || !c.req.header('content-type') ? schema.parse({}) : jsonBody(c, schema);

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

  defineRoute(
    app,
    docs,
    {
      method: 'post',
      path: '/v1/tenants',
      tag,
      auth,
      summary: 'Provision a tenant (Idempotency-Key supported; restoreFrom: a backup to load into it)',
      before: [idempotencyKeyHeader],
      body: createBody,
      responses: { 201: tenantView },
    },
    async (c, { body }, reply) => {
      const key = c.req.header('idempotency-key');
      const { restoreFrom, ...input } = body as CreateTenantInput & {
        restoreFrom?: { backupId: string; tenantId?: string };
      };
      const { tenant, replayed } =
        restoreFrom && restore
          ? await restore.restore(input, restoreFrom, who(c), key)
          : await tenants.create(input, who(c), key);
      c.header('location', `/v1/tenants/${tenant.id}`);
      if (replayed) c.header('idempotent-replayed', 'true');
      return reply(201, tenant);
    },
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/tenants',
      tag,
      auth,
      summary: 'List tenants (oldest first)',
      query: listTenantsQuery,
      responses: { 200: pageOf(tenantView) },
    },
    async (_c, { query }, reply) => reply(200, await tenants.list(query)),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/tenants/{idOrSlug}',
      tag,
      auth,
      summary: 'Get a tenant by id or slug',
      params: tenantParams,
      responses: { 200: tenantView },
    },
    async (_c, { params }, reply) => reply(200, await tenants.get(params.idOrSlug)),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'patch',
      path: '/v1/tenants/{idOrSlug}',
      tag,
      auth,
      summary: 'Rename, change plan, suspend or reactivate',
      params: tenantParams,
      body: updateTenantInput,
      responses: { 200: tenantView },
    },
    async (c, { params, body }, reply) => reply(200, await tenants.update(params.idOrSlug, body, who(c))),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'delete',
      path: '/v1/tenants/{idOrSlug}',
      tag,
      auth,
      summary: 'Soft delete (or ?purge=true: drop now)',
      params: tenantParams,
      query: deleteQuery,
      responses: { 200: tenantView },
    },
    async (c, { params, query }, reply) =>
      reply(200, await tenants.delete(params.idOrSlug, { purge: query.purge === 'true' }, who(c))),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'post',
      path: '/v1/tenants/{idOrSlug}/keys',
      tag,
      auth,
      summary: 'Issue a tenant API key (shown once)',
      params: tenantParams,
      body: issueKey,
      readBody: optionalJson,
      responses: { 201: issuedKeyView },
    },
    async (c, { params, body }, reply) => reply(201, await keys.issue(params.idOrSlug, body, who(c))),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/tenants/{idOrSlug}/keys',
      tag,
      auth,
      summary: "List a tenant's API keys (prefixes only)",
      params: tenantParams,
      responses: { 200: z.object({ items: z.array(apiKeyView) }) },
    },
    async (_c, { params }, reply) => reply(200, { items: await keys.list(params.idOrSlug) }),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'delete',
      path: '/v1/tenants/{idOrSlug}/keys/{keyId}',
      tag,
      auth,
      summary: 'Revoke an API key',
      params: keyParams,
      responses: { 204: null },
    },
    async (c, { params }, reply) => {
      await keys.revoke(params.idOrSlug, params.keyId, who(c));
      return reply(204);
    },
  );

  defineRoute(
    app,
    docs,
    {
      method: 'post',
      path: '/v1/tenants/{idOrSlug}/credentials',
      tag,
      auth,
      summary: 'Create or rotate the direct database login (password shown once)',
      params: tenantParams,
      responses: { 201: credentialsView },
    },
    async (c, { params }, reply) => reply(201, await credentials.rotate(params.idOrSlug, who(c))),
  );

  return app;
}
