/**
 * The backup API under /v1/tenants/{idOrSlug}/backups (admin token), and in-place restore
 * (`POST /v1/tenants/{idOrSlug}/restore`, confirmed with the tenant's slug). Restoring
 * into a new tenant is `POST /v1/tenants` with `restoreFrom` (see the tenant routes).
 *
 * @example
 * app.route('/v1/tenants', backupRoutes(platform.backups, docs));
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { jsonBody, queryParams } from '../http/body.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import type { BackupService } from './service.ts';

const listQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(100) });

/** The body field of `POST /v1/tenants` that restores a backup into the new tenant. */
export const restoreFrom = z.strictObject({
  backupId: z.string().min(1).max(100),
  /** When given, the backup must be of this tenant (a guard against restoring the wrong one). */
  tenantId: z.string().uuid().optional(),
});

/** The body of an in-place restore: which backup, and the tenant's slug as confirmation. */
export const restoreInPlaceBody = z.strictObject({
  backupId: z.string().min(1).max(100),
  /** The tenant's slug: every row of the tenant is replaced. */
  confirm: z.string().min(1).max(100),
  /** Load a backup of another tenant into this one (its rows get this tenant's id). */
  allowOtherTenant: z.boolean().default(false),
});

export function backupRoutes(backups: BackupService, docs: OpenApi): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const tag = 'backups (admin)';
  const auth = 'admin';
  docs.add({
    method: 'post',
    path: '/v1/tenants/{idOrSlug}/backups',
    tag,
    auth,
    summary: 'Start a backup of the tenant (202; poll its status)',
    status: 202,
  });
  docs.add({
    method: 'get',
    path: '/v1/tenants/{idOrSlug}/backups',
    tag,
    auth,
    summary: "The tenant's backups, newest first",
    query: listQuery,
  });
  docs.add({
    method: 'get',
    path: '/v1/tenants/{idOrSlug}/backups/{backupId}',
    tag,
    auth,
    summary: 'A backup: status, size, rows per table, duration',
  });
  docs.add({
    method: 'post',
    path: '/v1/tenants/{idOrSlug}/restore',
    tag,
    auth,
    summary: "Replace the tenant's rows with a backup's, in one transaction (confirm: the tenant's slug)",
    body: restoreInPlaceBody,
  });

  app.post('/:idOrSlug/backups', async (c) => {
    const backup = await backups.start(c.req.param('idOrSlug'), {
      actor: c.get('actor'),
      requestId: c.get('requestId'),
    });
    backups.kick();
    c.header('location', `/v1/tenants/${backup.tenantId}/backups/${backup.id}`);
    return c.json(backup, 202);
  });
  app.get('/:idOrSlug/backups', async (c) => {
    const { limit } = queryParams(c, listQuery);
    return c.json({ items: await backups.list(c.req.param('idOrSlug'), limit) });
  });
  app.post('/:idOrSlug/restore', async (c) => {
    const body = await jsonBody(c, restoreInPlaceBody);
    const { tenant, restoredRows } = await backups.restoreInPlace(c.req.param('idOrSlug'), body.backupId, body, {
      actor: c.get('actor'),
      requestId: c.get('requestId'),
    });
    return c.json({ ...tenant, restoredFrom: body.backupId, restoredRows });
  });
  app.get('/:idOrSlug/backups/:backupId', async (c) =>
    c.json(await backups.get(c.req.param('idOrSlug'), c.req.param('backupId'))),
  );
  return app;
}
