/**
 * Data-plane authentication: the tenant comes from the API key alone, never from a
 * header, path or body the client controls. Each authenticated request counts as the
 * tenant's activity (tenants/activity.ts).
 *
 * @example
 * app.use('/v1/portfolios/*', tenantAuth(keys, activity));
 */
import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors.ts';
import type { AppEnv } from '../http/env.ts';
import type { TenantActivity } from '../tenants/activity.ts';
import type { ApiKeyService } from '../tenants/keys.ts';

export function tenantAuth(keys: ApiKeyService, activity: TenantActivity): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const match = /^Bearer (\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (!match)
      throw new AppError(
        401,
        'invalid_api_key',
        'Invalid API key',
        'send a tenant API key as "Authorization: Bearer <key>"',
      );
    const tenant = await keys.authenticate(match[1]!);
    activity.seen(tenant);
    c.set('tenant', tenant);
    c.set('actor', `tenant:${tenant.id}`);
    await next();
  };
}
