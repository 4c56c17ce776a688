/**
 * HTTP surface of tenant migrations: `GET /v1/admin/migrations` (admin token; the
 * composition mounts the check) answers the template's version, how many tenants are
 * behind it, and the current or last run with its failed tenants and their errors.
 *
 * @example
 * app.route('/', migrationRoutes(platform.control, docs));
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db/connect.ts';
import { MIGRATION_RUN_STATUSES } from '../db/schema.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { migrationStatus } from './runs.ts';

export const migrationStatusView = z.object({
  targetVersion: z.string(),
  tenantsBehind: z.number(),
  run: z
    .object({
      id: z.number(),
      status: z.enum(MIGRATION_RUN_STATUSES),
      targetVersion: z.string(),
      actor: z.string(),
      startedAt: z.string(),
      finishedAt: z.string().nullable(),
      total: z.number(),
      migrated: z.number(),
      failed: z.number(),
      failures: z.array(
        z.object({
          tenantId: z.string(),
          slug: z.string(),
          schema: z.string(),
          migration: z.string().nullable(),
          code: z.string().nullable(),
          error: z.string(),
          attempts: z.number(),
          failedAt: z.string(),
        }),
      ),
    })
    .nullable(),
});

export function migrationRoutes(sql: Sql, docs: OpenApi): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/admin/migrations',
      tag: 'operations (admin)',
      auth: 'admin',
      summary: 'Template version, tenants behind it, and the current or last migration run',
      responses: { 200: migrationStatusView },
    },
    async (_c, _input, reply) => reply(200, await migrationStatus(sql)),
  );
  return app;
}
