/**
 * Admin bearer-token check, compared in constant time. A failure says nothing about tenants.
 *
 * @example
 * app.use('/v1/tenants/*', adminAuth(config.adminToken));
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from './env.ts';
import { AppError } from '../errors.ts';

export function adminAuth(token: string): MiddlewareHandler<AppEnv> {
  // Hashing both sides gives equal lengths, so timingSafeEqual also hides the token's length.
  const expected = createHash('sha256').update(token).digest();
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer (\S+)$/i.exec(header);
    const given = createHash('sha256').update(match?.[1] ?? '').digest();
    if (!match || !timingSafeEqual(given, expected)) {
      throw new AppError(401, 'unauthorized', 'Unauthorized', 'a valid admin bearer token is required');
    }
    c.set('actor', 'admin');
    await next();
  };
}
