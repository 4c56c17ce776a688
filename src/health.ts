/**
 * Liveness and readiness. /healthz: the process answers. /readyz: the database answers,
 * the extensions are there, and migrations are current; 503 otherwise. Anonymous probes
 * get the verdict alone; the details (exact server and extension versions, problems)
 * go to the admin token only, as versions tell an attacker which known bug to aim at.
 * `warnings` lists what works but needs attention (a pgvector with known HNSW defects).
 *
 * @example
 * app.route('/', healthRoutes(platform, docs));
 */
import { Hono, type MiddlewareHandler } from 'hono';
import { z } from 'zod';
import type { DatabaseAvailability } from './db/availability.ts';
import { readServerInfo } from './db/connect.ts';
import { pgvectorWarning } from './db/versions.ts';
import { pendingControlPlaneMigrations } from './migrations/control-plane.ts';
import { readTenantMigrations, templateVersionOf } from './migrations/files.ts';
import { countBehind } from './migrations/behind.ts';
import { currentTemplateVersion } from './migrations/template.ts';
import type { Platform } from './platform.ts';
import { adminTokenCheck } from './http/admin-auth.ts';
import type { AppEnv } from './http/env.ts';
import type { OpenApi } from './http/openapi.ts';
import { defineRoute } from './http/route.ts';

export type Readiness = {
  status: 'ready' | 'unready';
  problems: string[];
  /** Things that work but need attention (an old pgvector); they do not make the service unready. */
  warnings: string[];
  database: { reachable: boolean; serverVersion: string | null };
  extensions: Record<string, string | null>;
  /** `tenantsBehind`: tenants not yet at the template's version (they still serve; `tenantforge migrate` brings them). */
  migrations: {
    controlPlanePending: string[];
    templateVersion: string | null;
    templateExpected: string;
    tenantsBehind: number | null;
  };
};

type Source = Pick<Platform, 'control'> & Partial<Pick<Platform, 'config' | 'availability'>>;

export async function checkReadiness(platform: Source, timeoutMs = 2_000): Promise<Readiness> {
  const expected = templateVersionOf(readTenantMigrations(platform.config?.sqlDir));
  const result: Readiness = {
    status: 'unready',
    problems: [],
    warnings: [],
    database: { reachable: false, serverVersion: null },
    extensions: {},
    migrations: { controlPlanePending: [], templateVersion: null, templateExpected: expected, tenantsBehind: null },
  };
  const downSince = platform.availability?.downSince;
  if (downSince) {
    // Known down: say so at once instead of waiting for the pool to time out.
    result.problems.push(`database: unreachable since ${new Date(downSince).toISOString()}`);
    return result;
  }
  try {
    await withTimeout(
      (async () => {
        const info = await readServerInfo(platform.control);
        result.database = { reachable: true, serverVersion: info.serverVersion };
        result.extensions = info.extensions;
        for (const [name, version] of Object.entries(info.extensions))
          if (!version) result.problems.push(`extension ${name} is not installed`);
        const vectorWarning = pgvectorWarning(info.extensions.vector);
        if (vectorWarning) result.warnings.push(vectorWarning);
        result.migrations.controlPlanePending = await pendingControlPlaneMigrations(platform.control);
        if (result.migrations.controlPlanePending.length) result.problems.push('control-plane migrations are pending');
        result.migrations.templateVersion = await currentTemplateVersion(platform.control);
        if (result.migrations.templateVersion !== expected)
          result.problems.push(`template is at ${result.migrations.templateVersion}, expected ${expected}`);
        result.migrations.tenantsBehind = await countBehind(platform.control, result.migrations.templateVersion);
      })(),
      timeoutMs,
    );
  } catch (err) {
    result.problems.push(`database: ${(err as Error).message}`);
  }
  result.status = result.problems.length === 0 ? 'ready' : 'unready';
  return result;
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>(
    (_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)),
  );
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Middleware for routes that need the database: 503 at once while it is known to be
 * down, and a failed request's outage error starts the availability probe.
 */
export function availabilityGate(availability: DatabaseAvailability): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    availability.assertAvailable();
    await next();
    if (c.error) availability.noteError(c.error);
  };
}

const readinessView = z.object({
  status: z.enum(['ready', 'unready']),
  problems: z.array(z.string()),
  warnings: z.array(z.string()),
  database: z.object({ reachable: z.boolean(), serverVersion: z.string().nullable() }),
  extensions: z.record(z.string(), z.string().nullable()),
  migrations: z.object({
    controlPlanePending: z.array(z.string()),
    templateVersion: z.string().nullable(),
    templateExpected: z.string(),
    tenantsBehind: z.number().nullable(),
  }),
});
/** The details go to the admin token; anyone else gets the verdict alone. */
const readyView = z.union([readinessView, z.object({ status: readinessView.shape.status })]);

export function healthRoutes(platform: Source & Pick<Platform, 'adminToken'>, docs: OpenApi): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const isAdmin = adminTokenCheck(platform.adminToken);
  const tag = 'health';
  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/healthz',
      tag,
      auth: 'none',
      summary: 'Liveness: the process answers',
      responses: { 200: z.object({ status: z.literal('ok') }) },
    },
    async (_c, _input, reply) => reply(200, { status: 'ok' }),
  );
  defineRoute(
    app,
    docs,
    {
      method: 'get',
      path: '/readyz',
      tag,
      auth: 'none',
      summary: 'Readiness: database, extensions, migrations (503 when not ready; details with the admin token)',
      responses: { 200: readyView, 503: readyView },
    },
    async (c, _input, reply) => {
      const readiness = await checkReadiness(platform);
      const body = isAdmin(c.req.header('authorization')) ? readiness : { status: readiness.status };
      return readiness.status === 'ready' ? reply(200, body) : reply(503, body);
    },
  );
  return app;
}
