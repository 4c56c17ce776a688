/**
 * HTTP surface of the validator: `GET /v1/admin/isolation` (the latest stored report)
 * and `GET /metrics` (Prometheus text). Both need the admin token; the composition mounts
 * the check in front of them.
 *
 * @example
 * app.route('/', isolationRoutes(platform.control, docs));
 */
import { Hono } from 'hono';
import { z } from 'zod';
import type { Sql } from '../db/connect.ts';
import { AppError } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { OpenApi } from '../http/openapi.ts';
import { defineRoute } from '../http/route.ts';
import { CHECK_NAMES } from './checks/catalog.ts';
import { METRICS_CONTENT_TYPE } from '../http/prometheus.ts';
import { renderMetrics } from './metrics.ts';
import { latestReport, latestSummary } from './report.ts';

const check = z.enum(CHECK_NAMES as [string, ...string[]]);
const run = {
  id: z.number(),
  scope: z.object({ tenant: z.string().nullable() }),
  startedAt: z.string(),
  finishedAt: z.string(),
  durationMs: z.number(),
  tenantsChecked: z.number(),
};
/** A stored report: a completed run (clean or with violations), or a run that could not complete. */
export const reportView = z.discriminatedUnion('outcome', [
  z.object({
    outcome: z.enum(['clean', 'violations']),
    ...run,
    counts: z.record(check, z.number()),
    violations: z.array(
      z.object({
        check,
        tenantId: z.string().nullable(),
        tenantSlug: z.string().nullable(),
        object: z.string(),
        rule: z.string(),
        fix: z.string(),
        autofix: z.boolean(),
      }),
    ),
    notChecked: z.array(z.object({ tenantId: z.string(), tenantSlug: z.string(), reason: z.string() })),
    fixes: z
      .array(
        z.object({
          check,
          tenantId: z.string().nullable(),
          object: z.string(),
          sql: z.string(),
          applied: z.boolean(),
          error: z.string().optional(),
        }),
      )
      .optional(),
  }),
  z.object({ outcome: z.literal('error'), ...run, error: z.string() }),
]);

/** `extraMetrics`: more Prometheus text appended to /metrics (other features' gauges). */
export function isolationRoutes(
  sql: Sql,
  docs: OpenApi,
  extraMetrics: () => Promise<string> = async () => '',
): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/v1/admin/isolation',
      tag: 'operations (admin)',
      auth: 'admin',
      summary: 'The latest isolation report of the validator',
      responses: { 200: reportView },
    },
    async (_c, _input, reply) => {
      const report = await latestReport(sql);
      if (!report) {
        throw new AppError(
          404,
          'isolation_report_not_found',
          'No isolation report yet',
          'the validator has not run yet: wait for its scheduled run or run `tenantforge validate`',
        );
      }
      return reply(200, report);
    },
  );
  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/metrics',
      tag: 'operations (admin)',
      auth: 'admin',
      summary: 'Prometheus metrics: requests, isolation checks, migrations, backups, the warm pool',
      responses: { 200: z.string() },
      contentType: METRICS_CONTENT_TYPE,
    },
    async (_c, _input, reply) => {
      const [summary, extra] = await Promise.all([latestSummary(sql), extraMetrics()]);
      return reply(200, renderMetrics(summary) + extra);
    },
  );
  return app;
}
