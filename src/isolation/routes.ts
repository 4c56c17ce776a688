/**
 * HTTP surface of the validator: `GET /v1/admin/isolation` (the latest stored report)
 * and `GET /metrics` (Prometheus text). Both need the admin token; app.ts mounts the
 * check in front of them.
 *
 * @example
 * app.route('/', isolationRoutes(platform.control));
 */
import { Hono } from 'hono';
import type { Sql } from '../db/connect.ts';
import { AppError } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.ts';
import { latestReport, latestSummary } from './report.ts';

/** `extraMetrics`: more Prometheus text appended to /metrics (other features' gauges). */
export function isolationRoutes(sql: Sql, extraMetrics: () => Promise<string> = async () => ''): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/v1/admin/isolation', async (c) => {
    const report = await latestReport(sql);
    if (!report) {
      throw new AppError(
        404,
        'isolation_report_not_found',
        'No isolation report yet',
        'the validator has not run yet: wait for its scheduled run or run `tenantforge validate`',
      );
    }
    return c.json(report);
  });
  app.get('/metrics', async (c) => {
    const [summary, extra] = await Promise.all([latestSummary(sql), extraMetrics()]);
    return c.body(renderMetrics(summary) + extra, 200, { 'content-type': METRICS_CONTENT_TYPE });
  });
  return app;
}
