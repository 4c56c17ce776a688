/**
 * The HTTP application: request ids, access logs, problem+json errors, and the routes.
 *
 * @example
 * const app = createApp(platform);
 * const res = await app.request('/healthz');
 * const { app, docs } = composeApp(platform);   // with the route registry (tests check every documented response)
 */
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { requestId } from 'hono/request-id';
import { backupRoutes, restoreFrom } from './backup/routes.ts';
import { AppError } from './errors.ts';
import { isolationRoutes } from './isolation/routes.ts';
import { renderMigrationMetrics } from './migrations/metrics.ts';
import { renderBackupMetrics } from './backup/coverage.ts';
import { renderTenantMetrics } from './tenants/metrics.ts';
import { pooledCounts } from './tenants/warm-pool.ts';
import { migrationRoutes } from './migrations/routes.ts';
import { migrationStatus } from './migrations/runs.ts';
import type { Platform } from './platform.ts';
import { z } from 'zod';
import type { ChunkLimits } from './data/chunk-budget.ts';
import type { Runtime } from './db/with-tenant.ts';
import { embeddingRoutes } from './data/embeddings.ts';
import { marketDataRoutes } from './data/market-data.ts';
import { orderRoutes } from './data/orders.ts';
import { portfolioRoutes } from './data/portfolios.ts';
import { tenantAuth } from './data/tenant-auth.ts';
import { tradeRoutes } from './data/trades.ts';
import { tenantRoutes } from './tenants/routes.ts';
import { adminAuth } from './http/admin-auth.ts';
import type { AppEnv } from './http/env.ts';
import { availabilityGate, healthRoutes } from './health.ts';
import { urlHygiene } from './http/hygiene.ts';
import { OpenApi } from './http/openapi.ts';
import { defineRoute } from './http/route.ts';
import { problemHandler, problemResponse } from './http/problem.ts';
import { MetricsText } from './http/prometheus.ts';
import { RequestMetrics, routeOf } from './http/request-metrics.ts';
import { renderRuntimeMetrics } from './db/runtime-metrics.ts';

/** The OpenAPI document's top level (the tests that read it check its paths). */
const openApiDocument = z.object({
  openapi: z.string(),
  info: z.object({ title: z.string(), version: z.string(), description: z.string() }),
  paths: z.record(z.string(), z.record(z.string(), z.unknown())),
  components: z.record(z.string(), z.unknown()),
});

const ADMIN_BODY_LIMIT = 64 * 1024;
const DATA_BODY_LIMIT = 256 * 1024;
/** Room for the largest batches: 50,000 bars or 1,000 embeddings of 384 floats. */
const BATCH_BODY_LIMIT = 32 * 1024 * 1024;

export function createApp(platform: Platform): Hono<AppEnv> {
  return composeApp(platform).app;
}

/** The app and the registry of its routes (paths, schemas of bodies and responses). */
export function composeApp(platform: Platform): { app: Hono<AppEnv>; docs: OpenApi } {
  const { log } = platform;
  const docs = new OpenApi();
  const app = new Hono<AppEnv>();

  // Accept a caller's id only when it is short and plain, so it cannot forge log lines.
  app.use(requestId({ limitLength: 128 }));
  const requests = new RequestMetrics();
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    const ms = performance.now() - started;
    requests.record(c.req.method, routeOf(c), c.res.status, ms / 1000);
    const line = {
      requestId: c.get('requestId'),
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      durationMs: Math.round(ms * 100) / 100,
    };
    if (c.res.status >= 500) log.error(line, 'request');
    else log.info(line, 'request');
  });
  app.onError(problemHandler(log, { debug: platform.config.debugErrors }));
  // Before any route reads a parameter: no NUL, invalid Unicode or bad %-encoding in the URL.
  app.use(urlHygiene());
  app.notFound((c) =>
    problemResponse(c, {
      status: 404,
      code: 'route_not_found',
      title: 'Not found',
      detail: `no route for ${c.req.method} ${c.req.path}`,
    }),
  );

  app.route('/', healthRoutes(platform, docs));
  // Everything past here needs the database: while it is down, answer 503 at once.
  const gate = availabilityGate(platform.availability);
  app.use('/v1/*', gate);
  app.use('/metrics', gate);
  const openapi = new Hono<AppEnv>();
  defineRoute(
    openapi,
    docs,
    {
      method: 'get',
      path: '/openapi.json',
      tag: 'health',
      auth: 'none',
      summary: 'This OpenAPI document',
      responses: { 200: openApiDocument },
    },
    async (_c, _input, reply) => reply(200, docs.document() as z.input<typeof openApiDocument>),
  );
  app.route('/', openapi);

  const tooLarge = (c: { req: { path: string } }) => {
    throw new AppError(
      413,
      'payload_too_large',
      'Payload too large',
      `the body of ${c.req.path} is over its size limit`,
    );
  };
  app.use('/v1/tenants', adminAuth(platform.adminToken), bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: tooLarge }));
  app.use('/v1/tenants/*', adminAuth(platform.adminToken), bodyLimit({ maxSize: ADMIN_BODY_LIMIT, onError: tooLarge }));
  const restore = {
    schema: restoreFrom,
    restore: (
      input: Parameters<typeof platform.backups.restoreInto>[0],
      from: { backupId: string; tenantId?: string },
      who: { actor: string; requestId?: string },
      key?: string,
    ) => platform.backups.restoreInto(input, from.backupId, who, key, from.tenantId),
  };
  app.route('/', tenantRoutes(platform.tenants, platform.keys, platform.credentials, docs, restore));
  app.use('/v1/admin/backups', adminAuth(platform.adminToken));
  app.route('/', backupRoutes(platform.backups, docs));

  // The data plane: the tenant comes from the API key, every query runs in withTenant.
  const auth = tenantAuth(platform.keys, platform.activity);
  for (const resource of ['portfolios', 'orders', 'trades', 'market-data', 'embeddings']) {
    app.use(`/v1/${resource}`, auth, bodyLimit({ maxSize: DATA_BODY_LIMIT, onError: tooLarge }));
    app.use(`/v1/${resource}/*`, auth, bodyLimit({ maxSize: DATA_BODY_LIMIT, onError: tooLarge }));
  }
  for (const batch of ['trades:batch', 'market-data:batch', 'embeddings:batch']) {
    app.use(`/v1/${batch}`, auth, bodyLimit({ maxSize: BATCH_BODY_LIMIT, onError: tooLarge }));
  }
  const { earliestTime, maxAheadMs, maxChunksPerRequest } = platform.config;
  const limits: ChunkLimits = { earliestTime, maxAheadMs, maxChunksPerRequest };
  const dataRoutes: ((runtime: Runtime, docs: OpenApi, limits: ChunkLimits) => Hono<AppEnv>)[] = [
    portfolioRoutes,
    orderRoutes,
    tradeRoutes,
    marketDataRoutes,
    embeddingRoutes,
  ];
  for (const routes of dataRoutes) app.route('/', routes(platform.app, docs, limits));

  app.use('/v1/admin/isolation', adminAuth(platform.adminToken));
  app.use('/v1/admin/migrations', adminAuth(platform.adminToken));
  app.use('/metrics', adminAuth(platform.adminToken));
  app.route('/', migrationRoutes(platform.control, docs));
  app.route(
    '/',
    isolationRoutes(platform.control, docs, () => featureMetrics(platform, requests)),
  );
  return { app, docs };
}

/** The other features' Prometheus text, after the validator's (whose routes serve /metrics). */
async function featureMetrics(platform: Platform, requests: RequestMetrics): Promise<string> {
  const [migrations, backups, pool] = await Promise.all([
    migrationStatus(platform.control),
    platform.backups.coverage(),
    pooledCounts(platform.control),
  ]);
  const tenants = {
    target: platform.warmPool.size,
    ...pool,
    created: platform.tenants.created,
    refill: platform.warmPoolRefill?.stats,
  };
  return (
    renderMigrationMetrics(migrations) +
    renderBackupMetrics(backups) +
    renderTenantMetrics(tenants) +
    renderRuntimeMetrics(platform.app, platform.warming?.stats()) +
    requests.render(new MetricsText()).toString()
  );
}
