/**
 * The HTTP application: request ids, access logs, problem+json errors, and the routes.
 *
 * @example
 * const app = createApp(platform);
 * const res = await app.request('/healthz');
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { AppError } from '../errors.ts';
import { isolationRoutes } from '../isolation/routes.ts';
import type { Platform } from '../platform.ts';
import { tenantRoutes } from '../tenants/routes.ts';
import { adminAuth } from './admin-auth.ts';
import type { AppEnv } from './env.ts';
import { healthRoutes } from './health.ts';
import { problemHandler, problemResponse } from './problem.ts';

const ADMIN_BODY_LIMIT = 64 * 1024;

export function createApp(platform: Platform): Hono<AppEnv> {
  const { log } = platform;
  const app = new Hono<AppEnv>();

  // Accept a caller's id only when it is short and plain, so it cannot forge log lines.
  app.use(requestId({ limitLength: 128 }));
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const line = { requestId: c.get('requestId'), method: c.req.method, path: c.req.path, status: c.res.status, durationMs: Math.round((performance.now() - started) * 100) / 100 };
    if (c.res.status >= 500) log.error(line, 'request');
    else log.info(line, 'request');
  });
  app.onError(problemHandler(log, { debug: platform.config.debugErrors }));
  app.notFound((c) => problemResponse(c, { status: 404, code: 'route_not_found', title: 'Not found', detail: `no route for ${c.req.method} ${c.req.path}` }));

  app.route('/', healthRoutes(platform));

  const tooLarge = () => {
    throw new AppError(413, 'payload_too_large', 'Payload too large', `admin request bodies are limited to ${ADMIN_BODY_LIMIT} bytes`);
  };
  app.use('/v1/tenants', adminAuth(platform.adminToken), bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: tooLarge }));
  app.use('/v1/tenants/*', adminAuth(platform.adminToken), bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: tooLarge }));
  app.route('/v1/tenants', tenantRoutes(platform.tenants));

  app.use('/v1/admin/isolation', adminAuth(platform.adminToken));
  app.use('/metrics', adminAuth(platform.adminToken));
  app.route('/', isolationRoutes(platform.control));
  return app;
}
