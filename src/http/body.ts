/**
 * Request bodies: JSON only, parsed and validated against a zod schema, with an error
 * that names the field. Unknown fields are rejected by the strict schemas.
 *
 * @example
 * const input = await jsonBody(c, createTenantInput);
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { AppError } from '../errors.ts';
import { parseJsonBytes } from './hygiene.ts';
import { validationProblem } from './problem.ts';

export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  return parseWith(schema, await readJson(c));
}

/** The body as parsed JSON, not yet validated: 415 when it is not JSON, 400 when malformed or hostile. */
export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/([a-z.+-]+\+)?json\s*(;|$)/i.test(type)) {
    throw new AppError(
      415,
      'unsupported_media_type',
      'Unsupported media type',
      `send the body as application/json (got ${JSON.stringify(type || 'none')})`,
    );
  }
  // Strict UTF-8, storable text, finite numbers, bounded nesting (see hygiene.ts).
  return parseJsonBytes(await c.req.arrayBuffer());
}

export function parseWith<S extends z.ZodType>(schema: S, raw: unknown): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw validationProblem(parsed.error);
  return parsed.data;
}
