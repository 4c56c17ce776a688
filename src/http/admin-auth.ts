/**
 * Admin bearer-token check, compared in constant time. A failure says nothing about tenants.
 * Not hono/bearer-auth: it answers 400 to a token outside RFC 6750's token68 characters,
 * while TENANTFORGE_ADMIN_TOKEN may be any 16+ characters (such a token would never
 * authenticate); its failures are plain-text HTTPExceptions, not our problem+json
 * `unauthorized`; and /readyz needs a yes/no check that does not fail the request
 * (`adminTokenCheck`). test/foundation/admin-auth.test.ts shows the difference.
 *
 * @example
 * app.use('/v1/tenants/*', adminAuth(config.adminToken));
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env.ts';
import { AppError } from '../errors.ts';

export function adminAuth(token: string): MiddlewareHandler<AppEnv> {
  const isAdmin = adminTokenCheck(token);
  return async (c, next) => {
    if (!isAdmin(c.req.header('authorization'))) {
      throw new AppError(401, 'unauthorized', 'Unauthorized', 'a valid admin bearer token is required');
    }
    c.set('actor', 'admin');
    await next();
  };
}

/** Whether an Authorization header carries the admin token (for routes that answer anyone, but say more to an admin). */
export function adminTokenCheck(token: string): (header: string | undefined) => boolean {
  // Hashing both sides gives equal lengths, so timingSafeEqual also hides the token's length.
  const expected = createHash('sha256').update(token).digest();
  return (header) => {
    const match = /^Bearer (\S+)$/i.exec(header ?? '');
    const given = createHash('sha256')
      .update(match?.[1] ?? '')
      .digest();
    return match !== null && timingSafeEqual(given, expected);
  };
}
