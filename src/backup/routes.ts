/**
 * The backup API under /v1/tenants/{idOrSlug}/backups (admin token), and in-place restore
 * (`POST /v1/tenants/{idOrSlug}/restore`, confirmed with the tenant's slug). Restoring
 * into a new tenant is `POST /v1/tenants` with `restoreFrom` (see the tenant routes).
 *
 * @example
 * app.route('/', backupRoutes(platform.backups, docs));
 */
import { Hono } from 'hono';
import { z } from 'zod';
import { BACKUP_STATUSES } from '../db/schema.ts';
import { type AppEnv, who } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { tenantView } from '../tenants/schemas.ts';
import { OVERDUE_LIST_LIMIT } from './coverage.ts';
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

/** A backup as the API shows it: its job state and, once done, its size and rows per table. */
export const backupView = z.object({
  id: z.string(),
  tenantId: z.string(),
  status: z.enum(BACKUP_STATUSES),
  trigger: z.enum(['manual', 'scheduled']),
  attempts: z.number(),
  error: z.string().nullable(),
  templateVersion: z.string().nullable(),
  sizeBytes: z.number().nullable(),
  rawBytes: z.number().nullable(),
  tables: z.record(z.string(), z.number()).nullable(),
  encryption: z.string().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  durationMs: z.number().nullable(),
});

const tenantParams = z.object({ idOrSlug: z.string() });

const coverageQuery = z.strictObject({
  limit: z.coerce.number().int().min(0).max(1000).default(OVERDUE_LIST_LIMIT),
});

/** Backup coverage as backup/coverage.ts computes it. */
const coverageView = z.object({
  configured: z.boolean(),
  scheduledTenants: z.number(),
  overdueTenants: z.number(),
  lastFailedTenants: z.number(),
  oldestAgeSeconds: z.number().nullable(),
  jobs: z.object({ queued: z.number(), running: z.number(), delaySeconds: z.number() }),
  overdue: z.array(
    z.object({
      tenantId: z.string(),
      slug: z.string(),
      plan: z.string(),
      intervalSeconds: z.number(),
      lastBackupAt: z.string().nullable(),
      ageSeconds: z.number(),
      lastAttemptFailed: z.boolean(),
    }),
  ),
});

export function backupRoutes(backups: BackupService, docs: OpenApi): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const tag = 'backups (admin)';
  const auth = 'admin';

  defineRoute(
    app,
    docs,
    {
      method: 'post',
      path: '/v1/tenants/{idOrSlug}/backups',
      tag,
      auth,
      summary: 'Start a backup of the tenant (202; poll its status)',
      params: tenantParams,
      responses: { 202: backupView },
    },
    async (c, { params }, reply) => {
      const backup = await backups.start(params.idOrSlug, who(c));
      backups.kick();
      c.header('location', `/v1/tenants/${backup.tenantId}/backups/${backup.id}`);
      return reply(202, backup);
    },
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/tenants/{idOrSlug}/backups',
      tag,
      auth,
      summary: "The tenant's backups, newest first",
      params: tenantParams,
      query: listQuery,
      responses: { 200: z.object({ items: z.array(backupView) }) },
    },
    async (_c, { params, query }, reply) => reply(200, { items: await backups.list(params.idOrSlug, query.limit) }),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/tenants/{idOrSlug}/backups/{backupId}',
      tag,
      auth,
      summary: 'A backup: status, size, rows per table, duration',
      params: tenantParams.extend({ backupId: z.string() }),
      responses: { 200: backupView },
    },
    async (_c, { params }, reply) => reply(200, await backups.get(params.idOrSlug, params.backupId)),
  );

  defineRoute(
    app,
    docs,
    {
      method: 'post',
      path: '/v1/tenants/{idOrSlug}/restore',
      tag,
      auth,
      summary: "Replace the tenant's rows with a backup's, in one transaction (confirm: the tenant's slug)",
      params: tenantParams,
      body: restoreInPlaceBody,
      responses: {
        200: tenantView.extend({ restoredFrom: z.string(), restoredRows: z.record(z.string(), z.number()) }),
      },
    },
    async (c, { params, body }, reply) => {
      const { tenant, restoredRows } = await backups.restoreInPlace(params.idOrSlug, body.backupId, body, who(c));
      return reply(200, { ...tenant, restoredFrom: body.backupId, restoredRows });
    },
  );

  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/admin/backups',
      tag: 'operations (admin)',
      auth,
      summary: 'Whether scheduled backups keep up: overdue tenants (most overdue first), failures, the job queue',
      query: coverageQuery,
      responses: { 200: coverageView },
    },
    async (_c, { query }, reply) => reply(200, await backups.coverage(query.limit)),
  );

  return app;
}
