/**
 * HTTP surface of tenant migrations: `GET /v1/admin/migrations` (admin token; app.ts
 * mounts the check) answers the template's version, how many tenants are behind it, and
 * the current or last run with its failed tenants and their errors.
 *
 * @example
 * app.route('/', migrationRoutes(platform.control));
 */
import { Hono } from 'hono';
import type { Sql } from '../db/connect.ts';
import type { AppEnv } from '../http/env.ts';
import { migrationStatus } from './runs.ts';

export function migrationRoutes(sql: Sql): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/v1/admin/migrations', async (c) => c.json(await migrationStatus(sql)));
  return app;
}
